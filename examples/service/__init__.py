"""An example host service: the original commerce service's REST API, built on suuupra_commerce.

Not part of the wheel; run and tested in CI. Start it with ``python -m examples.service``
(SQLite files under ``./data``) or ``uvicorn --factory examples.service.app:create_app``;
``COMMERCE_PERSISTENCE=postgres`` with eventsourcing's ``POSTGRES_*`` keys puts everything
in PostgreSQL. docs/example-service.md has the endpoint table, the error mapping and the
idempotency rule; what follows is how the original service's model maps onto the library's.

**Products, variants and SKUs.** The library keys stock, cart lines and order lines by
SKU; the original service named ``product_id`` and ``variant_id``. The host keeps a
catalogue (:mod:`examples.service.store`) with one entry per SKU: its product id, variant
id, display name and selling price. A request that names a product is resolved to a SKU:

* ``sku`` given: that SKU (and, if ``product_id`` is given too, it must be that product's);
* ``product_id`` + ``variant_id``: the SKU listed for that variant (the variant id may
  also be the SKU itself);
* ``product_id`` alone: the product's only SKU; a product with several needs a
  ``variant_id`` (422 otherwise), one with none is 404.

``/cart/{id}/items/{product_id}`` names a cart line by its SKU, or by its product id
(``?variant_id=`` when the cart holds several variants of it).

**Prices.** The catalogue is the library's price book: a cart line takes the catalogue's
price when it is added, and checkout re-quotes it (a price changed since is a 409
``price-changed``). The ``unit_price`` and ``product_name`` that the original's clients
send with a cart item are accepted and ignored. ``PUT /inventory/items/{id}`` reprices in
the catalogue; the library's item keeps the price it was registered with for its stock
valuation (``/inventory/summary``'s ``total_value``).

**Money** arrives as a JSON number or a string and is decoded exactly from its text
(``json.loads(..., parse_float=Decimal)``); it leaves as a string (``"19.99"``). Amounts
are in the item's currency (``currency`` on creation, else ``SERVICE_CURRENCY``, USD).

**Customers.** The original took the customer from its bearer token; here the
``X-Customer-ID`` header (or a ``customer_id`` field or query parameter) names them and
``X-Session-ID`` an anonymous session. Authentication is the deployment's concern.

**Orders** are placed from a cart (``cart_id``: ``Carts.checkout``, once per cart version)
or from ``items`` (``PlaceOrder``, whose ``idempotency_key`` is the request's
``Idempotency-Key``). Either way the fulfilment saga takes the order on: reserve, authorize,
confirm, capture, ship, notify. ``payment_method`` and ``shipping_address`` are accepted
and not used: the payment gateway, carrier and notifier here are the library's in-memory
fakes (:mod:`suuupra_commerce.testing.sagas`), **demo ports** that a real host replaces
with adapters of its own.

**Reservations** made through ``/inventory/reservations`` are the library's: idempotent
by order id and SKU; ``customer_id`` is validated and echoed, not stored.
"""
