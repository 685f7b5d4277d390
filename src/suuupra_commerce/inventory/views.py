"""Inventory read models: item levels, low-stock and reorder lists, summary, expiry index.

Folded from the inventory events alone (every quantity event says which locations
it touched and by how much), never by loading aggregates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from suuupra_commerce.application import ReadModel
from suuupra_commerce.inventory.domain import InventoryItem
from suuupra_commerce.money import Money

__all__ = ["InventoryItemView", "InventoryReadModel", "InventorySummary", "LocationView"]


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


@dataclass(slots=True)
class _Row:
    inventory_id: UUID
    sku: str
    product_id: str
    name: str
    unit_price: Money
    locations: dict[str, list[int]]  # location -> [on_hand, reserved, priority]
    low_stock_threshold: int
    reorder_point: int
    reorder_quantity: int
    allow_backorder: bool
    backorder_limit: int
    low_stock: bool = False
    reorder_needed: bool = False
    version: int = 0
    expiring: dict[UUID, datetime] = field(default_factory=dict)

    def view(self) -> InventoryItemView:
        on_hand = sum(v[0] for v in self.locations.values())
        reserved = sum(v[1] for v in self.locations.values())
        return InventoryItemView(
            inventory_id=self.inventory_id,
            sku=self.sku,
            product_id=self.product_id,
            name=self.name,
            unit_price=self.unit_price,
            on_hand=on_hand,
            reserved=reserved,
            available=on_hand - reserved,
            locations=MappingProxyType(
                {
                    name: LocationView(v[0], v[1], v[0] - v[1], v[2])
                    for name, v in sorted(self.locations.items())
                }
            ),
            low_stock_threshold=self.low_stock_threshold,
            reorder_point=self.reorder_point,
            reorder_quantity=self.reorder_quantity,
            low_stock=self.low_stock,
            reorder_needed=self.reorder_needed,
            allow_backorder=self.allow_backorder,
            backorder_limit=self.backorder_limit,
            version=self.version,
        )


class InventoryReadModel(ReadModel):
    """Levels of every item, the low-stock and reorder lists, and reservations that may expire."""

    def __init__(self) -> None:
        super().__init__()
        self._by_id: dict[UUID, _Row] = {}
        self._by_sku: dict[str, _Row] = {}
        self._handlers: dict[type[Any], Callable[[_Row, Any], None]] = {
            InventoryItem.LocationAdded: self._location_added,
            InventoryItem.ThresholdsChanged: self._thresholds_changed,
            InventoryItem.BackorderPolicyChanged: self._backorder_policy_changed,
            InventoryItem.StockReceived: self._received,
            InventoryItem.StockAdjusted: self._adjusted,
            InventoryItem.PhysicallyCounted: self._counted,
            InventoryItem.Reserved: self._reserved,
            InventoryItem.ReservationConfirmed: self._confirmed,
            InventoryItem.ReservationFulfilled: self._fulfilled,
            InventoryItem.ReservationReleased: self._released,
            InventoryItem.ReservationExpired: self._released,
            InventoryItem.LowStockSignalled: self._low_stock(True),
            InventoryItem.LowStockCleared: self._low_stock(False),
            InventoryItem.ReorderNeeded: self._reorder(True),
            InventoryItem.ReorderCleared: self._reorder(False),
        }

    def apply(self, event: DomainEventProtocol[UUID]) -> None:
        if isinstance(event, InventoryItem.Registered):
            row = _Row(
                inventory_id=event.originator_id,
                sku=event.sku,
                product_id=event.product_id,
                name=event.name,
                unit_price=Money.from_dict(event.unit_price),
                locations={event.location: [0, 0, 0]},
                low_stock_threshold=event.low_stock_threshold,
                reorder_point=event.reorder_point,
                reorder_quantity=event.reorder_quantity,
                allow_backorder=event.allow_backorder,
                backorder_limit=event.backorder_limit,
            )
            self._by_id[row.inventory_id] = row
            self._by_sku[row.sku] = row
        else:
            handler = self._handlers.get(type(event))
            row = self._by_id[event.originator_id]
            if handler is not None:
                handler(row, event)
        row.version = event.originator_version

    # --- queries ------------------------------------------------------------------------------

    def by_sku(self, sku: str) -> InventoryItemView | None:
        row = self._by_sku.get(sku)
        return None if row is None else row.view()

    def by_id(self, inventory_id: UUID) -> InventoryItemView | None:
        row = self._by_id.get(inventory_id)
        return None if row is None else row.view()

    def all(self) -> list[InventoryItemView]:
        return [self._by_sku[sku].view() for sku in sorted(self._by_sku)]

    def low_stock(self) -> list[InventoryItemView]:
        return [v for v in self.all() if v.low_stock]

    def reorder_needed(self) -> list[InventoryItemView]:
        return [v for v in self.all() if v.reorder_needed]

    def due_reservations(self, now: datetime) -> dict[str, list[UUID]]:
        """Unconfirmed reservations past their deadline, by SKU."""
        due: dict[str, list[UUID]] = {}
        for row in self._by_sku.values():
            ids = [rid for rid, at in row.expiring.items() if at <= now]
            if ids:
                due[row.sku] = sorted(ids)
        return due

    def summary(self) -> InventorySummary:
        views = self.all()
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

    # --- folding ------------------------------------------------------------------------------

    @staticmethod
    def _location_added(row: _Row, e: InventoryItem.LocationAdded) -> None:
        row.locations[e.location] = [0, 0, e.priority]

    @staticmethod
    def _thresholds_changed(row: _Row, e: InventoryItem.ThresholdsChanged) -> None:
        row.low_stock_threshold = e.low_stock_threshold
        row.reorder_point = e.reorder_point
        row.reorder_quantity = e.reorder_quantity

    @staticmethod
    def _backorder_policy_changed(row: _Row, e: InventoryItem.BackorderPolicyChanged) -> None:
        row.allow_backorder = e.allow_backorder
        row.backorder_limit = e.backorder_limit

    @staticmethod
    def _received(row: _Row, e: InventoryItem.StockReceived) -> None:
        row.locations[e.location][0] += e.quantity

    @staticmethod
    def _adjusted(row: _Row, e: InventoryItem.StockAdjusted) -> None:
        row.locations[e.location][0] += e.delta

    @staticmethod
    def _counted(row: _Row, e: InventoryItem.PhysicallyCounted) -> None:
        row.locations[e.location][0] = e.counted

    @staticmethod
    def _reserved(row: _Row, e: InventoryItem.Reserved) -> None:
        for location, units in e.allocations.items():
            row.locations[location][1] += units
        row.expiring[e.reservation_id] = e.expires_at

    @staticmethod
    def _confirmed(row: _Row, e: InventoryItem.ReservationConfirmed) -> None:
        row.expiring.pop(e.reservation_id, None)

    @staticmethod
    def _fulfilled(row: _Row, e: InventoryItem.ReservationFulfilled) -> None:
        for location, units in e.taken.items():
            row.locations[location][0] -= units
            row.locations[location][1] -= units

    @staticmethod
    def _released(
        row: _Row, e: InventoryItem.ReservationReleased | InventoryItem.ReservationExpired
    ) -> None:
        for location, units in e.freed.items():
            row.locations[location][1] -= units
        row.expiring.pop(e.reservation_id, None)

    @staticmethod
    def _low_stock(flag: bool) -> Callable[[_Row, Any], None]:
        def apply(row: _Row, _: Any) -> None:
            row.low_stock = flag

        return apply

    @staticmethod
    def _reorder(flag: bool) -> Callable[[_Row, Any], None]:
        def apply(row: _Row, _: Any) -> None:
            row.reorder_needed = flag

        return apply
