"""The saga test kit: fake participants, faults to inject, a driver, and a crash harness.

What a host (and this library's own suite) uses to test sagas without a network:

* :class:`FakePaymentGateway`, :class:`FakeShippingProvider`, :class:`FakeNotifier`:
  faithful in-memory ports (idempotent by key, inspectable, told to fail or decline);
* :class:`ParticipantFaults`: faults between the dispatcher and a participant, per
  action: fail N times or for good, lose the command, lose the answer, answer late,
  answer twice;
* :class:`SagaTestKit`: a :class:`~suuupra_commerce.system.Commerce` wired with the
  fakes and a :class:`~suuupra_commerce.testing.FakeClock`; :meth:`SagaTestKit.settle`
  runs the engine and moves the clock to each next timer until every saga has ended;
  :meth:`SagaTestKit.violations` checks what must hold after any run;
* :class:`CrashingRecorders` and :class:`CrashHarness`: stop everything right after
  any chosen store write, as if the process died there, and restart from the stores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.errors import (
    AlreadyExistsError,
    CommerceError,
    PaymentDeclinedError,
    ReplyPendingError,
)
from suuupra_commerce.inventory.commands import RegisterItem
from suuupra_commerce.inventory.domain import InventoryItem, ReservationStatus
from suuupra_commerce.money import Money
from suuupra_commerce.orders.commands import OrderLineRequest, PlaceOrder
from suuupra_commerce.orders.lifecycle import OrderStatus
from suuupra_commerce.ports import (
    AuthorizationRequest,
    CaptureRequest,
    CustomerNotification,
    RefundRequest,
    ShipmentBooking,
    ShipmentRequest,
    VoidRequest,
)
from suuupra_commerce.sagas.domain import Reply, SagaStatus, StepCommand
from suuupra_commerce.sagas.orders import fulfilment_saga_id
from suuupra_commerce.sagas.service import Handler, Participants, Sagas
from suuupra_commerce.system import Commerce, Settings
from suuupra_commerce.testing.fakes import FakeClock

__all__ = [
    "CrashHarness",
    "CrashingRecorders",
    "FakeAuthorization",
    "FakeNotifier",
    "FakePaymentGateway",
    "FakeShippingProvider",
    "ParticipantFaults",
    "SagaTestKit",
    "SimulatedCrash",
    "fake_ports",
]


class _Faulty:
    """Queued failures per operation, shared by the fakes."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._failures: dict[str, list[BaseException]] = {}
        self.calls: list[tuple[str, str]] = []

    def fail_next(self, operation: str, times: int = 1, error: Exception | None = None) -> None:
        """Make the next ``times`` calls of ``operation`` raise ``error`` (a ConnectionError)."""
        with self._lock:
            queue = self._failures.setdefault(operation, [])
            for _ in range(times):
                queue.append(error or ConnectionError(f"{operation}: service unavailable"))

    def _call(self, operation: str, key: str) -> None:
        with self._lock:
            self.calls.append((operation, key))
            queue = self._failures.get(operation)
            if queue:
                raise queue.pop(0)


@dataclass(slots=True)
class FakeAuthorization:
    """An authorization as the fake gateway holds it."""

    reference: str
    order_id: str
    amount: Money
    status: str = "authorized"  # authorized | captured | voided
    captured: Money | None = None
    refunded: list[Money] = field(default_factory=list)


