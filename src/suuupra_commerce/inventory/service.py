"""The inventory application service: stock commands, multi-line reservations, queries."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeVar, Unpack
from uuid import UUID

from suuupra_commerce.application import (
    CommerceApplication,
    ServiceOptions,
)
from suuupra_commerce.errors import (
    AlreadyExistsError,
    InvalidInputError,
    InventoryItemNotFoundError,
    UnknownSkuError,
)
from suuupra_commerce.inventory.commands import (
    AddLocation,
    AdjustStock,
    ConfirmReservation,
    CountStock,
    FulfilReservation,
    ReceiveStock,
    RegisterItem,
    ReleaseReservation,
    ReserveStock,
    SetBackorderPolicy,
    SetThresholds,
)
from suuupra_commerce.inventory.domain import (
    AdjustmentReason,
    AllocationStrategy,
    InventoryItem,
    PriorityOrder,
    ReservationStatus,
    inventory_id_for,
    reservation_id_for,
)
from suuupra_commerce.inventory.views import (
    InventoryItemView,
    InventoryProjection,
    InventorySummary,
    summarise,
)
from suuupra_commerce.projections import ViewQuery, instant
from suuupra_commerce.tracing import traced_service
from suuupra_commerce.values import check_identifier, check_quantity, check_sku

__all__ = ["Inventory", "ReservationView", "ReservedLine"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReservedLine:
    """One line of a reservation: where its units are held, until when, and its status.

    The status is ``RESERVED`` for a new reservation; reserving again for the same order
    returns the reservation as it stands (``CONFIRMED``, or ended: ``RELEASED``, ...).
    """

    sku: str
    inventory_id: UUID
    reservation_id: UUID
    quantity: int
    allocations: Mapping[str, int]
    expires_at: datetime
    status: ReservationStatus


@dataclass(frozen=True, slots=True)
class ReservationView:
    """A reservation as it stands in its inventory item."""

    sku: str
    inventory_id: UUID
    reservation_id: UUID
    order_id: str
    quantity: int
    fulfilled: int
    outstanding: int
    status: ReservationStatus
    expires_at: datetime


@traced_service
class Inventory(CommerceApplication):
    """Stock per SKU and location, reservations that never oversell, and stock queries.

    >>> from suuupra_commerce.money import Money
    >>> inventory = Inventory(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    >>> _ = inventory.register(RegisterItem(sku="MUG-1", product_id="mug", name="Mug",
    ...     unit_price=Money("9.50", "EUR"), initial_quantity=5))
    >>> inventory.item("MUG-1").available
    5
    """

    name = "Inventory"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        allocation: AllocationStrategy | None = None,
        **options: Unpack[ServiceOptions],
    ) -> None:
        super().__init__(env, **options)
        self.allocation: AllocationStrategy = allocation or PriorityOrder()
        self.register_projection(InventoryProjection())

    # --- loading ------------------------------------------------------------------------------

    def aggregate(self, sku: str) -> InventoryItem:
        """The inventory item of ``sku``, rebuilt from its events."""
        check_sku(sku)
        return self._load(InventoryItem, inventory_id_for(sku), UnknownSkuError(sku))

    def _change(self, sku: str, decide: Callable[[InventoryItem], Any]) -> Any:
        def attempt() -> Any:
            item = self.aggregate(sku)
            result = decide(item)
            self.save(item)
            return result

        return self._run(attempt, writes=[inventory_id_for(sku)])

    def _change_many(
        self, skus: Iterable[str], decide: Callable[[InventoryItem], Any]
    ) -> list[Any]:
        """Apply ``decide`` to several items and save them in one atomic write."""
        ordered = sorted(set(skus))

        def attempt() -> list[Any]:
            items = [self.aggregate(sku) for sku in ordered]
            results = [decide(item) for item in items]
            self.save(*items)
            return results

        return self._run(attempt, writes=[inventory_id_for(sku) for sku in ordered])

    # --- commands -----------------------------------------------------------------------------

    def register(self, cmd: RegisterItem) -> UUID:
        """Register a SKU; ``AlreadyExistsError`` if it is registered. Returns its inventory id."""

        def attempt() -> UUID:
            if self._exists(inventory_id_for(cmd.sku)):
                raise AlreadyExistsError(f"SKU {cmd.sku} is registered already")
            item = InventoryItem.register(
                sku=cmd.sku,
                product_id=cmd.product_id,
                name=cmd.name,
                unit_price=cmd.unit_price,
                location=cmd.location,
                low_stock_threshold=cmd.low_stock_threshold,
                reorder_point=cmd.reorder_point,
                reorder_quantity=cmd.reorder_quantity,
                allow_backorder=cmd.allow_backorder,
                backorder_limit=cmd.backorder_limit,
                initial_quantity=cmd.initial_quantity,
            )
            self.save(item)
            return item.id

        result: UUID = self._run(attempt, writes=[inventory_id_for(cmd.sku)])
        return result

    def add_location(self, cmd: AddLocation) -> None:
        """Stock a SKU at another location."""
        self._change(cmd.sku, lambda item: item.add_location(cmd.location, cmd.priority))

    def receive(self, cmd: ReceiveStock) -> None:
        """Add delivered units to a location."""
        self._change(cmd.sku, lambda item: item.receive(cmd.location, cmd.quantity, cmd.reference))

    def adjust(self, cmd: AdjustStock) -> None:
        """Adjust units by hand, with a reason."""
        self._change(
            cmd.sku,
            lambda item: item.adjust(cmd.location, cmd.delta, cmd.reason, cmd.note, cmd.reference),
        )

    def count(self, cmd: CountStock) -> int:
        """Record a physical count; returns the discrepancy (counted minus expected)."""
        discrepancy: int = self._change(
            cmd.sku, lambda item: item.count(cmd.location, cmd.counted, cmd.note)
        )
        return discrepancy

    def set_thresholds(self, cmd: SetThresholds) -> None:
        """Change an item's low-stock threshold and reorder settings."""
        self._change(
            cmd.sku,
            lambda item: item.set_thresholds(
                cmd.low_stock_threshold, cmd.reorder_point, cmd.reorder_quantity
            ),
        )

    def set_backorder_policy(self, cmd: SetBackorderPolicy) -> None:
        """Allow or stop backorders for an item."""
        self._change(
            cmd.sku,
            lambda item: item.set_backorder_policy(cmd.allow_backorder, cmd.backorder_limit),
        )

    def reserve(self, cmd: ReserveStock) -> list[ReservedLine]:
        """Reserve every line for the order, or none: one atomic write across the items.

        Idempotent by order id: reserving the same lines for the same order again
        returns the existing reservations. ``InsufficientStockError`` (or any other
        error) leaves every item untouched.
        """
        quantities = {line.sku: line.quantity for line in cmd.lines}
        expires_at = self.clock.now() + timedelta(minutes=cmd.duration_minutes)

        def decide(item: InventoryItem) -> ReservedLine:
            rid = reservation_id_for(cmd.order_id, item.sku)
            held = item.reserve(
                rid, cmd.order_id, quantities[item.sku], expires_at, self.allocation
            )
            return ReservedLine(
                sku=item.sku,
                inventory_id=item.id,
                reservation_id=rid,
                quantity=held.quantity,
                allocations=MappingProxyType(dict(held.held)),
                expires_at=held.expires_at,
                status=held.status,
            )

        reserved: list[ReservedLine] = self._change_many(quantities, decide)
        return reserved

    def confirm(self, cmd: ConfirmReservation) -> None:
        """Commit a reservation; repeating is a no-op."""
        self._change(cmd.sku, lambda item: item.confirm(cmd.reservation_id))

    def fulfil(self, cmd: FulfilReservation) -> int:
        """Ship units of a confirmed reservation; returns units shipped (0 for a repeat)."""
        shipped: int = self._change(
            cmd.sku, lambda item: item.fulfil(cmd.reservation_id, cmd.quantity, cmd.shipment)
        )
        return shipped

    def release(self, cmd: ReleaseReservation) -> int:
        """Give back a reservation's units; returns units freed (0 for a repeat)."""
        freed: int = self._change(
            cmd.sku, lambda item: item.release(cmd.reservation_id, cmd.reason)
        )
        return freed

    # --- order-level operations (one atomic write across an order's items) --------------------

    def confirm_order(self, order_id: str, skus: Iterable[str]) -> None:
        """Confirm the reservations of an order's lines."""
        check_identifier(order_id, "order id")
        self._change_many(skus, lambda item: item.confirm(reservation_id_for(order_id, item.sku)))

    def release_order(self, order_id: str, skus: Iterable[str], reason: str = "released") -> int:
        """Release what an order's lines still hold; returns units freed."""
        check_identifier(order_id, "order id")
        freed = self._change_many(
            skus, lambda item: item.release(reservation_id_for(order_id, item.sku), reason)
        )
        return sum(freed)

    def fulfil_order(self, order_id: str, quantities: Mapping[str, int], shipment: str) -> int:
        """Ship units of an order's confirmed reservations, by SKU; returns units shipped."""
        check_identifier(order_id, "order id")
        for units in quantities.values():
            check_quantity(units)
        shipped = self._change_many(
            quantities,
            lambda item: item.fulfil(
                reservation_id_for(order_id, item.sku), quantities[item.sku], shipment
            ),
        )
        return sum(shipped)

    def restock(self, quantities: Mapping[str, int], reference: str, note: str = "") -> None:
        """Put returned units back on hand (at each item's first location), once per reference."""
        check_identifier(reference, "reference")

        def decide(item: InventoryItem) -> None:
            item.adjust(
                item.primary_location,
                check_quantity(quantities[item.sku]),
                AdjustmentReason.RETURN_TO_STOCK,
                note,
                reference=f"{reference}/{item.sku}",
            )

        self._change_many(quantities, decide)

    def expire_reservations(self, now: datetime | None = None) -> int:
        """Release unconfirmed reservations past their deadline; returns how many expired.

        Safe to run concurrently and repeatedly: expiring is a no-op for a reservation
        that is no longer unconfirmed and due.
        """
        moment = now if now is not None else self.clock.now()
        if not isinstance(moment, datetime) or moment.utcoffset() is None:
            raise InvalidInputError("now must be a timezone-aware datetime")
        expired = 0
        query = ViewQuery(at_most={"next_expiry": instant(moment)}, order_by="sku")
        due = self._find(InventoryProjection.name, query, fresh=True)
        for doc in due:
            ids = InventoryProjection.due(doc, moment)

            def decide(item: InventoryItem, ids: list[UUID] = ids) -> int:
                return sum(1 for rid in ids if item.expire(rid, moment))

            expired += int(self._change(doc["sku"], decide))
        return expired

    # --- queries (from the read model) --------------------------------------------------------

    def item(self, sku: str) -> InventoryItemView:
        """Levels of one SKU; ``UnknownSkuError`` if it is not registered."""
        check_sku(sku)
        found = self._find(InventoryProjection.name, ViewQuery(equal={"sku": sku}))
        if not found:
            raise UnknownSkuError(sku)
        return InventoryProjection.view(found[0])

    def item_by_id(self, inventory_id: UUID) -> InventoryItemView:
        """Levels of one item by its inventory id."""
        docs = self._query(
            lambda: self.views.get_many(InventoryProjection.name, [str(inventory_id)])
        )
        if not docs:
            raise InventoryItemNotFoundError(inventory_id)
        return InventoryProjection.view(docs[str(inventory_id)])

    def items(self) -> list[InventoryItemView]:
        """Every item, by SKU."""
        return self._views(ViewQuery(order_by="sku"))

    def low_stock(self) -> list[InventoryItemView]:
        """Items at or below their low-stock threshold."""
        return self._views(ViewQuery(equal={"low_stock": "yes"}, order_by="sku"))

    def reorder_needed(self) -> list[InventoryItemView]:
        """Items at or below their reorder point."""
        return self._views(ViewQuery(equal={"reorder_needed": "yes"}, order_by="sku"))

    def summary(self) -> InventorySummary:
        """Totals over every item."""
        return summarise(self.items())

    def _views(self, query: ViewQuery) -> list[InventoryItemView]:
        return [
            InventoryProjection.view(doc) for doc in self._find(InventoryProjection.name, query)
        ]

    def reservation(self, sku: str, reservation_id: UUID) -> ReservationView:
        """One reservation as it stands (read from its item)."""
        item = self.aggregate(sku)
        r = item.reservation(reservation_id)
        return ReservationView(
            sku=item.sku,
            inventory_id=item.id,
            reservation_id=reservation_id,
            order_id=r.order_id,
            quantity=r.quantity,
            fulfilled=r.fulfilled,
            outstanding=r.outstanding,
            status=r.status,
            expires_at=r.expires_at,
        )
