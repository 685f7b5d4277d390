"""A host service's wiring: its own price book, tax rule and cancellation policy, backend by env.

Run it with ``python examples/host_service.py``; set ``COMMERCE_PERSISTENCE`` (``memory``,
``sqlite`` or ``postgres``) to choose where the events go. It registers stock, takes a guest's
cart through login and checkout, and prints what the customer would see.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal

from suuupra_commerce import (
    AddItem,
    CancellationDecision,
    CheckoutCart,
    Commerce,
    CreateCart,
    FlatRateTax,
    MergeCarts,
    Money,
    Order,
    PriceQuote,
    RegisterItem,
)


class CatalogPriceBook:
    """The host's catalogue, here a dict; in a real service, its product database."""

    def __init__(self, catalogue: Mapping[str, tuple[str, str]]) -> None:
        self._catalogue = dict(catalogue)

    def quote(self, sku: str, currency: str) -> PriceQuote | None:
        if currency != "EUR" or sku not in self._catalogue:
            return None
        name, price = self._catalogue[sku]
        return PriceQuote(sku=sku, name=name, unit_price=Money(price, "EUR"))


class NoCancellationAfterConfirmation:
    """A stricter policy than the standard one: only pending orders may be cancelled."""

    def decide(self, order: Order) -> CancellationDecision:
        zero = Money.zero(order.currency)
        if order.status == "pending":
            return CancellationDecision(True, False, zero, order.refundable, "full refund")
        return CancellationDecision(False, False, zero, zero, "confirmed orders are final")


def main(env: Mapping[str, str] | None = None) -> Money:
    """Run the scenario; returns the order total."""
    settings = dict(env) if env is not None else {"COMMERCE_PERSISTENCE": "memory"}
    book = CatalogPriceBook({"BOOK-1": ("Field guide", "24.90"), "MAP-7": ("Trail map", "7.45")})
    with Commerce.from_env(
        settings,
        price_book=book,
        tax=FlatRateTax(Decimal("0.19"), inclusive=True),
        cancellation_policy=NoCancellationAfterConfirmation(),
    ) as shop:
        for sku, (name, price) in {
            "BOOK-1": ("Field guide", "24.90"),
            "MAP-7": ("Trail map", "7.45"),
        }.items():
            shop.inventory.register(
                RegisterItem(
                    sku=sku,
                    product_id=sku.lower(),
                    name=name,
                    unit_price=Money(price, "EUR"),
                    initial_quantity=10,
                )
            )
        guest = shop.carts.create(CreateCart(session_id="browser-42", currency="EUR"))
        shop.carts.add_item(AddItem(cart_id=guest, sku="MAP-7", quantity=2))
        mine = shop.carts.create(CreateCart(customer_id="dana", currency="EUR"))
        shop.carts.add_item(AddItem(cart_id=mine, sku="BOOK-1", quantity=1))
        shop.carts.merge(MergeCarts(guest_cart_id=guest, customer_cart_id=mine))
        order_id = shop.carts.checkout(CheckoutCart(cart_id=mine))
        order = shop.orders.get(order_id)
        for line in order.lines:
            print(f"{line.quantity} x {line.name}: {line.total} (VAT included: {line.tax})")
        print(f"total {order.total}, status {order.status}")
        return order.total


if __name__ == "__main__":
    main({k: v for k, v in os.environ.items() if k.startswith(("COMMERCE_", "POSTGRES_"))} or None)