class FakePaymentGateway(_Faulty):
    """A payment gateway in memory: idempotent by key, with declines and outages on demand.

    >>> gateway = FakePaymentGateway()
    >>> request = AuthorizationRequest("k-1", "order-1", "alice", Money("5.00", "USD"))
    >>> gateway.authorize(request) == gateway.authorize(request)
    True
    >>> len(gateway.authorizations)
    1
    """

    def __init__(self) -> None:
        super().__init__()
        self.authorizations: dict[str, FakeAuthorization] = {}
        self._answers: dict[str, str] = {}
        self._declined: dict[str | None, str] = {}
        self.refunds: dict[str, tuple[str, Money]] = {}

    def decline(self, reason: str = "card declined", order_id: str | None = None) -> None:
        """Decline authorizations from now on (of one order, or of every order)."""
        with self._lock:
            self._declined[order_id] = reason

    def authorize(self, request: AuthorizationRequest) -> str:
        with self._lock:
            self._call("authorize", request.idempotency_key)
            if request.idempotency_key in self.authorizations:
                return self.authorizations[request.idempotency_key].reference
            reason = self._declined.get(request.order_id, self._declined.get(None))
            if reason is not None:
                raise PaymentDeclinedError(reason)
            reference = f"auth-{len(self.authorizations) + 1}"
            self.authorizations[request.idempotency_key] = FakeAuthorization(
                reference, request.order_id, request.amount
            )
            return reference

    def capture(self, request: CaptureRequest) -> str:
        with self._lock:
            self._call("capture", request.idempotency_key)
            if request.idempotency_key in self._answers:
                return self._answers[request.idempotency_key]
            held = self.authorizations.get(request.authorization_key)
            if held is None or held.status == "voided":
                raise PaymentDeclinedError("no open authorization to capture")
            if held.status == "authorized":
                if request.amount > held.amount:
                    raise PaymentDeclinedError("capture exceeds the authorization")
                held.status = "captured"
                held.captured = request.amount
            reference = f"cap-{held.reference}"
            self._answers[request.idempotency_key] = reference
            return reference

    def void(self, request: VoidRequest) -> None:
        with self._lock:
            self._call("void", request.idempotency_key)
            held = self.authorizations.get(request.authorization_key)
            if held is None or held.status == "voided":
                return
            if held.status == "captured":
                raise PaymentDeclinedError("a captured payment is refunded, not voided")
            held.status = "voided"

    def refund(self, request: RefundRequest) -> str:
        with self._lock:
            self._call("refund", request.idempotency_key)
            if request.idempotency_key in self.refunds:
                return self.refunds[request.idempotency_key][0]
            capture = self._answers.get(request.capture_key)
            held = next(
                (a for a in self.authorizations.values() if f"cap-{a.reference}" == capture),
                None,
            )
            if held is None or held.captured is None:
                raise PaymentDeclinedError("no capture to refund")
            left = held.captured
            for earlier in held.refunded:
                left = left - earlier
            if request.amount > left:
                raise PaymentDeclinedError("refund exceeds the capture")
            held.refunded.append(request.amount)
            reference = f"ref-{len(self.refunds) + 1}"
            self.refunds[request.idempotency_key] = (reference, request.amount)
            return reference

    # --- inspection ---------------------------------------------------------------------------

    def of_order(self, order_id: UUID | str) -> list[FakeAuthorization]:
        """Every authorization made for an order."""
        with self._lock:
            return [a for a in self.authorizations.values() if a.order_id == str(order_id)]

    def captured(self, order_id: UUID | str) -> Money | None:
        """What was captured for an order, less what was refunded (``None``: nothing taken)."""
        taken = [a for a in self.of_order(order_id) if a.captured is not None]
        if not taken:
            return None
        total = taken[0].captured
        assert total is not None
        for authorization in taken[1:]:
            assert authorization.captured is not None
            total = total + authorization.captured
        for authorization in taken:
            for refund in authorization.refunded:
                total = total - refund
        return total


class FakeShippingProvider(_Faulty):
    """A carrier in memory: one booking per idempotency key."""

    def __init__(self) -> None:
        super().__init__()
        self.bookings: dict[str, tuple[ShipmentRequest, ShipmentBooking]] = {}

    def create_shipment(self, request: ShipmentRequest) -> ShipmentBooking:
        with self._lock:
            self._call("create_shipment", request.idempotency_key)
            if request.idempotency_key in self.bookings:
                return self.bookings[request.idempotency_key][1]
            n = len(self.bookings) + 1
            booking = ShipmentBooking(f"shp-{n}", "fake-carrier", f"TRK{n:06d}")
            self.bookings[request.idempotency_key] = (request, booking)
            return booking

    def of_order(self, order_id: UUID | str) -> list[ShipmentBooking]:
        """Every booking made for an order."""
        with self._lock:
            return [b for r, b in self.bookings.values() if r.order_id == str(order_id)]


