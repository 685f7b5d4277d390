"""Commands of the inventory service: what a host may ask of stock, validated up front."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field, model_validator

from suuupra_commerce.commands import Command
from suuupra_commerce.inventory.domain import AdjustmentReason
from suuupra_commerce.money import Price
from suuupra_commerce.values import MAX_QUANTITY, Identifier, Quantity, Sku

__all__ = [
    "AddLocation",
    "AdjustStock",
    "ConfirmReservation",
    "CountStock",
    "FulfilReservation",
    "ReceiveStock",
    "RegisterItem",
    "ReleaseReservation",
    "ReservationLine",
    "ReserveStock",
    "SetBackorderPolicy",
    "SetThresholds",
]

Level = Annotated[int, Field(strict=True, ge=0, le=MAX_QUANTITY)]
Note = Annotated[str, Field(max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")]
MAX_RESERVATION_MINUTES = 30 * 24 * 60


class RegisterItem(Command):
    """Register a SKU (once) at a location, optionally with opening stock.

    >>> from suuupra_commerce.money import Money
    >>> RegisterItem(sku="MUG-1", product_id="mug", name="Mug",
    ...              unit_price=Money("9.50", "EUR"), initial_quantity=10).location
    'default'
    """

    sku: Sku
    product_id: Identifier
    name: Identifier
    unit_price: Price
    location: Identifier = "default"
    initial_quantity: Level = 0
    low_stock_threshold: Level = 0
    reorder_point: Level = 0
    reorder_quantity: Level = 0
    allow_backorder: bool = False
    backorder_limit: Level = 0


class AddLocation(Command):
    """Stock a SKU at another location; lower ``priority`` is used first."""

    sku: Sku
    location: Identifier
    priority: Annotated[int, Field(strict=True, ge=0, le=1000)] = 100


class ReceiveStock(Command):
    """Units delivered to a location; with a ``reference``, a repeat is a no-op."""

    sku: Sku
    quantity: Quantity
    location: Identifier = "default"
    reference: Identifier | None = None


class AdjustStock(Command):
    """Add (positive ``delta``) or remove (negative) units by hand, with a reason."""

    sku: Sku
    delta: Annotated[int, Field(strict=True, ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
    reason: AdjustmentReason
    location: Identifier = "default"
    note: Note = ""
    reference: Identifier | None = None

    @model_validator(mode="after")
    def _non_zero(self) -> AdjustStock:
        if self.delta == 0:
            raise ValueError("delta must not be zero")
        return self


class CountStock(Command):
    """The result of a physical count at a location."""

    sku: Sku
    counted: Level
    location: Identifier = "default"
    note: Note = ""


class SetThresholds(Command):
    """Low-stock threshold (0 = no signal), reorder point and reorder quantity (0 = no signal)."""

    sku: Sku
    low_stock_threshold: Level
    reorder_point: Level
    reorder_quantity: Level


class SetBackorderPolicy(Command):
    """Allow promising units not on hand, down to ``-backorder_limit`` available."""

    sku: Sku
    allow_backorder: bool
    backorder_limit: Level = 0


class ReservationLine(Command):
    """One SKU and how many units of it to reserve.

    A ``Command`` (though only ever part of ``ReserveStock``) so that building a line
    from bad input raises ``InvalidCommandError`` rather than pydantic's own error.
    """

    sku: Sku
    quantity: Quantity


class ReserveStock(Command):
    """Reserve every line for an order, or none of them (one atomic write)."""

    order_id: Identifier
    lines: Annotated[list[ReservationLine], Field(min_length=1, max_length=100)]
    duration_minutes: Annotated[int, Field(strict=True, ge=1, le=MAX_RESERVATION_MINUTES)] = 15

    @model_validator(mode="after")
    def _unique_skus(self) -> ReserveStock:
        skus = [line.sku for line in self.lines]
        if len(set(skus)) != len(skus):
            raise ValueError("each SKU may appear on one line only")
        return self


class ConfirmReservation(Command):
    """Commit a reservation to its order; it no longer expires."""

    sku: Sku
    reservation_id: UUID


class FulfilReservation(Command):
    """Ship units of a confirmed reservation (all outstanding when ``quantity`` is omitted)."""

    sku: Sku
    reservation_id: UUID
    quantity: Quantity | None = None
    shipment: Identifier = "all"


class ReleaseReservation(Command):
    """Give back a reservation's units."""

    sku: Sku
    reservation_id: UUID
    reason: Identifier = "released"
