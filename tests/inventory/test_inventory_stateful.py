"""Stateful property tests: random command sequences against one InventoryItem.

A model tracks what the item must satisfy whatever happens: units are conserved,
``available`` never goes below its floor, ``reserved`` is exactly what live
reservations still hold, every refusal is a typed error that records nothing and is
justified by the levels at the time, and replaying the events gives the live state.
The second machine also saves every change into an ``Inventory`` service and checks
its read model (and the reloaded aggregate) against the item.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from suuupra_commerce.errors import (
    CommerceError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InsufficientStockError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidQuantityError,
    ReservationNotFoundError,
)
from suuupra_commerce.inventory.domain import (
    AdjustmentReason,
    AllocationStrategy,
    InventoryItem,
    MostStockFirst,
    PriorityOrder,
    ReservationStatus,
)
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.money import Money
from suuupra_commerce.testing import FakeClock, replay, state_of

START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
SKU = "SKU-1"
ALL_LOCATIONS = ("main", "east", "west")
HOLDING = {ReservationStatus.RESERVED, ReservationStatus.CONFIRMED}
STRATEGIES: dict[str, AllocationStrategy] = {
    "priority": PriorityOrder(),
    "most-stock": MostStockFirst(),
}

T = TypeVar("T")


@dataclass
class Expected:
    """What the model knows of one reservation."""

    order_id: str
    quantity: int
    expires_at: datetime
    status: ReservationStatus = ReservationStatus.RESERVED
    fulfilled: int = 0
    shipments: set[str] = field(default_factory=set)

    @property
    def outstanding(self) -> int:
        return self.quantity - self.fulfilled if self.status in HOLDING else 0


class InventoryItemMachine(RuleBasedStateMachine):
    """Drives one item through receive/adjust/count/reserve/confirm/fulfil/release/expire."""

    reservations = Bundle("reservations")

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Any] = []
        self.now = START
        self.received = 0
        self.adjusted = 0
        self.discrepancies = 0
        self.fulfilled = 0
        self.references: set[str] = set()
        self.expected: dict[UUID, Expected] = {}
        self.orders = 0
        self._item: InventoryItem | None = None

    @property
    def item(self) -> InventoryItem:
        assert self._item is not None
        return self._item

    def locations(self) -> list[str]:
        return sorted(self.item.locations)

    # --- plumbing ---------------------------------------------------------------------------

    def commit(self) -> list[Any]:
        """Take the item's new events (and, in a subclass, save them)."""
        new = list(self.item.collect_events())
        self.events.extend(new)
        return new

    def attempt(self, change: Callable[[], T]) -> tuple[T | None, CommerceError | None]:
        """Run ``change``; a refusal must be a ``CommerceError`` that changed nothing."""
        version = self.item.version
        before = copy.deepcopy(state_of(self.item))
        try:
            result = change()
        except CommerceError as refusal:
            assert self.item.pending_events == []
            assert self.item.version == version
            assert state_of(self.item) == before
            return None, refusal
        return result, None

    def refused(self, error: type[CommerceError], change: Callable[[], object]) -> None:
        _, refusal = self.attempt(change)
        assert isinstance(refusal, error), f"expected {error.__name__}, got {refusal!r}"

    # --- rules ------------------------------------------------------------------------------

    @initialize(
        extra=st.integers(1, 2),
        backorder_limit=st.none() | st.integers(0, 8),
        opening=st.integers(0, 20),
        low=st.integers(0, 10),
        reorder_point=st.integers(0, 10),
        reorder_quantity=st.integers(0, 20),
    )
    def register(
        self,
        extra: int,
        backorder_limit: int | None,
        opening: int,
        low: int,
        reorder_point: int,
        reorder_quantity: int,
    ) -> None:
        self._item = InventoryItem.register(
            sku=SKU,
            product_id="p-1",
            name="Thing",
            unit_price=Money("2.50", "EUR"),
            location="main",
            initial_quantity=opening,
            low_stock_threshold=low,
            reorder_point=reorder_point,
            reorder_quantity=reorder_quantity,
            allow_backorder=backorder_limit is not None,
            backorder_limit=backorder_limit or 0,
        )
        for priority, name in enumerate(ALL_LOCATIONS[1 : 1 + extra], start=1):
            self.item.add_location(name, 10 * priority)
        self.received = opening
        self.commit()

    @rule(
        where=st.integers(0, 2),
        quantity=st.integers(1, 25),
        reference=st.none() | st.sampled_from(["po-1", "po-2", "po-3"]),
    )
    def receive(self, where: int, quantity: int, reference: str | None) -> None:
        location = self.locations()[where % len(self.item.locations)]
        _, refusal = self.attempt(lambda: self.item.receive(location, quantity, reference))
        assert refusal is None
        new = self.commit()
        if reference in self.references:
            assert new == []
        else:
            assert isinstance(new[0], InventoryItem.StockReceived)
            self.received += quantity
        if reference is not None:
            self.references.add(reference)

    @rule(
        where=st.integers(0, 2),
        delta=st.integers(-15, 15).filter(bool),
        reason=st.sampled_from(AdjustmentReason),
        reference=st.none() | st.sampled_from(["adj-1", "adj-2", "po-1"]),
    )
    def adjust(
        self, where: int, delta: int, reason: AdjustmentReason, reference: str | None
    ) -> None:
        location = self.locations()[where % len(self.item.locations)]
        stock = copy.copy(self.item.locations[location])
        available, floor = self.item.available, self.item.floor
        _, refusal = self.attempt(
            lambda: self.item.adjust(location, delta, reason, "note", reference)
        )
        new = self.commit()
        if refusal is not None:
            assert isinstance(refusal, InsufficientStockError)
            assert reference not in self.references
            assert delta < 0
            assert (
                stock.on_hand + delta < 0
                or available + delta < floor
                or (not self.item.allow_backorder and stock.available + delta < 0)
            )
            return
        if reference in self.references:
            assert new == []
            return
        assert isinstance(new[0], InventoryItem.StockAdjusted)
        assert new[0].reason == reason.value
        self.adjusted += delta
        if reference is not None:
            self.references.add(reference)

    @rule(where=st.integers(0, 2), counted=st.integers(0, 40))
    def count(self, where: int, counted: int) -> None:
        location = self.locations()[where % len(self.item.locations)]
        stock = copy.copy(self.item.locations[location])
        available, floor = self.item.available, self.item.floor
        discrepancy, refusal = self.attempt(lambda: self.item.count(location, counted))
        new = self.commit()
        if refusal is not None:
            assert isinstance(refusal, InsufficientStockError)
            removed = stock.on_hand - counted
            assert removed > 0
            assert available - removed < floor or (
                not self.item.allow_backorder and counted < stock.reserved
            )
            return
        assert discrepancy == counted - stock.on_hand
        assert isinstance(new[0], InventoryItem.PhysicallyCounted)
        assert new[0].discrepancy == discrepancy
        self.discrepancies += discrepancy

    @rule(
        target=reservations,
        quantity=st.integers(1, 15),
        strategy=st.sampled_from(sorted(STRATEGIES)),
        minutes=st.integers(1, 60),
    )
    def reserve(self, quantity: int, strategy: str, minutes: int) -> Any:
        self.orders += 1
        order_id = f"order-{self.orders}"
        rid = uuid4()
        expires_at = self.now + timedelta(minutes=minutes)
        available, floor = self.item.available, self.item.floor
        _, refusal = self.attempt(
            lambda: self.item.reserve(rid, order_id, quantity, expires_at, STRATEGIES[strategy])
        )
        new = self.commit()
        if refusal is not None:
            assert isinstance(refusal, InsufficientStockError)
            assert available - quantity < floor
            return multiple()
        assert isinstance(new[0], InventoryItem.Reserved)
        assert sum(new[0].allocations.values()) == quantity
        self.expected[rid] = Expected(order_id, quantity, expires_at)
        return rid

    @rule(rid=reservations, other_quantity=st.booleans())
    def reserve_again(self, rid: UUID, other_quantity: bool) -> None:
        known = self.expected[rid]
        quantity = known.quantity + 1 if other_quantity else known.quantity
        if other_quantity:
            self.refused(
                IdempotencyKeyReusedError,
                lambda: self.item.reserve(rid, known.order_id, quantity, self.now),
            )
        else:
            self.item.reserve(rid, known.order_id, quantity, self.now)
        assert self.commit() == []

    @rule(rid=reservations)
    def confirm(self, rid: UUID) -> None:
        known = self.expected[rid]
        if known.status in {ReservationStatus.RELEASED, ReservationStatus.EXPIRED}:
            self.refused(IllegalTransitionError, lambda: self.item.confirm(rid))
            return
        self.item.confirm(rid)
        new = self.commit()
        if known.status is ReservationStatus.RESERVED:
            assert [type(e) for e in new[:1]] == [InventoryItem.ReservationConfirmed]
            known.status = ReservationStatus.CONFIRMED
        else:
            assert new == []

    @rule(
        rid=reservations,
        quantity=st.none() | st.integers(1, 16),
        shipment=st.sampled_from(["ship-1", "ship-2", "ship-3"]),
    )
    def fulfil(self, rid: UUID, quantity: int | None, shipment: str) -> None:
        known = self.expected[rid]
        held = dict(self.item.reservation(rid).held)
        on_hand = {name: s.on_hand for name, s in self.item.locations.items()}
        shipped, refusal = self.attempt(lambda: self.item.fulfil(rid, quantity, shipment))
        new = self.commit()
        if shipment in known.shipments or known.status is ReservationStatus.FULFILLED:
            assert (shipped, refusal, new) == (0, None, [])
            return
        units = known.outstanding if quantity is None else quantity
        if known.status is not ReservationStatus.CONFIRMED:
            assert isinstance(refusal, IllegalTransitionError)
        elif units > known.outstanding:
            assert isinstance(refusal, InvalidQuantityError)
        elif refusal is not None:
            # only backordered units that have not arrived can stop a shipment
            assert isinstance(refusal, InsufficientStockError)
            assert self.item.allow_backorder
            assert sum(min(n, max(on_hand[loc], 0)) for loc, n in held.items()) < units
        else:
            assert shipped == units
            assert isinstance(new[0], InventoryItem.ReservationFulfilled)
            assert sum(new[0].taken.values()) == units
            self.fulfilled += units
            known.fulfilled += units
            known.shipments.add(shipment)
            if known.fulfilled == known.quantity:
                known.status = ReservationStatus.FULFILLED

    @rule(rid=reservations)
    def release(self, rid: UUID) -> None:
        known = self.expected[rid]
        freed = self.item.release(rid, "changed mind")
        new = self.commit()
        if known.status in HOLDING:
            assert freed == known.outstanding
            assert isinstance(new[0], InventoryItem.ReservationReleased)
            known.status = ReservationStatus.RELEASED
        else:
            assert (freed, new) == (0, [])

    @rule(minutes=st.integers(1, 30))
    def advance_clock(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule(rid=reservations)
    def expire(self, rid: UUID) -> None:
        known = self.expected[rid]
        freed = self.item.expire(rid, self.now)
        new = self.commit()
        if known.status is ReservationStatus.RESERVED and known.expires_at <= self.now:
            assert freed == known.quantity
            assert isinstance(new[0], InventoryItem.ReservationExpired)
            known.status = ReservationStatus.EXPIRED
        else:
            assert (freed, new) == (0, [])

    def due(self) -> set[UUID]:
        return {
            rid
            for rid, known in self.expected.items()
            if known.status is ReservationStatus.RESERVED and known.expires_at <= self.now
        }

    @rule()
    def sweep(self) -> None:
        due = self.item.expired_reservations(self.now)
        assert set(due) == self.due()
        for rid in due:
            assert self.item.expire(rid, self.now) > 0
            self.expected[rid].status = ReservationStatus.EXPIRED
        self.commit()

    @rule(
        low=st.integers(0, 15), reorder_point=st.integers(0, 15), reorder_quantity=st.integers(0, 5)
    )
    def set_thresholds(self, low: int, reorder_point: int, reorder_quantity: int) -> None:
        self.item.set_thresholds(low, reorder_point, reorder_quantity)
        assert isinstance(self.commit()[0], InventoryItem.ThresholdsChanged)

    @rule(
        bad=st.sampled_from(
            [
                ("receive zero", InvalidQuantityError),
                ("receive a bool", InvalidQuantityError),
                ("receive elsewhere", InvalidInputError),
                ("adjust by a float", InvalidQuantityError),
                ("adjust for no reason", InvalidInputError),
                ("count below zero", InvalidQuantityError),
                ("reserve too much", InvalidQuantityError),
                ("reserve with a naive deadline", InvalidInputError),
                ("confirm a stranger", ReservationNotFoundError),
                ("fulfil an empty shipment", InvalidIdentifierError),
                ("expire with a naive clock", InvalidInputError),
            ]
        )
    )
    def refuse_bad_input(self, bad: tuple[str, type[CommerceError]]) -> None:
        name, error = bad
        item = self.item
        anyone = next(iter(self.expected), uuid4())
        naive = self.now.replace(tzinfo=None)
        changes: dict[str, Callable[[], object]] = {
            "receive zero": lambda: item.receive("main", 0),
            "receive a bool": lambda: item.receive("main", True),
            "receive elsewhere": lambda: item.receive("mars", 1),
            "adjust by a float": lambda: item.adjust("main", -1.0, AdjustmentReason.DAMAGE),  # type: ignore[arg-type]
            "adjust for no reason": lambda: item.adjust("main", 1, "vibes"),  # type: ignore[arg-type]
            "count below zero": lambda: item.count("main", -1),
            "reserve too much": lambda: item.reserve(uuid4(), "o-x", 10**7, self.now),
            "reserve with a naive deadline": lambda: item.reserve(uuid4(), "o-x", 1, naive),
            "confirm a stranger": lambda: item.confirm(uuid4()),
            "fulfil an empty shipment": lambda: item.fulfil(anyone, None, ""),
            "expire with a naive clock": lambda: item.expire(anyone, naive),
        }
        self.refused(error, changes[name])

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def available_never_below_its_floor(self) -> None:
        item = self.item
        assert item.available >= item.floor
        assert item.floor == (-item.backorder_limit if item.allow_backorder else 0)
        for stock in item.locations.values():
            assert stock.on_hand >= 0
            assert stock.reserved >= 0
            if not item.allow_backorder:
                assert stock.available >= 0

    @invariant()
    def units_are_conserved(self) -> None:
        assert self.item.on_hand == (
            self.received + self.adjusted + self.discrepancies - self.fulfilled
        )

    @invariant()
    def reserved_is_what_live_reservations_hold(self) -> None:
        assert self.item.reserved == sum(k.outstanding for k in self.expected.values())
        held = {
            UUID(rid): r.outstanding
            for rid, r in self.item.reservations.items()
            if r.status in HOLDING
        }
        assert sum(held.values()) == self.item.reserved
        for rid, known in self.expected.items():
            live = self.item.reservation(rid)
            assert (live.status, live.fulfilled, live.outstanding) == (
                known.status,
                known.fulfilled,
                known.outstanding,
            )

    @invariant()
    def replay_gives_the_live_state(self) -> None:
        assert self.item.pending_events == []
        rebuilt = replay(self.events)
        assert state_of(rebuilt) == state_of(self.item)

    @invariant()
    def signals_match_the_thresholds(self) -> None:
        item = self.item
        assert item.low_stock == (
            item.low_stock_threshold > 0 and item.available <= item.low_stock_threshold
        )
        assert item.reorder_needed == (
            item.reorder_quantity > 0 and item.available <= item.reorder_point
        )


MACHINE_SETTINGS = settings(max_examples=200, stateful_step_count=30, deadline=None)

TestInventoryItemMachine = InventoryItemMachine.TestCase
TestInventoryItemMachine.settings = MACHINE_SETTINGS


class InventoryServiceMachine(InventoryItemMachine):
    """The same, saving every change into an in-memory ``Inventory`` and checking its views."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(START)
        self.inventory = Inventory({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=self.clock)

    def teardown(self) -> None:
        self.inventory.close()

    def commit(self) -> list[Any]:
        recordings = self.inventory.save(self.item)
        new = [r.domain_event for r in recordings]
        self.events.extend(new)
        return new

    @rule(minutes=st.integers(1, 30))
    def advance_clock(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        self.clock.advance(timedelta(minutes=minutes))

    @rule()
    def sweep_through_the_service(self) -> None:
        """The service's sweep expires exactly the due reservations, once."""
        due = self.due()
        version = self.item.version
        assert self.inventory.expire_reservations() == len(due)
        assert self.inventory.expire_reservations() == 0
        stored = list(self.inventory.events.get(self.item.id, gt=version))
        expired = [e for e in stored if isinstance(e, InventoryItem.ReservationExpired)]
        assert {e.reservation_id for e in expired} == due
        self.events.extend(stored)
        self._item = self.inventory.aggregate(SKU)
        for rid in due:
            self.expected[rid].status = ReservationStatus.EXPIRED

    @invariant()
    def read_model_matches_the_item(self) -> None:
        item = self.item
        view = self.inventory.item(SKU)
        assert (view.on_hand, view.reserved, view.available, view.version) == (
            item.on_hand,
            item.reserved,
            item.available,
            item.version,
        )
        assert {
            name: (lv.on_hand, lv.reserved, lv.available, lv.priority)
            for name, lv in view.locations.items()
        } == {
            name: (s.on_hand, s.reserved, s.available, s.priority)
            for name, s in item.locations.items()
        }
        assert (view.low_stock, view.reorder_needed) == (item.low_stock, item.reorder_needed)
        assert (view.low_stock_threshold, view.reorder_point, view.reorder_quantity) == (
            item.low_stock_threshold,
            item.reorder_point,
            item.reorder_quantity,
        )
        assert (view.allow_backorder, view.backorder_limit) == (
            item.allow_backorder,
            item.backorder_limit,
        )

    @invariant()
    def stored_events_rebuild_the_item(self) -> None:
        assert state_of(self.inventory.aggregate(SKU)) == state_of(self.item)


TestInventoryServiceMachine = InventoryServiceMachine.TestCase
TestInventoryServiceMachine.settings = settings(MACHINE_SETTINGS, max_examples=100)