class FakeNotifier(_Faulty):
    """A notifier in memory: one message per idempotency key."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: dict[str, CustomerNotification] = {}

    def notify(self, notification: CustomerNotification) -> None:
        with self._lock:
            self._call("notify", notification.idempotency_key)
            self.sent.setdefault(notification.idempotency_key, notification)

    def to(self, order_id: UUID | str) -> list[str]:
        """The templates sent about an order, in order."""
        with self._lock:
            return [n.template for n in self.sent.values() if n.order_id == str(order_id)]


@dataclass(slots=True)
class _Fault:
    kind: str
    times: int
    error: Exception | None = None
    delay: timedelta = timedelta(0)
    deliveries: int | None = 1


class ParticipantFaults:
    """Faults injected between the dispatcher and the participants, action by action.

    A fault hits the next ``times`` commands of its action, each under its own key, in
    their first ``deliveries`` deliveries (every one for ``None``): a command sent again
    after a timeout is a later delivery, one the dispatcher repeats after a crash is the
    same delivery, and meets the same fault.

    Wraps every handler of ``participants`` in place. Answers held back (late,
    duplicated) are handed to the sagas by :meth:`deliver_due`, the way a webhook would:
    one the sagas refuse is sent again ``redelivery_interval`` later, up to
    ``redeliveries`` times.
    """

    def __init__(self, participants: Participants, clock: FakeClock) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._faults: dict[str, list[_Fault]] = {}
        self._assigned: dict[str, _Fault] = {}
        self._held: list[tuple[datetime, int, Reply, int]] = []
        self.redeliveries = 5
        self.redelivery_interval = timedelta(minutes=10)
        self._serial = 0
        self.attach(participants)

    def attach(self, participants: Participants) -> None:
        """Wrap the handlers of ``participants`` (after a restart, say)."""
        for action in participants.actions():
            participants.register(action, self._wrap(action, participants.handler(action)))

    def _queue(self, action: str, fault: _Fault) -> None:
        with self._lock:
            self._faults.setdefault(action, []).append(fault)

    def fail(
        self,
        action: str,
        times: int = 1,
        error: Exception | None = None,
        deliveries: int | None = 1,
    ) -> None:
        """Refuse the next ``times`` commands of ``action`` before acting (retryable by default)."""
        self._queue(action, _Fault("fail", times, error, deliveries=deliveries))

    def drop_request(self, action: str, times: int = 1, deliveries: int | None = 1) -> None:
        """Lose the next ``times`` commands: nothing is done and no answer comes."""
        self._queue(action, _Fault("drop_request", times, deliveries=deliveries))

    def drop_reply(self, action: str, times: int = 1, deliveries: int | None = 1) -> None:
        """Do the next ``times`` commands, but lose their answers."""
        self._queue(action, _Fault("drop_reply", times, deliveries=deliveries))

    def answer_late(
        self, action: str, delay: timedelta, times: int = 1, deliveries: int | None = 1
    ) -> None:
        """Do the next ``times`` commands, and answer only ``delay`` later."""
        self._queue(action, _Fault("late", times, delay=delay, deliveries=deliveries))

    def answer_twice(self, action: str, times: int = 1, deliveries: int | None = 1) -> None:
        """Do the next ``times`` commands, answer, and answer once more."""
        self._queue(action, _Fault("twice", times, deliveries=deliveries))

    def _take(self, action: str, key: str) -> _Fault | None:
        """The fault for this command: every delivery of one key meets the same fault."""
        with self._lock:
            if key in self._assigned:
                return self._assigned[key]
            queue = self._faults.get(action)
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            self._assigned[key] = fault
            return fault

    def _hold(self, reply: Reply, delay: timedelta, tries: int = 0) -> None:
        with self._lock:
            self._serial += 1
            self._held.append((self.clock.now() + delay, self._serial, reply, tries))

    def _wrap(self, action: str, handler: Handler) -> Handler:
        def faulty(command: StepCommand) -> Mapping[str, Any] | None:
            fault = self._take(action, command.idempotency_key)
            if fault is None or (
                fault.deliveries is not None and command.delivery > fault.deliveries
            ):
                return handler(command)
            if fault.kind == "fail":
                raise fault.error or ConnectionError(f"{action}: injected failure")
            if fault.kind == "drop_request":
                raise ReplyPendingError(f"{action}: command lost")
            try:
                reply = Reply.success(command.key, handler(command))
            except ReplyPendingError:
                raise
            except Exception as error:  # noqa: BLE001 - the answer, whatever it is, is held
                reply = Reply.failure(command.key, error)
            if fault.kind == "drop_reply":
                raise ReplyPendingError(f"{action}: answer lost")
            if fault.kind == "late":
                self._hold(reply, fault.delay)
                raise ReplyPendingError(f"{action}: answer delayed")
            self._hold(reply, timedelta(0))  # twice: answer now, and once more
            if reply.succeeded:
                return reply.result
            raise RuntimeError(reply.error)

        return faulty

    def deliver_due(self, sagas: Sagas) -> int:
        """Hand every held answer that is due to its saga; returns how many."""
        now = self.clock.now()
        with self._lock:
            due = sorted((h for h in self._held if h[0] <= now), key=lambda h: (h[0], h[1]))
            self._held = [h for h in self._held if h[0] > now]
        delivered = 0
        for _, _, reply, tries in due:
            try:
                sagas.deliver_reply(reply)
                delivered += 1
            except CommerceError:
                # Refused (its saga is parked, say): sent again later, as webhooks are.
                if tries < self.redeliveries:
                    self._hold(reply, self.redelivery_interval, tries + 1)
        return delivered

    def next_due(self) -> datetime | None:
        """When the next held answer is due, if any is held."""
        with self._lock:
            return min((h[0] for h in self._held), default=None)


def fake_ports() -> dict[str, Any]:
    """The saga ports, faked: ``Commerce(**fake_ports(), price_book=...)``.

    Also a ``--host`` for the command line: ``suuupra-commerce worker --host
    suuupra_commerce.testing.sagas:fake_ports``.

    >>> sorted(fake_ports())
    ['notifier', 'payments', 'shipping_provider']
    """
    return {
        "payments": FakePaymentGateway(),
        "shipping_provider": FakeShippingProvider(),
        "notifier": FakeNotifier(),
    }


class SimulatedCrash(BaseException):
    """Raised right after a store write, as if the process had died there.

    A ``BaseException``: no ``except Exception`` in the library can swallow it.
    """


class CrashingRecorders:
    """A recorder hook that counts store writes and can crash right after one of them.

    In-memory recorders are kept across restarts (they *are* the store); SQLite and
    PostgreSQL recorders are wrapped afresh on every start.
    """

    def __init__(self) -> None:
        self.writes = 0
        self.crash_after: int | None = None
        self._kept: dict[str, ApplicationRecorder] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str, recorder: ApplicationRecorder) -> ApplicationRecorder:
        kept = self._kept.get(name)
        if kept is not None and type(kept) is type(recorder):
            return kept
        original = recorder.insert_events

        def insert_events(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            with self._lock:
                self.writes += 1
                crash = self.crash_after is not None and self.writes == self.crash_after
            if crash:
                raise SimulatedCrash(f"crashed after store write {self.writes} ({name})")
            return result

        recorder.insert_events = insert_events  # type: ignore[method-assign]
        if type(recorder).__module__ == "eventsourcing.popo":
            self._kept[name] = recorder
        return recorder


class SagaTestKit:
    """Commerce wired with fake participants and a fake clock, with a driver and checks."""

    def __init__(
        self,
        settings: Settings,
        *,
        price_book: InMemoryPriceBook,
        clock: FakeClock | None = None,
        payments: FakePaymentGateway | None = None,
        shipping: FakeShippingProvider | None = None,
        notifier: FakeNotifier | None = None,
        recorder_hook: CrashingRecorders | None = None,
        faults: ParticipantFaults | None = None,
    ) -> None:
        self.settings = settings
        self.price_book = price_book
        self.clock = clock or FakeClock()
        self.payments = payments or FakePaymentGateway()
        self.shipping = shipping or FakeShippingProvider()
        self.notifier = notifier or FakeNotifier()
        self.recorders = recorder_hook
        self.commerce = Commerce(
            settings,
            price_book=price_book,
            clock=self.clock,
            payments=self.payments,
            shipping_provider=self.shipping,
            notifier=self.notifier,
            recorder_hook=recorder_hook,
        )
        if faults is None:
            self.faults = ParticipantFaults(self.commerce.participants, self.clock)
        else:
            self.faults = faults
            faults.attach(self.commerce.participants)
        self.initial_stock: dict[str, int] = {}

    def restart(self) -> SagaTestKit:
        """A new kit on the same stores, fakes, clock and faults (a process restart)."""
        with suppress(Exception):
            self.commerce.close()
        kit = SagaTestKit(
            self.settings,
            price_book=self.price_book,
            clock=self.clock,
            payments=self.payments,
            shipping=self.shipping,
            notifier=self.notifier,
            recorder_hook=self.recorders,
            faults=self.faults,
        )
        kit.initial_stock = dict(self.initial_stock)
        return kit

    def close(self) -> None:
        """Close the kit's stores (the fakes and the clock stay usable)."""
        self.commerce.close()

    def __enter__(self) -> SagaTestKit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- set-up, safe to repeat ---------------------------------------------------------------

    def stock(self, sku: str, quantity: int, price: str = "10.00", currency: str = "USD") -> None:
        """Sell ``sku`` at ``price`` with ``quantity`` units on hand (once)."""
        self.price_book.set_price(sku, sku.lower(), Money(price, currency))
        self.initial_stock[sku] = quantity
        with suppress(AlreadyExistsError):
            self.commerce.inventory.register(
                RegisterItem(
                    sku=sku,
                    product_id=sku.lower(),
                    name=sku.lower(),
                    unit_price=Money(price, currency),
                    initial_quantity=quantity,
                )
            )

    def place(self, key: str, lines: Mapping[str, int], customer: str = "alice") -> UUID:
        """Place an order (idempotent by ``key``)."""
        return self.commerce.orders.place(
            PlaceOrder(
                idempotency_key=key,
                customer_id=customer,
                currency="USD",
                lines=[OrderLineRequest(sku=sku, quantity=q) for sku, q in lines.items()],
            )
        )

    # --- driving ------------------------------------------------------------------------------

    def settle(self, horizon: timedelta = timedelta(days=2)) -> None:
        """Run the engine, hand over late answers and move the clock to each next timer,
        until nothing is left to wait for (or ``horizon`` of fake time has passed)."""
        until = self.clock.now() + horizon
        engine = self.commerce.engine
        while True:
            engine.run_until_idle()
            if self.faults.deliver_due(self.commerce.sagas):
                continue
            upcoming = [t for t in (self.commerce.sagas.next_timer(), self.faults.next_due()) if t]
            if not upcoming or min(upcoming) > until:
                return
            step = min(upcoming) - self.clock.now()
            if step > timedelta(0):
                self.clock.advance(step)

    def fulfilment(self, order_id: UUID) -> SagaStatus:
        """The status of an order's fulfilment saga."""
        return self.commerce.sagas.get(fulfilment_saga_id(order_id)).status

    # --- what must hold after any run ---------------------------------------------------------

    def violations(self) -> list[str]:
        """Every broken guarantee, in words (an empty list when all hold)."""
        found: list[str] = []
        c = self.commerce
        for saga in c.sagas.list(limit=1000):
            if not saga.status.has_ended:
                found.append(f"saga {saga.saga_id} did not end: {saga.status} at {saga.step}")
        for sku, initial in self.initial_stock.items():
            found.extend(self._stock_violations(sku, initial))
        for summary in c.orders.listing(limit=1000):
            found.extend(self._order_violations(summary.order_id))
        return found

    def _stock_violations(self, sku: str, initial: int) -> list[str]:
        c = self.commerce
        item = c.inventory.aggregate(sku)
        found = []
        shipped = 0
        reserved_events: dict[UUID, int] = {}
        released_events: dict[UUID, int] = {}
        for e in c.inventory.events.get(item.id):
            if isinstance(e, InventoryItem.ReservationFulfilled):
                shipped += sum(e.taken.values())
            if isinstance(e, InventoryItem.Reserved):
                reserved_events[e.reservation_id] = reserved_events.get(e.reservation_id, 0) + 1
            if isinstance(e, InventoryItem.ReservationReleased):
                rid = e.reservation_id
                released_events[rid] = released_events.get(rid, 0) + 1
        if item.on_hand + shipped != initial:
            found.append(f"{sku}: on hand {item.on_hand} + shipped {shipped} != {initial}")
        if item.available < 0 or item.reserved < 0:
            found.append(f"{sku}: available {item.available}, reserved {item.reserved}")
        open_units = sum(
            r.outstanding
            for r in item.reservations.values()
            if r.status in (ReservationStatus.RESERVED, ReservationStatus.CONFIRMED)
        )
        if open_units != item.reserved:
            found.append(f"{sku}: reserved {item.reserved} != open reservations {open_units}")
        for rid, n in {**reserved_events, **released_events}.items():
            if reserved_events.get(rid, 0) > 1 or released_events.get(rid, 0) > 1:
                found.append(f"{sku}: reservation {rid} reserved or released more than once ({n})")
        return found

    def _order_violations(self, order_id: UUID) -> list[str]:
        c = self.commerce
        order = c.orders.aggregate(order_id)
        found = []
        captured = self.payments.captured(order_id)
        if captured is not None and captured.is_positive():
            if order.status is OrderStatus.PENDING:
                found.append(f"order {order_id} is pending with {captured} captured")
            if order.status is OrderStatus.CANCELLED and captured > order.cancellation_fee:
                kept = f"{captured} captured, more than the {order.cancellation_fee} fee"
                found.append(f"order {order_id} is cancelled with {kept}")
        saga = c.sagas.find(fulfilment_saga_id(order_id))
        if (
            saga is not None
            and saga.status in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED)
            and not any(e.event == "OperatorActed" for e in saga.timeline)
            and order.held_by is not None
        ):
            found.append(f"order {order_id}: its fulfilment ended but still holds it")
        if saga is not None and saga.status is SagaStatus.COMPENSATED:
            open_auths = [a for a in self.payments.of_order(order_id) if a.status != "voided"]
            if open_auths:
                found.append(f"order {order_id}: compensated with {open_auths} not voided")
            if order.status is not OrderStatus.CANCELLED:
                found.append(f"order {order_id}: compensated but {order.status}")
            item_holds = [
                sku
                for sku in order.lines
                if any(
                    r.order_id == str(order_id) and r.outstanding
                    for r in c.inventory.aggregate(sku).reservations.values()
                )
            ]
            if item_holds:
                found.append(f"order {order_id}: compensated but still holds {item_holds}")
        if saga is not None and saga.status is SagaStatus.COMPLETED:
            if order.status is not OrderStatus.PROCESSING and order.status is not (
                OrderStatus.CANCELLED
            ):
                found.append(f"order {order_id}: fulfilled but {order.status}")
            if len(self.shipping.of_order(order_id)) != 1:
                found.append(f"order {order_id}: {len(self.shipping.of_order(order_id))} shipments")
        captures = [a for a in self.payments.of_order(order_id) if a.captured is not None]
        if len(captures) > 1:
            found.append(f"order {order_id}: captured {len(captures)} times")
        return found


