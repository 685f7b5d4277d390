"""Cart commands: the validated, immutable requests the ``Carts`` service takes."""

from __future__ import annotations

from typing import Annotated, Self
from uuid import UUID

from pydantic import Field, model_validator

from suuupra_commerce.commands import Command
from suuupra_commerce.money import CurrencyCode
from suuupra_commerce.values import Identifier, Quantity, Sku

__all__ = [
    "AddItem",
    "ApplyDiscountCode",
    "CartCommand",
    "ChangeQuantity",
    "CheckoutCart",
    "ClearCart",
    "CreateCart",
    "DeleteCart",
    "LineQuantity",
    "MergeCarts",
    "RefreshPrices",
    "RemoveDiscountCode",
    "RemoveItem",
]


LineQuantity = Annotated[int, Field(strict=True, ge=0, le=999)]
"""A pydantic field type for the new quantity of a cart line: 0 (remove) to 999."""


class CreateCart(Command):
    """Open a cart for a customer or for an anonymous session (exactly one of the two).

    >>> CreateCart(session_id="s-1", currency="EUR").currency
    'EUR'
    """

    customer_id: Identifier | None = None
    session_id: Identifier | None = None
    currency: CurrencyCode

    @model_validator(mode="after")
    def _one_owner(self) -> Self:
        if (self.customer_id is None) == (self.session_id is None):
            msg = "give exactly one of customer_id and session_id"
            raise ValueError(msg)
        return self


class CartCommand(Command):
    """A command about one existing cart."""

    cart_id: UUID


class AddItem(CartCommand):
    """Add units of a SKU; the price comes from the price book, never from the caller."""

    sku: Sku
    quantity: Quantity


class ChangeQuantity(CartCommand):
    """Set the quantity of a line; 0 removes it."""

    sku: Sku
    quantity: LineQuantity


class RemoveItem(CartCommand):
    """Take a line out of the cart."""

    sku: Sku


class ClearCart(CartCommand):
    """Remove every line."""


class DeleteCart(CartCommand):
    """Delete the cart."""


class ApplyDiscountCode(CartCommand):
    """Hold a discount code on the cart (checked against the discount policy)."""

    code: Identifier


class RemoveDiscountCode(CartCommand):
    """Drop the cart's discount code."""


class RefreshPrices(CartCommand):
    """Re-snapshot the lines whose price or name changed in the price book."""


class MergeCarts(Command):
    """Fold an anonymous guest cart into a customer's cart (as on login)."""

    guest_cart_id: UUID
    customer_cart_id: UUID

    @model_validator(mode="after")
    def _two_carts(self) -> Self:
        if self.guest_cart_id == self.customer_cart_id:
            msg = "a cart cannot be merged into itself"
            raise ValueError(msg)
        return self


class CheckoutCart(CartCommand):
    """Turn the cart into an order, once; ``expected_version`` guards against a stale view."""

    expected_version: Annotated[int, Field(strict=True, ge=1)] | None = None
