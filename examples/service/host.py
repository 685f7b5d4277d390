"""The host: what each endpoint asks of the library, in the original service's shapes.

Every public method here is synchronous (the library is) and runs in a worker thread of
:class:`~suuupra_commerce.AsyncCommerce` through :meth:`Host.run`, which times it for the
command latency histogram. Nothing here knows HTTP: errors are the library's own
(``CommerceError``), translated into problem details once, in :mod:`examples.service.http`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

from examples.service import schemas as s
from examples.service.config import ServiceConfig
from examples.service.observability import Metrics
from examples.service.store import ServiceRecords
from suuupra_commerce import (
    AddItem,
    AdjustmentReason,
    AdjustStock,
    AsyncCommerce,
    CancelOrder,
    CartLineNotFoundError,
    CartNotFoundError,
    CartStatus,
    CartView,
    ChangeQuantity,
    CheckoutCart,
    ClearCart,
    ConfirmReservation,
    ConflictError,
    CountStock,
    CreateCart,
    DeleteCart,
    FulfilReservation,
    IllegalTransitionError,
    InvalidInputError,
    InventoryItemView,
    Money,
    OrderLineRequest,
    OrderNotFoundError,
    OrderStatus,
    OrderView,
    PlaceOrder,
    ReceiveStock,
    RegisterItem,
    ReleaseReservation,
    RemoveItem,
    ReservationLine,
    ReserveStock,
    RetrySagaStep,
    SagaStatus,
    SagaView,
    SetThresholds,
    UnknownSkuError,
)
from suuupra_commerce.orders.commands import order_id_for_key
from suuupra_commerce.sagas.orders import fulfilment_saga_id

__all__ = ["Host"]

P = ParamSpec("P")
T = TypeVar("T")

#: ``adjustment_type`` values of the original service that mean "units arrived".
RECEIVING = frozenset({"restock", "receive", "received", "receipt", "purchase"})
#: Other names the original's clients use, by the library's reason they mean.
REASON_ALIASES = {
    "return": AdjustmentReason.RETURN_TO_STOCK,
    "returned": AdjustmentReason.RETURN_TO_STOCK,
    "damaged": AdjustmentReason.DAMAGE,
    "lost": AdjustmentReason.THEFT,
    "expired": AdjustmentReason.EXPIRY,
}


def amount(money: Money) -> str:
    """An amount as it leaves the service: its exact decimal text.

    >>> amount(Money("19.90", "USD"))
    '19.90'
    """
    return format(money.amount, "f")


def iso(moment: datetime) -> str:
    """A moment as ISO 8601 text."""
    return moment.isoformat()


class Host:
    """The service's library calls (sync, run in worker threads) and its own records."""

    def __init__(
        self,
        shop: AsyncCommerce,
        records: ServiceRecords,
        config: ServiceConfig,
        metrics: Metrics,
    ) -> None:
        self.shop = shop
        self.commerce = shop.commerce
        self.records = records
        self.config = config
        self.metrics = metrics

    async def run(self, name: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` in a worker thread, timed as command ``name``."""
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await self.shop.call(fn, *args, **kwargs)
            outcome = "ok"
            return result
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.command_latency.labels(name, outcome).observe(elapsed)

    # --- helpers ------------------------------------------------------------------------------

    def _money(self, value: Decimal, currency: str) -> Money:
        return Money(value, currency)

    def resolve_sku(self, product_id: str | None, variant_id: str | None, sku: str | None) -> str:
        """The SKU a client means by a SKU, or by a product id and (optionally) a variant id.

        A variant id is looked up in the catalogue (and may be the SKU itself); a product
        with one SKU needs no variant id; a product with several needs one.
        """
        if sku is not None:
            entry = self.records.entry(sku)
            if product_id is not None and entry is not None and entry.product_id != product_id:
                raise InvalidInputError(f"SKU {sku} is not a variant of product {product_id}")
            return sku
        if product_id is None:
            raise InvalidInputError("give a sku, or a product_id (and variant_id)")
        if variant_id is not None:
            found = self.records.sku_of_variant(product_id, variant_id)
            if found is not None:
                return found
            entry = self.records.entry(variant_id)
            if entry is not None and entry.product_id == product_id:
                return variant_id
            raise UnknownSkuError(f"{product_id} variant {variant_id}")
        skus = [v.sku for v in self.commerce.inventory.items() if v.product_id == product_id]
        if len(skus) == 1:
            return skus[0]
        if not skus:
            raise UnknownSkuError(f"product {product_id}")
        listed = ", ".join(skus[:10])
        raise InvalidInputError(
            f"product {product_id} has {len(skus)} variants ({listed}); give variant_id or sku"
        )

    def _variant(self, sku: str) -> tuple[str | None, str | None]:
        entry = self.records.entry(sku)
        return (None, None) if entry is None else (entry.product_id, entry.variant_id)

    # --- inventory ----------------------------------------------------------------------------

    def create_item(self, req: s.CreateInventoryItemRequest) -> s.CreatedItemResponse:
        """List the SKU in the catalogue, then register its stock with the library."""
        currency = req.currency or self.config.currency
        metadata = dict(req.metadata or {})
        name = req.name or metadata.get("name") or req.sku
        price = self._money(req.unit_price, currency)
        cost = None if req.cost_price is None else self._money(req.cost_price, currency)
        command = RegisterItem(
            sku=req.sku,
            product_id=req.product_id,
            name=name,
            unit_price=price,
            initial_quantity=req.total_quantity,
            low_stock_threshold=req.low_stock_threshold,
            reorder_point=req.reorder_point,
            reorder_quantity=req.reorder_quantity,
        )
        inventory = self.commerce.inventory
        try:
            inventory.item(req.sku)
            registered = True
        except UnknownSkuError:
            registered = False
        # Listing first: a crash before the stock is registered leaves a listing that the
        # retried request replaces (it is an orphan: no stock refers to it).
        self.records.list_sku(
            req.sku,
            req.product_id,
            req.variant_id,
            name,
            price,
            cost,
            metadata,
            replace=not registered,
        )
        inventory_id = inventory.register(command)
        return s.CreatedItemResponse(
            inventory_id=str(inventory_id),
            sku=req.sku,
            message="Inventory item created successfully",
        )

    def _item_response(self, view: InventoryItemView) -> s.InventoryItemResponse:
        entry = self.records.entry(view.sku)
        item = self.commerce.inventory.aggregate(view.sku)
        price = entry.unit_price if entry is not None else view.unit_price
        cost = entry.cost_price if entry is not None else None
        return s.InventoryItemResponse(
            inventory_id=str(view.inventory_id),
            product_id=view.product_id,
            variant_id=None if entry is None else entry.variant_id,
            sku=view.sku,
            name=view.name,
            total_quantity=view.on_hand,
            reserved_quantity=view.reserved,
            available_quantity=view.available,
            unit_price=amount(price),
            cost_price=None if cost is None else amount(cost),
            currency=price.currency,
            status="active" if view.available > 0 else "out_of_stock",
            low_stock_threshold=view.low_stock_threshold,
            reorder_point=view.reorder_point,
            reorder_quantity=view.reorder_quantity,
            version=view.version,
            created_at=iso(item.created_on),
            updated_at=iso(item.modified_on),
            metadata={} if entry is None else dict(entry.metadata),
            is_low_stock=view.low_stock,
            needs_reorder=view.reorder_needed,
            active_reservations=len(item.reservations),
        )

    def item(self, inventory_id: UUID) -> s.InventoryItemResponse:
        """One item by its inventory id."""
        return self._item_response(self.commerce.inventory.item_by_id(inventory_id))

    def item_by_sku(self, sku: str) -> s.InventoryItemResponse:
        """One item by its SKU."""
        return self._item_response(self.commerce.inventory.item(sku))

    def update_item(
        self, inventory_id: UUID, req: s.UpdateInventoryItemRequest
    ) -> s.UpdatedItemResponse:
        """Reprice in the catalogue and/or set thresholds in the library."""
        inventory = self.commerce.inventory
        view = inventory.item_by_id(inventory_id)
        if req.status is not None and req.status != "active":
            raise InvalidInputError(f"status {req.status!r} is not supported (only 'active')")
        if req.expected_version is not None and req.expected_version != view.version:
            msg = f"item is at version {view.version}, not {req.expected_version}"
            raise ConflictError(msg)
        entry = self.records.entry(view.sku)
        currency = entry.unit_price.currency if entry is not None else view.unit_price.currency
        price = None if req.unit_price is None else self._money(req.unit_price, currency)
        cost = None if req.cost_price is None else self._money(req.cost_price, currency)
        thresholds = (req.low_stock_threshold, req.reorder_point, req.reorder_quantity)
        command = None
        if any(t is not None for t in thresholds):
            command = SetThresholds(
                sku=view.sku,
                low_stock_threshold=(
                    view.low_stock_threshold
                    if req.low_stock_threshold is None
                    else req.low_stock_threshold
                ),
                reorder_point=view.reorder_point
                if req.reorder_point is None
                else req.reorder_point,
                reorder_quantity=(
                    view.reorder_quantity if req.reorder_quantity is None else req.reorder_quantity
                ),
            )
        if price is not None or cost is not None:
            if price is not None and price.is_negative():
                raise InvalidInputError("unit_price must not be negative")
            self.records.reprice(view.sku, price, cost)
        if command is not None:
            inventory.set_thresholds(command)
        after = inventory.item_by_id(inventory_id)
        return s.UpdatedItemResponse(
            inventory_id=str(inventory_id),
            version=after.version,
            message="Inventory item updated successfully",
        )

    def reserve(
        self,
        sku: str,
        order_id: str,
        customer_id: str,
        quantity: int,
        minutes: int,
    ) -> s.ReservedResponse:
        """Reserve units of one SKU for an order (idempotent by order id and SKU)."""
        line = ReservationLine(sku=sku, quantity=quantity)
        command = ReserveStock(order_id=order_id, lines=[line], duration_minutes=minutes)
        (reserved,) = self.commerce.inventory.reserve(command)
        status = self.commerce.inventory.reservation(sku, reserved.reservation_id).status
        return s.ReservedResponse(
            reservation_id=str(reserved.reservation_id),
            inventory_id=str(reserved.inventory_id),
            sku=sku,
            order_id=order_id,
            customer_id=customer_id,
            quantity=reserved.quantity,
            status=status.value,
            expires_at=iso(reserved.expires_at),
            message="Stock reserved successfully",
        )

    def reserve_product(self, req: s.ReserveRequest) -> s.ReservedResponse:
        """``POST /inventory/reservations``: the product (and variant) resolved to its SKU."""
        sku = self.resolve_sku(req.product_id, req.variant_id, None)
        return self.reserve(
            sku, req.order_id, req.customer_id, req.quantity, req.reservation_duration_minutes
        )

    def reserve_sku(self, req: s.ReserveBySkuRequest) -> s.ReservedResponse:
        """``POST /inventory/reservations/by-sku``."""
        return self.reserve(
            req.sku, req.order_id, req.customer_id, req.quantity, req.reservation_duration_minutes
        )

    def _reservation_response(
        self, inventory_id: UUID, reservation_id: UUID, message: str
    ) -> s.ReservationResponse:
        sku = self.commerce.inventory.item_by_id(inventory_id).sku
        r = self.commerce.inventory.reservation(sku, reservation_id)
        return s.ReservationResponse(
            reservation_id=str(reservation_id),
            inventory_id=str(inventory_id),
            sku=sku,
            order_id=r.order_id,
            quantity=r.quantity,
            fulfilled_quantity=r.fulfilled,
            outstanding_quantity=r.outstanding,
            status=r.status.value,
            expires_at=iso(r.expires_at),
            message=message,
        )

    def reservation(self, inventory_id: UUID, reservation_id: UUID) -> s.ReservationResponse:
        """One reservation as it stands."""
        return self._reservation_response(inventory_id, reservation_id, "Reservation found")

    def confirm(self, inventory_id: UUID, reservation_id: UUID) -> s.ReservationResponse:
        """Confirm a reservation (a repeat is a no-op)."""
        sku = self.commerce.inventory.item_by_id(inventory_id).sku
        self.commerce.inventory.confirm(ConfirmReservation(sku=sku, reservation_id=reservation_id))
        return self._reservation_response(
            inventory_id, reservation_id, "Reservation confirmed successfully"
        )

    def fulfil(self, inventory_id: UUID, reservation_id: UUID) -> s.ReservationResponse:
        """Ship what a confirmed reservation holds (a repeat is a no-op)."""
        sku = self.commerce.inventory.item_by_id(inventory_id).sku
        self.commerce.inventory.fulfil(FulfilReservation(sku=sku, reservation_id=reservation_id))
        return self._reservation_response(
            inventory_id, reservation_id, "Reservation fulfilled successfully"
        )

    def release(
        self, inventory_id: UUID, reservation_id: UUID, reason: str
    ) -> s.ReservationResponse:
        """Give a reservation's units back (a repeat is a no-op)."""
        sku = self.commerce.inventory.item_by_id(inventory_id).sku
        self.commerce.inventory.release(
            ReleaseReservation(sku=sku, reservation_id=reservation_id, reason=reason)
        )
        return self._reservation_response(
            inventory_id, reservation_id, "Reservation cancelled successfully"
        )

    def adjust(
        self, inventory_id: UUID, req: s.StockAdjustmentRequest, idempotency_key: str | None
    ) -> s.AdjustmentResponse:
        """Receive or adjust stock; the reference (or the idempotency key) makes it once-only."""
        inventory = self.commerce.inventory
        sku = inventory.item_by_id(inventory_id).sku
        kind = req.adjustment_type.strip().lower()
        reference = req.reference_id or (
            None if idempotency_key is None else f"idempotency/{idempotency_key}"
        )
        if kind in RECEIVING and req.quantity_change > 0:
            inventory.receive(
                ReceiveStock(sku=sku, quantity=req.quantity_change, reference=reference)
            )
            recorded = "received"
        else:
            if kind in RECEIVING:
                raise InvalidInputError(f"a {kind} adds units: quantity_change must be positive")
            try:
                reason = AdjustmentReason(kind)
            except ValueError:
                reason = REASON_ALIASES.get(kind, AdjustmentReason.OTHER)
            note = req.reason if reason is not AdjustmentReason.OTHER else f"{kind}: {req.reason}"
            inventory.adjust(
                AdjustStock(
                    sku=sku,
                    delta=req.quantity_change,
                    reason=reason,
                    note=note[:500],
                    reference=reference,
                )
            )
            recorded = reason.value
        after = inventory.item_by_id(inventory_id)
        return s.AdjustmentResponse(
            inventory_id=str(inventory_id),
            adjustment_type=req.adjustment_type,
            recorded_as=recorded,
            quantity_change=req.quantity_change,
            total_quantity=after.on_hand,
            available_quantity=after.available,
            message="Stock adjusted successfully",
        )

    def count(self, inventory_id: UUID, req: s.PhysicalCountRequest) -> s.PhysicalCountResponse:
        """Record a physical count; the library adjusts on-hand stock to it."""
        if not req.auto_adjust:
            raise InvalidInputError("counts always adjust stock here: auto_adjust must be true")
        inventory = self.commerce.inventory
        sku = inventory.item_by_id(inventory_id).sku
        discrepancy = inventory.count(
            CountStock(sku=sku, counted=req.physical_quantity, note=req.notes or "")
        )
        after = inventory.item_by_id(inventory_id)
        return s.PhysicalCountResponse(
            inventory_id=str(inventory_id),
            physical_quantity=req.physical_quantity,
            discrepancy=discrepancy,
            total_quantity=after.on_hand,
            message="Physical count recorded successfully",
        )

    @staticmethod
    def _low(view: InventoryItemView) -> s.LowStockItemResponse:
        return s.LowStockItemResponse(
            inventory_id=str(view.inventory_id),
            product_id=view.product_id,
            sku=view.sku,
            available_quantity=view.available,
            low_stock_threshold=view.low_stock_threshold,
            reorder_point=view.reorder_point,
            reorder_quantity=view.reorder_quantity,
        )

    def low_stock(self, limit: int) -> list[s.LowStockItemResponse]:
        """Items at or below their low-stock threshold."""
        return [self._low(v) for v in self.commerce.inventory.low_stock()[:limit]]

    def reorder_needed(self, limit: int) -> list[s.LowStockItemResponse]:
        """Items at or below their reorder point."""
        return [self._low(v) for v in self.commerce.inventory.reorder_needed()[:limit]]

    def summary(self) -> s.InventorySummaryResponse:
        """Totals over every item."""
        inventory = self.commerce.inventory
        totals = inventory.summary()
        views = inventory.items()
        return s.InventorySummaryResponse(
            total_items=totals.items,
            active_items=sum(1 for v in views if v.available > 0),
            low_stock_items=totals.low_stock,
            out_of_stock_items=sum(1 for v in views if v.available <= 0),
            reorder_needed_items=totals.reorder_needed,
            total_quantity=totals.on_hand,
            reserved_quantity=totals.reserved,
            available_quantity=totals.available,
            total_value={code: amount(value) for code, value in totals.value.items()},
            last_updated=iso(self.commerce.clock.now()),
        )

    def expire_reservations(self) -> s.ExpiredResponse:
        """Release every unconfirmed reservation past its deadline."""
        expired = self.commerce.inventory.expire_reservations()
        return s.ExpiredResponse(expired_count=expired, message=f"Expired {expired} reservations")

    # --- carts --------------------------------------------------------------------------------

    def cart_response(self, view: CartView) -> s.CartResponse:
        """A cart, its lines named by product and variant as well as by SKU."""
        items = []
        for line in view.lines:
            product_id, variant_id = self._variant(line.sku)
            items.append(
                s.CartItemResponse(
                    product_id=product_id,
                    variant_id=variant_id,
                    sku=line.sku,
                    product_name=line.name,
                    quantity=line.quantity,
                    unit_price=amount(line.unit_price),
                    subtotal=amount(line.subtotal),
                    discount=amount(line.discount),
                    tax=amount(line.tax),
                    total_price=amount(line.total),
                )
            )
        active = view.status is CartStatus.ACTIVE
        return s.CartResponse(
            cart_id=str(view.id),
            customer_id=view.customer_id,
            session_id=view.session_id,
            status=view.status.value,
            items=items,
            subtotal=amount(view.subtotal),
            discount_amount=amount(view.discount),
            tax_amount=amount(view.tax),
            shipping_estimate=amount(view.shipping),
            total_amount=amount(view.total),
            currency=view.currency,
            item_count=view.item_count,
            version=view.version,
            order_id=None if view.order_id is None else str(view.order_id),
            created_at=iso(view.created_at),
            updated_at=iso(view.touched_at),
            expires_at=iso(view.touched_at + self.commerce.carts.ttl) if active else None,
        )

    def _cart_summary(self, view: CartView) -> s.CartSummaryResponse:
        full = self.cart_response(view)
        return s.CartSummaryResponse(
            cart_id=full.cart_id,
            customer_id=full.customer_id,
            status=full.status,
            item_count=full.item_count,
            subtotal=full.subtotal,
            tax_amount=full.tax_amount,
            shipping_estimate=full.shipping_estimate,
            total_amount=full.total_amount,
            currency=full.currency,
            created_at=full.created_at,
            updated_at=full.updated_at,
            expires_at=full.expires_at,
        )

    def create_cart(
        self, req: s.CreateCartRequest, customer: str | None, session: str | None
    ) -> s.CartResponse:
        """Open a cart for the customer (or the anonymous session) named in the body or headers."""
        customer_id = req.customer_id or (None if req.session_id else customer)
        session_id = req.session_id or (None if customer_id else session)
        command = CreateCart(
            customer_id=customer_id,
            session_id=session_id,
            currency=req.currency or self.config.currency,
        )
        carts = self.commerce.carts
        return self.cart_response(carts.get(carts.create(command)))

    def carts_of(self, customer_id: str) -> list[s.CartSummaryResponse]:
        """A customer's carts, most recently touched first."""
        return [self._cart_summary(v) for v in self.commerce.carts.for_customer(customer_id)]

    def active_cart(self, customer_id: str) -> s.CartResponse | None:
        """The customer's active cart, or ``None``."""
        view = self.commerce.carts.active_cart(customer_id)
        return None if view is None else self.cart_response(view)

    def cart(self, cart_id: UUID) -> s.CartResponse:
        """One cart."""
        return self.cart_response(self.commerce.carts.get(cart_id))

    def delete_cart(self, cart_id: UUID) -> None:
        """Delete a cart (it reads as not found afterwards)."""
        self.commerce.carts.delete(DeleteCart(cart_id=cart_id))

    def add_item(self, cart_id: UUID, req: s.AddItemRequest) -> s.CartResponse:
        """Add units at the catalogue's price (the client's ``unit_price`` is not used)."""
        sku = self.resolve_sku(req.product_id, req.variant_id, req.sku)
        self.commerce.carts.add_item(AddItem(cart_id=cart_id, sku=sku, quantity=req.quantity))
        return self.cart(cart_id)

    def _line_sku(self, cart_id: UUID, product_id: str, variant_id: str | None) -> str:
        """The SKU of the cart line a path's ``product_id`` (and ``?variant_id=``) names."""
        view = self.commerce.carts.get(cart_id)
        skus = [line.sku for line in view.lines]
        if variant_id is not None:
            sku = self.records.sku_of_variant(product_id, variant_id) or variant_id
            if sku in skus:
                return sku
            raise CartLineNotFoundError(f"{product_id} variant {variant_id}")
        if product_id in skus:
            return product_id
        matching = [sku for sku in skus if self._variant(sku)[0] == product_id]
        if len(matching) == 1:
            return matching[0]
        if not matching:
            raise CartLineNotFoundError(product_id)
        raise InvalidInputError(
            f"the cart holds {len(matching)} variants of {product_id}: give ?variant_id="
        )

    def change_quantity(
        self, cart_id: UUID, product_id: str, variant_id: str | None, quantity: int
    ) -> s.CartResponse:
        """Set a line's quantity (0 removes it)."""
        sku = self._line_sku(cart_id, product_id, variant_id)
        self.commerce.carts.change_quantity(
            ChangeQuantity(cart_id=cart_id, sku=sku, quantity=quantity)
        )
        return self.cart(cart_id)

    def remove_item(self, cart_id: UUID, product_id: str, variant_id: str | None) -> s.CartResponse:
        """Take a line out."""
        sku = self._line_sku(cart_id, product_id, variant_id)
        self.commerce.carts.remove_item(RemoveItem(cart_id=cart_id, sku=sku))
        return self.cart(cart_id)

    def clear_cart(self, cart_id: UUID) -> s.CartResponse:
        """Remove every line."""
        self.commerce.carts.clear(ClearCart(cart_id=cart_id))
        return self.cart(cart_id)

    # --- orders -------------------------------------------------------------------------------

    def place_order(
        self, req: s.CreateOrderRequest, customer: str | None, key: str | None
    ) -> s.OrderCreationResponse:
        """Check out the cart, or place the items; either way the fulfilment saga follows."""
        if (req.cart_id is None) == (req.items is None):
            raise InvalidInputError("give either cart_id or items")
        orders = self.commerce.orders
        if req.cart_id is not None:
            try:
                cart_id = UUID(req.cart_id)
            except ValueError:
                raise CartNotFoundError(req.cart_id) from None
            new = self.commerce.carts.get(cart_id).status is CartStatus.ACTIVE
            order_id = self.commerce.carts.checkout(CheckoutCart(cart_id=cart_id))
            source = "cart"
        else:
            assert req.items is not None
            customer_id = req.customer_id or customer
            if customer_id is None:
                raise InvalidInputError("give customer_id (or the X-Customer-ID header)")
            lines = [
                OrderLineRequest(
                    sku=self.resolve_sku(i.product_id, i.variant_id, i.sku), quantity=i.quantity
                )
                for i in req.items
            ]
            command = PlaceOrder(
                idempotency_key=key or uuid.uuid4().hex,
                customer_id=customer_id,
                currency=req.currency or self.config.currency,
                lines=lines,
                discount_code=req.discount_code,
            )
            try:
                orders.get(order_id_for_key(command.idempotency_key))
                new = False
            except OrderNotFoundError:
                new = True
            order_id = orders.place(command)
            source = "items"
        if new:
            self.metrics.orders_placed.labels(source).inc()
        view = orders.get(order_id)
        return s.OrderCreationResponse(
            order_id=str(order_id),
            saga_id=str(fulfilment_saga_id(order_id)),
            status=view.status.value,
            total_amount=amount(view.total),
            currency=view.currency,
            created_at=iso(view.placed_at),
        )

    def _order_response(self, view: OrderView) -> s.OrderResponse:
        saga = self.commerce.sagas.find(fulfilment_saga_id(view.order_id))
        shipment: Mapping[str, Any] = (
            {} if saga is None else saga.results.get("create_shipment", {})
        )
        items = []
        for line in view.lines:
            product_id, variant_id = self._variant(line.sku)
            items.append(
                s.OrderItemResponse(
                    product_id=product_id,
                    variant_id=variant_id,
                    sku=line.sku,
                    product_name=line.name,
                    quantity=line.quantity,
                    unit_price=amount(line.unit_price),
                    subtotal=amount(line.subtotal),
                    discount=amount(line.discount),
                    tax=amount(line.tax),
                    total_price=amount(line.total),
                    shipped_quantity=line.shipped,
                    returned_quantity=line.returned,
                )
            )
        tracking = shipment.get("tracking_number")
        carrier = shipment.get("carrier")
        return s.OrderResponse(
            order_id=str(view.order_id),
            customer_id=view.customer_id,
            status=view.status.value,
            payment_status=view.payment_status.value,
            fulfilment_status=view.fulfilment_status.value,
            items=items,
            subtotal=amount(view.subtotal),
            discount_amount=amount(view.discount),
            tax_amount=amount(view.tax),
            shipping_amount=amount(view.shipping),
            total_amount=amount(view.total),
            refunded_amount=amount(view.refunded),
            currency=view.currency,
            saga_id=str(fulfilment_saga_id(view.order_id)),
            saga_status=None if saga is None else saga.status.value,
            tracking_number=None if tracking is None else str(tracking),
            carrier=None if carrier is None else str(carrier),
            created_at=iso(view.placed_at),
            updated_at=iso(view.updated_at),
        )

    def order(self, order_id: UUID) -> s.OrderResponse:
        """One order, with its fulfilment saga's status and shipment."""
        return self._order_response(self.commerce.orders.get(order_id))

    def orders(
        self, customer_id: str | None, status: str | None, limit: int, offset: int
    ) -> list[s.OrderResponse]:
        """A customer's orders (or every order), newest first."""
        orders = self.commerce.orders
        if customer_id is not None:
            summaries = orders.for_customer(customer_id)
            if status is not None:
                summaries = [o for o in summaries if o.status.value == status]
            summaries = summaries[offset : offset + limit]
        else:
            try:
                wanted = None if status is None else OrderStatus(status)
            except ValueError:
                raise InvalidInputError(f"unknown order status {status!r}") from None
            summaries = orders.listing(wanted, limit, offset)
        return [self.order(summary.order_id) for summary in summaries]

    def cancel_order(self, order_id: UUID, reason: str) -> s.CancelOrderResponse:
        """Cancel through the sagas (a fulfilment under way holds its order)."""
        outcome = self.commerce.order_sagas.cancel(
            CancelOrder(order_id=order_id, reason=reason, requested_by="customer")
        )
        status = self.commerce.orders.get(order_id).status.value
        messages = {
            "cancelled": "Order cancelled",
            "cancelling": "Cancellation under way",
            "awaiting_approval": "Cancellation requested; it awaits approval",
        }
        return s.CancelOrderResponse(
            order_id=str(order_id),
            outcome=outcome.value,
            status=status,
            message=messages[outcome.value],
        )

    # --- admin --------------------------------------------------------------------------------

    def _saga_response(self, view: SagaView, *, timeline: bool) -> s.SagaResponse:
        definition = self.commerce.sagas.registry.get(view.definition, view.version)
        names = [step.name for step in definition.steps]
        ended = view.status in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED)
        steps = []
        for step in definition.steps:
            if step.name in view.compensated:
                status = "compensated"
            elif step.name in view.results and not (step.name == view.step and not ended):
                status = "completed"
            elif step.name == view.step and not ended:
                status = {
                    SagaStatus.STUCK: "failed",
                    SagaStatus.COMPENSATING: "compensating",
                }.get(view.status, "running")
            else:
                status = "completed" if step.name in view.results else "pending"
            current = step.name == view.step
            steps.append(
                s.SagaStepResponse(
                    step_id=f"{view.saga_id}/{step.name}",
                    step_name=step.name,
                    step_type="pivot" if step.pivot else "step",
                    status=status,
                    action=step.action,
                    compensation=step.compensation,
                    retry_count=max(0, view.attempt - 1) if current else 0,
                    error_message=(view.last_error or None) if current else None,
                )
            )
        running = view.status in (SagaStatus.RUNNING, SagaStatus.COMPENSATING)
        ended_at = None if running else view.updated_at
        return s.SagaResponse(
            saga_id=str(view.saga_id),
            saga_type=view.definition,
            version=view.version,
            subject=view.subject,
            status=view.status.value,
            correlation_id=view.correlation_id,
            current_step=view.step,
            current_step_index=names.index(view.step) if view.step in names else -1,
            phase=view.phase.value,
            steps=steps,
            created_at=iso(view.started_at),
            updated_at=iso(view.updated_at),
            completed_at=None if ended_at is None else iso(ended_at),
            error_message=view.stuck_reason or view.last_error or None,
            results={k: dict(v) for k, v in view.results.items()},
            timeline=(
                [
                    s.TimelineEntryResponse(
                        at=iso(e.at), version=e.version, event=e.event, step=e.step, detail=e.detail
                    )
                    for e in view.timeline
                ]
                if timeline
                else None
            ),
        )

    def sagas(
        self, status_filter: str | None, saga_type: str | None, limit: int
    ) -> list[s.SagaResponse]:
        """Sagas, newest first; ``failed`` means STUCK (the original service's word)."""
        status = None
        if status_filter is not None:
            word = {"failed": "stuck"}.get(status_filter, status_filter)
            try:
                status = SagaStatus(word)
            except ValueError:
                raise InvalidInputError(f"unknown saga status {status_filter!r}") from None
        sagas = self.commerce.sagas
        summaries = sagas.list(status=status, definition=saga_type, limit=limit)
        return [self._saga_response(sagas.get(x.saga_id), timeline=False) for x in summaries]

    def saga(self, saga_id: UUID) -> s.SagaResponse:
        """One saga, with its timeline."""
        return self._saga_response(self.commerce.sagas.get(saga_id), timeline=True)

    def retry_saga(self, saga_id: UUID, by: str, reason: str) -> s.SagaRetryResponse:
        """Send the step a STUCK saga is at again (anything else: 409)."""
        sagas = self.commerce.sagas
        if sagas.get(saga_id).status is not SagaStatus.STUCK:
            raise IllegalTransitionError("saga", sagas.get(saga_id).status.value, "retry")
        sagas.retry_step(RetrySagaStep(saga_id=saga_id, by=by, reason=reason))
        return s.SagaRetryResponse(
            saga_id=str(saga_id),
            status="retry_started",
            message="Saga retry initiated successfully",
        )

    def saga_statistics(self) -> s.SagaStatisticsResponse:
        """Counts of sagas by status and type, and of retries, timeouts and compensations."""
        stats = self.commerce.sagas.statistics()
        return s.SagaStatisticsResponse(
            total=stats.total,
            by_status={status.value: n for status, n in stats.by_status.items()},
            by_type={name: sum(c.values()) for name, c in stats.by_definition.items()},
            by_type_and_status={
                name: {status.value: n for status, n in c.items()}
                for name, c in stats.by_definition.items()
            },
            retries=stats.retries,
            timeouts=stats.timeouts,
            compensations=stats.compensations,
            operator_actions=stats.operator_actions,
        )

    def _abandoned_since(self, hours_ago: int | None) -> list[CartView]:
        carts = self.commerce.carts
        if hours_ago is None:
            return carts.abandoned()
        # abandoned(now) lists carts untouched since now - abandoned_after; shift "now" so
        # that the cut-off is hours_ago before the present.
        shifted = self.commerce.clock.now() - timedelta(hours=hours_ago) + carts.abandoned_after
        return carts.abandoned(shifted)

    def cart_analytics(self) -> s.CartsAnalyticsResponse:
        """Cart counts and the abandonment rate (abandoned / active)."""
        counts = self.commerce.carts.count_by_status()
        active = counts.get(CartStatus.ACTIVE, 0)
        abandoned = len(self._abandoned_since(None))
        rate = Decimal(abandoned) / Decimal(active) if active else Decimal(0)
        return s.CartsAnalyticsResponse(
            total_carts=sum(counts.values()),
            active_carts=active,
            abandoned_carts=abandoned,
            checked_out_carts=counts.get(CartStatus.CHECKED_OUT, 0),
            abandonment_rate=float(rate.quantize(Decimal("0.0001"))),
            by_status={status.value: n for status, n in counts.items()},
        )

    def abandoned_carts(self, hours_ago: int | None, limit: int) -> list[s.CartSummaryResponse]:
        """Active carts with lines, untouched for ``hours_ago`` (or the configured window)."""
        return [self._cart_summary(v) for v in self._abandoned_since(hours_ago)[:limit]]

    # --- housekeeping -------------------------------------------------------------------------

    def sweep(self) -> tuple[int, int]:
        """Release overdue reservations and expire stale carts; returns both counts."""
        return self.commerce.inventory.expire_reservations(), self.commerce.carts.expire_stale()

    def ready(self) -> dict[str, str]:
        """Ask every store for its last notification id; raises if one cannot answer."""
        commerce = self.commerce
        apps = {
            "inventory": commerce.inventory,
            "orders": commerce.orders,
            "carts": commerce.carts,
            "sagas": commerce.sagas,
            "saga_dispatcher": commerce.saga_dispatcher,
            "host_records": self.records,
        }
        for app in apps.values():
            app.recorder.max_notification_id()
        return dict.fromkeys(apps, "ok")