class CrashHarness:
    """Crashes a scenario after each of its store writes in turn, and restarts it.

    ``make_kit(recorders)`` builds a kit on fresh stores with the given recorder hook;
    ``scenario(kit)`` sets up (idempotently: it is run again after a restart, as a host
    repeats a request that got no answer) and settles. :meth:`runs` yields, for each
    crash point, the kit after the crash, the restart and a settle.
    """

    def __init__(
        self,
        make_kit: Callable[[CrashingRecorders], SagaTestKit],
        scenario: Callable[[SagaTestKit], None],
    ) -> None:
        self.make_kit = make_kit
        self.scenario = scenario

    def count_writes(self) -> int:
        """How many store writes the scenario makes when nothing crashes."""
        recorders = CrashingRecorders()
        kit = self.make_kit(recorders)
        try:
            self.scenario(kit)
        finally:
            kit.close()
        return recorders.writes

    def run(self, crash_after: int) -> SagaTestKit:
        """The kit after crashing right after write ``crash_after``, restarting and settling."""
        recorders = CrashingRecorders()
        recorders.crash_after = crash_after
        kit = self.make_kit(recorders)
        try:
            self.scenario(kit)
        except SimulatedCrash:
            recorders.crash_after = None
            kit = kit.restart()
            self.scenario(kit)
        return kit

    def runs(self, points: range | None = None) -> Iterator[tuple[int, SagaTestKit]]:
        """``(crash point, settled kit)`` for every write (or the given points)."""
        for point in points if points is not None else range(1, self.count_writes() + 1):
            kit = self.run(point)
            try:
                yield point, kit
            finally:
                kit.close()
