"""The inventory read model: item levels, low-stock and reorder flags, summary, expiry index.

Folded from the inventory events alone (every quantity event says which locations
it touched and by how much), never by loading aggregates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from suuupra_commerce.inventory.domain import InventoryItem
from suuupra_commerce.money import Money
from suuupra_commerce.projections import Doc, Projection, instant

__all__ = [
    "InventoryItemView",
    "InventoryProjection",
    "InventorySummary",
    "LocationView",
    "summarise",
]


@dataclass(frozen=True, slots=True)
class LocationView:
    """Stock of an item at one location."""

    on_hand: int
    reserved: int
    available: int
    priority: int


@dataclass(frozen=True, slots=True)
class InventoryItemView:
    """An item as queries see it."""

    inventory_id: UUID
    sku: str
    product_id: str
    name: str
    unit_price: Money
    on_hand: int
    reserved: int
    available: int
    locations: Mapping[str, LocationView]
    low_stock_threshold: int
    reorder_point: int
    reorder_quantity: int
    low_stock: bool
    reorder_needed: bool
    allow_backorder: bool
    backorder_limit: int
    version: int


@dataclass(frozen=True, slots=True)
class InventorySummary:
    """Totals over every item. ``value`` is on-hand units at unit price, per currency."""

    items: int
    on_hand: int
    reserved: int
    available: int
    low_stock: int
    reorder_needed: int
    value: Mapping[str, Money]


class InventoryProjection(Projection):
    """Levels of every item, its low-stock and reorder flags, and its reservations that may expire.

    A document per item: ``locations`` maps each location to ``[on hand, reserved,
    priority]``; ``expiring`` maps each unconfirmed reservation to its deadline, and
    ``next_expiry`` (indexed) is the soonest of them.
    """

    name = "inventory_items"
    indexes = ("sku", "low_stock", "reorder_needed", "next_expiry")

    def __init__(self) -> None:
        self._handlers: dict[type[Any], Callable[[Doc, Any], None]] = {
            InventoryItem.LocationAdded: _location_added,
            InventoryItem.ThresholdsChanged: _thresholds_changed,
            InventoryItem.BackorderPolicyChanged: _backorder_policy_changed,
            InventoryItem.StockReceived: _received,
            InventoryItem.StockAdjusted: _adjusted,
            InventoryItem.PhysicallyCounted: _counted,
            InventoryItem.Reserved: _reserved,
            InventoryItem.ReservationConfirmed: _confirmed,
            InventoryItem.ReservationFulfilled: _fulfilled,
            InventoryItem.ReservationReleased: _released,
            InventoryItem.ReservationExpired: _released,
            InventoryItem.LowStockSignalled: _flag("low_stock", True),
            InventoryItem.LowStockCleared: _flag("low_stock", False),
            InventoryItem.ReorderNeeded: _flag("reorder_needed", True),
            InventoryItem.ReorderCleared: _flag("reorder_needed", False),
        }

    @property
    def handled(self) -> frozenset[type[Any]]:
        """The event classes this projection folds (besides ``Registered``)."""
        return frozenset(self._handlers)

    def fold(self, doc: Doc | None, event: DomainEventProtocol[UUID]) -> Doc | None:
        if isinstance(event, InventoryItem.Registered):
            doc = {
                "inventory_id": str(event.originator_id),
                "sku": event.sku,
                "product_id": event.product_id,
                "name": event.name,
                "unit_price": Money.from_dict(event.unit_price).to_dict(),
                "locations": {event.location: [0, 0, 0]},
                "low_stock_threshold": event.low_stock_threshold,
                "reorder_point": event.reorder_point,
                "reorder_quantity": event.reorder_quantity,
                "allow_backorder": event.allow_backorder,
                "backorder_limit": event.backorder_limit,
                "low_stock": False,
                "reorder_needed": False,
                "expiring": {},
                "next_expiry": None,
            }
        elif doc is None:
            return None
        else:
            handler = self._handlers.get(type(event))
            if handler is not None:
                handler(doc, event)
        doc["version"] = event.originator_version
        return doc

    def index_values(self, doc: Doc) -> dict[str, str | None]:
        return {
            "sku": doc["sku"],
            "low_stock": "yes" if doc["low_stock"] else None,
            "reorder_needed": "yes" if doc["reorder_needed"] else None,
            "next_expiry": doc["next_expiry"],
        }

    @staticmethod
    def view(doc: Doc) -> InventoryItemView:
        """The :class:`InventoryItemView` a document holds."""
        locations: dict[str, list[int]] = doc["locations"]
        on_hand = sum(v[0] for v in locations.values())
        reserved = sum(v[1] for v in locations.values())
        return InventoryItemView(
            inventory_id=UUID(doc["inventory_id"]),
            sku=doc["sku"],
            product_id=doc["product_id"],
            name=doc["name"],
            unit_price=Money.from_dict(doc["unit_price"]),
            on_hand=on_hand,
            reserved=reserved,
            available=on_hand - reserved,
            locations=MappingProxyType(
                {
                    name: LocationView(v[0], v[1], v[0] - v[1], v[2])
                    for name, v in sorted(locations.items())
                }
            ),
            low_stock_threshold=doc["low_stock_threshold"],
            reorder_point=doc["reorder_point"],
            reorder_quantity=doc["reorder_quantity"],
            low_stock=doc["low_stock"],
            reorder_needed=doc["reorder_needed"],
            allow_backorder=doc["allow_backorder"],
            backorder_limit=doc["backorder_limit"],
            version=doc["version"],
        )

    @staticmethod
    def due(doc: Doc, now: datetime) -> list[UUID]:
        """The item's unconfirmed reservations due by ``now``."""
        bound = instant(now)
        expiring: dict[str, str] = doc["expiring"]
        return sorted(UUID(rid) for rid, at in expiring.items() if at <= bound)


def summarise(views: list[InventoryItemView]) -> InventorySummary:
    """Totals over ``views``."""
    value: dict[str, Money] = {}
    for v in views:
        worth = v.unit_price * v.on_hand
        value[worth.currency] = value.get(worth.currency, Money.zero(worth.currency)) + worth
    return InventorySummary(
        items=len(views),
        on_hand=sum(v.on_hand for v in views),
        reserved=sum(v.reserved for v in views),
        available=sum(v.available for v in views),
        low_stock=sum(v.low_stock for v in views),
        reorder_needed=sum(v.reorder_needed for v in views),
        value=MappingProxyType(dict(sorted(value.items()))),
    )


# --- folding ----------------------------------------------------------------------------------


def _location_added(doc: Doc, e: InventoryItem.LocationAdded) -> None:
    doc["locations"][e.location] = [0, 0, e.priority]


def _thresholds_changed(doc: Doc, e: InventoryItem.ThresholdsChanged) -> None:
    doc["low_stock_threshold"] = e.low_stock_threshold
    doc["reorder_point"] = e.reorder_point
    doc["reorder_quantity"] = e.reorder_quantity


def _backorder_policy_changed(doc: Doc, e: InventoryItem.BackorderPolicyChanged) -> None:
    doc["allow_backorder"] = e.allow_backorder
    doc["backorder_limit"] = e.backorder_limit


def _received(doc: Doc, e: InventoryItem.StockReceived) -> None:
    doc["locations"][e.location][0] += e.quantity


def _adjusted(doc: Doc, e: InventoryItem.StockAdjusted) -> None:
    doc["locations"][e.location][0] += e.delta


def _counted(doc: Doc, e: InventoryItem.PhysicallyCounted) -> None:
    doc["locations"][e.location][0] = e.counted


def _expiring(doc: Doc, reservation_id: UUID, expires_at: datetime | None) -> None:
    expiring: dict[str, str] = doc["expiring"]
    if expires_at is None:
        expiring.pop(str(reservation_id), None)
    else:
        expiring[str(reservation_id)] = instant(expires_at)
    doc["next_expiry"] = min(expiring.values(), default=None)


def _reserved(doc: Doc, e: InventoryItem.Reserved) -> None:
    for location, units in e.allocations.items():
        doc["locations"][location][1] += units
    _expiring(doc, e.reservation_id, e.expires_at)


def _confirmed(doc: Doc, e: InventoryItem.ReservationConfirmed) -> None:
    _expiring(doc, e.reservation_id, None)


def _fulfilled(doc: Doc, e: InventoryItem.ReservationFulfilled) -> None:
    for location, units in e.taken.items():
        doc["locations"][location][0] -= units
        doc["locations"][location][1] -= units


def _released(
    doc: Doc, e: InventoryItem.ReservationReleased | InventoryItem.ReservationExpired
) -> None:
    for location, units in e.freed.items():
        doc["locations"][location][1] -= units
    _expiring(doc, e.reservation_id, None)


def _flag(field: str, value: bool) -> Callable[[Doc, Any], None]:
    def apply(doc: Doc, _: Any) -> None:
        doc[field] = value

    return apply
