"""The order sagas: fulfilment and cancellation, their participants, and the order-level API.

**Fulfilment** starts by itself when an order is placed (the saga store follows the
orders' log, so a crash between placing an order and starting its saga loses
nothing)::

    accept_order -> reserve_stock -> authorize_payment -> confirm_order
                 -> capture_payment (pivot) -> create_shipment -> notify_customer

Accepting the order makes the saga hold it (a semantic lock: the orders service refuses
commands not made for the saga) until the shipment is booked. Undoing it, newest first:
void the authorization, release the stock, reject the order (cancelled, and let go).
After the capture, nothing is undone: a step that keeps failing parks the saga as STUCK
for an operator, and the order stays held until it is resolved (``Orders.release``).

**Cancellation** (``OrderSagas.cancel``)::

    release_stock (pivot) -> refund_payment -> mark_cancelled -> notify_customer

It only moves forward: once stock is released the order is being cancelled, and a
refund that keeps failing parks the saga for an operator.

``OrderSagas.cancel`` turns a cancellation before the capture into the fulfilment's
compensation, and refuses one after it with ``OrderLockedError`` until the saga has
ended; ``Orders.cancel`` on a held order is refused the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from suuupra_commerce.application import CommerceApplication
from suuupra_commerce.context import current_context, metadata_of
from suuupra_commerce.errors import (
    CancellationNotAllowedError,
    IllegalTransitionError,
    OrderLockedError,
    PaymentDeclinedError,
)
from suuupra_commerce.inventory.commands import ReservationLine, ReserveStock
from suuupra_commerce.inventory.domain import ReservationStatus
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.money import Money, sum_money
from suuupra_commerce.orders.commands import (
    ApproveCancellation,
    AuthorizePayment,
    CancelOrder,
    CapturePayment,
    CompleteRefund,
    ConfirmOrder,
    FailPayment,
    HoldOrder,
    RejectOrder,
    StartFulfilment,
    VoidPayment,
)
from suuupra_commerce.orders.domain import CANCELLATION_REFUND_ID, Order
from suuupra_commerce.orders.lifecycle import OrderStatus, PaymentStatus
from suuupra_commerce.orders.service import Orders
from suuupra_commerce.ports import (
    AuthorizationRequest,
    CaptureRequest,
    CustomerNotification,
    Notifier,
    PaymentGateway,
    RefundRequest,
    ShipmentRequest,
    ShippingProvider,
    VoidRequest,
)
from suuupra_commerce.sagas.commands import CompensateSaga, StartSaga
from suuupra_commerce.sagas.definition import SagaDefinition, Step, StepRetry
from suuupra_commerce.sagas.domain import SagaStatus, StepCommand
from suuupra_commerce.sagas.service import Handler, Sagas, SagaStart, SagaTrigger
from suuupra_commerce.values import derived_id

__all__ = [
    "ORDER_CANCELLATION",
    "ORDER_FULFILMENT",
    "CancellationOutcome",
    "OrderParticipants",
    "OrderSagas",
    "cancellation_saga_id",
    "fulfilment_saga_id",
    "fulfilment_trigger",
]

#: Errors that say a command was refused for good: retrying cannot help.
FINAL = ("BusinessRuleError", "NotFoundError", "InvalidInputError", "IdempotencyKeyReusedError")

ORDER_FULFILMENT = SagaDefinition(
    name="order_fulfilment",
    version=1,
    description="Take a placed order to a booked shipment, or undo it.",
    steps=(
        Step(
            "accept_order",
            action="orders.accept",
            compensation="orders.reject",
            # A write to our own store: retried for days rather than given up, since giving
            # up would leave the placed order pending with nothing to undo.
            retry=StepRetry(
                max_attempts=1000, max_interval=timedelta(minutes=10), non_retryable=FINAL
            ),
        ),
        Step(
            "reserve_stock",
            action="inventory.reserve",
            compensation="inventory.release_order",
            retry=StepRetry(non_retryable=FINAL),
        ),
        Step(
            "authorize_payment",
            action="payments.authorize",
            compensation="payments.void",
            retry=StepRetry(non_retryable=FINAL),
        ),
        Step("confirm_order", action="orders.confirm", retry=StepRetry(non_retryable=FINAL)),
        Step(
            "capture_payment",
            action="payments.capture",
            pivot=True,
            retry=StepRetry(max_attempts=8, non_retryable=FINAL),
        ),
        Step(
            "create_shipment",
            action="shipping.create_shipment",
            retry=StepRetry(max_attempts=12, max_interval=timedelta(minutes=10)),
        ),
        Step(
            "notify_customer",
            action="notifier.order_confirmed",
            retry=StepRetry(max_attempts=12, max_interval=timedelta(minutes=10)),
        ),
    ),
)
"""Order fulfilment, version 1 (see the module docstring)."""

ORDER_CANCELLATION = SagaDefinition(
    name="order_cancellation",
    version=1,
    description="Cancel an order: release its stock, refund per the policy, record it, tell.",
    steps=(
        Step(
            "release_stock",
            action="inventory.release_order",
            pivot=True,
            retry=StepRetry(max_attempts=12, max_interval=timedelta(minutes=10)),
        ),
        Step(
            "refund_payment",
            action="payments.refund",
            retry=StepRetry(max_attempts=12, max_interval=timedelta(minutes=10)),
        ),
        Step(
            "mark_cancelled",
            action="orders.cancel",
            retry=StepRetry(max_attempts=12, max_interval=timedelta(minutes=10)),
        ),
        Step(
            "notify_customer",
            action="notifier.order_cancelled",
            retry=StepRetry(max_attempts=12, max_interval=timedelta(minutes=10)),
        ),
    ),
)
"""Order cancellation, version 1 (see the module docstring)."""


def fulfilment_saga_id(order_id: UUID) -> UUID:
    """The id of an order's fulfilment saga (one per order)."""
    return derived_id("saga", ORDER_FULFILMENT.name, order_id)


def cancellation_saga_id(order_id: UUID) -> UUID:
    """The id of an order's cancellation saga (one per order)."""
    return derived_id("saga", ORDER_CANCELLATION.name, order_id)


def _order_id(command: StepCommand) -> UUID:
    return UUID(command.data["order_id"])


def _reason(text: str) -> str:
    """Free text from a participant, cut to what an identifier may hold."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return (cleaned or "unspecified")[:200]


class OrderParticipants:
    """Performs the order sagas' actions with the library's services and the host's ports.

    Each action is idempotent: the inventory and orders services by their own ids
    (reservations by order and SKU, status moves that are already made are skipped),
    the ports by the idempotency key every request carries.
    """

    def __init__(
        self,
        *,
        inventory: Inventory,
        orders: Orders,
        payments: PaymentGateway | None = None,
        shipping: ShippingProvider | None = None,
        notifier: Notifier | None = None,
        reservation_minutes: int = 15,
    ) -> None:
        self.inventory = inventory
        self.orders = orders
        self.payments = payments
        self.shipping = shipping
        self.notifier = notifier
        self.reservation_minutes = reservation_minutes

    def handlers(self) -> dict[str, Handler]:
        """The actions these participants perform (those of missing ports left out)."""
        found: dict[str, Handler] = {
            "orders.accept": self.accept_order,
            "inventory.reserve": self.reserve_stock,
            "inventory.release_order": self.release_stock,
            "orders.reject": self.reject_order,
            "orders.confirm": self.confirm_order,
            "orders.cancel": self.mark_cancelled,
        }
        if self.payments is not None:
            found["payments.authorize"] = self.authorize_payment
            found["payments.void"] = self.void_authorization
            found["payments.capture"] = self.capture_payment
            found["payments.refund"] = self.refund_payment
        if self.shipping is not None:
            found["shipping.create_shipment"] = self.create_shipment
        if self.notifier is not None:
            found["notifier.order_confirmed"] = self.notify("order_confirmed")
            found["notifier.order_cancelled"] = self.notify("order_cancelled")
        return found

    def reads(self, command: StepCommand) -> list[tuple[CommerceApplication, UUID]]:
        """What performing ``command`` loads: an order saga's order (``Participants(reads=...)``).

        Other sagas' commands (a host's own, on the same participants) name nothing.
        """
        if command.saga not in (ORDER_FULFILMENT.name, ORDER_CANCELLATION.name):
            return []
        return [(self.orders, _order_id(command))]

    def _order(self, command: StepCommand) -> Order:
        return self.orders.aggregate(_order_id(command))

    def _record(
        self, command: StepCommand, change: Callable[[], None], done: Callable[[Order], bool]
    ) -> None:
        """Make ``change`` to the order; a change another delivery already made counts as made.

        A handler reads the order, then changes it. Two deliveries of one command can run at
        once (a partition changing hands while its old owner is still in a pass): both read
        the order before either changes it, and the second's change is then refused as an
        illegal transition. If the order is now where the change would have put it
        (``done``), the step is done, not failed: a failure would have the saga compensate
        a step that succeeded.
        """
        try:
            change()
        except IllegalTransitionError:
            if not done(self._order(command)):
                raise

    def _gateway(self) -> PaymentGateway:
        assert self.payments is not None  # registered only when configured
        return self.payments

    # --- inventory ----------------------------------------------------------------------------

    def reserve_stock(self, command: StepCommand) -> dict[str, Any]:
        """Hold every line's units for the order (placement usually has already)."""
        order = self._order(command)
        if order.status is not OrderStatus.PENDING:
            raise IllegalTransitionError("order", order.status.value, "fulfil")
        reserved = self.inventory.reserve(
            ReserveStock(
                order_id=str(order.id),
                lines=[
                    ReservationLine(sku=sku, quantity=quantity)
                    for sku, quantity in command.data["lines"].items()
                ],
                duration_minutes=self.reservation_minutes,
            )
        )
        for line in reserved:
            if line.status not in (ReservationStatus.RESERVED, ReservationStatus.CONFIRMED):
                raise IllegalTransitionError("reservation", line.status.value, "hold stock with")
        return {"reservations": {line.sku: str(line.reservation_id) for line in reserved}}

    def release_stock(self, command: StepCommand) -> dict[str, Any]:
        """Give back what the order's reservations still hold."""
        order = self._order(command)
        freed = self.inventory.release_order(
            str(order.id), list(order.lines), _reason(command.data.get("reason", "cancelled"))
        )
        return {"released": freed}

    # --- orders -------------------------------------------------------------------------------

    def accept_order(self, command: StepCommand) -> dict[str, Any]:
        """Take a pending order for the saga: it holds the order until it lets it go."""
        order = self._order(command)
        if order.status is not OrderStatus.PENDING:
            raise IllegalTransitionError("order", order.status.value, "fulfil")
        self.orders.hold(HoldOrder(order_id=order.id))
        return {}

    def reject_order(self, command: StepCommand) -> dict[str, Any]:
        """Undo the acceptance: cancel the order (no policy), release its stock, let it go."""
        rejected = self.orders.reject(
            RejectOrder(order_id=_order_id(command), reason="fulfilment could not complete")
        )
        return {"rejected": rejected}

    def confirm_order(self, command: StepCommand) -> dict[str, Any]:
        """Pending -> confirmed (its reservations stop expiring); done already is fine."""
        order = self._order(command)
        if order.status is OrderStatus.PENDING:
            self._record(
                command,
                lambda: self.orders.confirm(ConfirmOrder(order_id=order.id)),
                lambda now: now.status in (OrderStatus.CONFIRMED, OrderStatus.PROCESSING),
            )
        elif order.status not in (OrderStatus.CONFIRMED, OrderStatus.PROCESSING):
            raise IllegalTransitionError("order", order.status.value, "confirm")
        return {}

    def mark_cancelled(self, command: StepCommand) -> dict[str, Any]:
        """Record the cancellation (per the policy, or as approved) and the refund paid."""
        order = self._order(command)
        if order.status is OrderStatus.CANCELLATION_REQUESTED:
            self.orders.approve_cancellation(
                ApproveCancellation(
                    order_id=order.id, approved_by=command.data.get("approved_by") or "operator"
                )
            )
        elif order.status is not OrderStatus.CANCELLED:
            self.orders.cancel(
                CancelOrder(
                    order_id=order.id,
                    reason=command.data["reason"],
                    requested_by=command.data["requested_by"],
                )
            )
        refunded = command.result_of("refund_payment").get("refunded")
        order = self._order(command)
        refund = order.refunds.get(CANCELLATION_REFUND_ID)
        if refund is not None and refund.status == "initiated" and refunded:
            if Money.from_dict(refunded) != refund.amount:
                msg = f"refunded {refunded} but the order records {refund.amount}"
                raise IllegalTransitionError("refund", msg, "complete")
            self.orders.complete_refund(
                CompleteRefund(order_id=order.id, refund_id=CANCELLATION_REFUND_ID)
            )
        return {"status": self._order(command).status.value}

    # --- payments -----------------------------------------------------------------------------

    def authorize_payment(self, command: StepCommand) -> dict[str, Any]:
        """Authorize the order total at the gateway, then record it on the order.

        The reply says what the gateway did: once it authorized, the step succeeded,
        even if the order refuses to record it (cancelled meanwhile); the next step then
        fails and the compensation voids the authorization.
        """
        order = self._order(command)
        if order.status not in (OrderStatus.PENDING, OrderStatus.CONFIRMED):
            raise IllegalTransitionError("order", order.status.value, "authorize payment for")
        amount = Money.from_dict(command.data["amount"])
        try:
            reference = self._gateway().authorize(
                AuthorizationRequest(
                    idempotency_key=command.idempotency_key,
                    order_id=str(order.id),
                    customer_id=order.customer_id,
                    amount=amount,
                )
            )
        except PaymentDeclinedError as declined:
            if order.payment_status in (PaymentStatus.PENDING, PaymentStatus.AUTHORIZED):
                self.orders.fail_payment(
                    FailPayment(order_id=order.id, reason=_reason(declined.reason))
                )
            raise
        if order.payment_status in (PaymentStatus.PENDING, PaymentStatus.FAILED):
            self._record(
                command,
                lambda: self.orders.authorize_payment(
                    AuthorizePayment(order_id=order.id, reference=_reason(reference))
                ),
                lambda now: now.payment_status is PaymentStatus.AUTHORIZED,
            )
        return {"authorization": reference, "authorization_key": command.idempotency_key}

    def void_authorization(self, command: StepCommand) -> dict[str, Any]:
        """Release the authorization the forward step made (or may have made)."""
        order = self._order(command)
        assert command.forward_key is not None  # a compensation names what it undoes
        self._gateway().void(
            VoidRequest(
                idempotency_key=command.idempotency_key,
                order_id=str(order.id),
                authorization_key=command.forward_key,
            )
        )
        if order.payment_status is PaymentStatus.AUTHORIZED:
            self.orders.void_payment(VoidPayment(order_id=order.id))
        return {"voided": command.forward_key}

    def capture_payment(self, command: StepCommand) -> dict[str, Any]:
        """Capture the authorized amount (the pivot): only for a confirmed, authorized order."""
        order = self._order(command)
        if order.payment_status is PaymentStatus.CAPTURED:
            # An earlier delivery of this same command captured and recorded it.
            return {"capture": order.payment_reference, "capture_key": command.idempotency_key}
        if order.status is not OrderStatus.CONFIRMED:
            raise IllegalTransitionError("order", order.status.value, "capture payment for")
        if order.payment_status is not PaymentStatus.AUTHORIZED:
            raise IllegalTransitionError("payment", order.payment_status.value, "capture")
        authorization = command.result_of("authorize_payment")
        reference = self._gateway().capture(
            CaptureRequest(
                idempotency_key=command.idempotency_key,
                order_id=str(order.id),
                authorization_key=authorization["authorization_key"],
                amount=order.authorized,
            )
        )
        self._record(
            command,
            lambda: self.orders.capture_payment(CapturePayment(order_id=order.id)),
            lambda now: now.payment_status is PaymentStatus.CAPTURED,
        )
        return {"capture": reference, "capture_key": command.idempotency_key}

    def refund_payment(self, command: StepCommand) -> dict[str, Any]:
        """Refund what the policy allows, or void an authorization nothing was taken from."""
        order = self._order(command)
        gateway = self._gateway()
        refund = Money.from_dict(command.data["refund"])
        capture_key = command.data.get("capture_key")
        authorization_key = command.data.get("authorization_key")
        if order.payment_status is PaymentStatus.AUTHORIZED and authorization_key:
            gateway.void(
                VoidRequest(
                    idempotency_key=command.idempotency_key,
                    order_id=str(order.id),
                    authorization_key=authorization_key,
                )
            )
            return {"voided": authorization_key}
        if refund.is_positive() and capture_key:
            reference = gateway.refund(
                RefundRequest(
                    idempotency_key=command.idempotency_key,
                    order_id=str(order.id),
                    capture_key=capture_key,
                    amount=refund,
                )
            )
            return {"refund": reference, "refunded": refund.to_dict()}
        if refund.is_positive():
            # Paid outside the fulfilment saga: the sagas know no gateway payment to refund.
            return {"skipped": "no gateway payment known to the sagas; refund it by hand"}
        return {}

    # --- shipping and notifications -----------------------------------------------------------

    def create_shipment(self, command: StepCommand) -> dict[str, Any]:
        """Book the shipment with the carrier; the order moves to processing."""
        assert self.shipping is not None  # registered only when configured
        order = self._order(command)
        booking = self.shipping.create_shipment(
            ShipmentRequest(
                idempotency_key=command.idempotency_key,
                order_id=str(order.id),
                customer_id=order.customer_id,
                lines={sku: line.quantity for sku, line in order.lines.items()},
            )
        )
        if order.status is OrderStatus.CONFIRMED:
            self._record(
                command,
                lambda: self.orders.start_fulfilment(
                    StartFulfilment(order_id=order.id), release_hold=True
                ),
                lambda now: now.status is OrderStatus.PROCESSING,
            )
        elif order.status is not OrderStatus.PROCESSING:
            raise IllegalTransitionError("order", order.status.value, "start fulfilment of")
        return {
            "shipment_id": booking.shipment_id,
            "carrier": booking.carrier,
            "tracking_number": booking.tracking_number,
        }

    def notify(self, template: str) -> Handler:
        """A handler that sends the customer the ``template`` message about the order."""

        def send(command: StepCommand) -> dict[str, Any]:
            assert self.notifier is not None  # registered only when configured
            data = {"order_id": command.data["order_id"]}
            shipment = command.results.get("create_shipment")
            if shipment:
                data["tracking_number"] = str(shipment["tracking_number"])
            self.notifier.notify(
                CustomerNotification(
                    idempotency_key=command.idempotency_key,
                    customer_id=command.data["customer_id"],
                    order_id=command.data["order_id"],
                    template=template,
                    data=data,
                )
            )
            return {"sent": template}

        return send


def fulfilment_trigger(orders: Orders) -> SagaTrigger:
    """What begins an order's fulfilment: the order being placed.

    Only an order still pending, with nothing paid, starts one: orders placed before
    the engine first ran and handled by hand since are left alone.
    """

    def starter(placed: Order.Placed) -> SagaStart | None:
        order = orders.aggregate(placed.originator_id)
        if (order.status, order.payment_status) != (OrderStatus.PENDING, PaymentStatus.PENDING):
            return None
        lines = {line["sku"]: int(line["quantity"]) for line in placed.lines}
        totals = [Money.from_dict(line["total"]) for line in placed.lines]
        total = sum_money(totals, placed.currency) + Money.from_dict(placed.shipping)
        return SagaStart(
            definition=ORDER_FULFILMENT.name,
            saga_id=fulfilment_saga_id(placed.originator_id),
            subject=str(placed.originator_id),
            data={
                "order_id": str(placed.originator_id),
                "customer_id": placed.customer_id,
                "amount": total.to_dict(),
                "lines": lines,
            },
            correlation_id=_correlation_of(placed),
        )

    return SagaTrigger(
        event_type=Order.Placed,
        saga_id=lambda placed: fulfilment_saga_id(placed.originator_id),
        start=starter,
        reads=lambda placed: [(orders, placed.originator_id)],
    )


def _correlation_of(placed: Order.Placed) -> str:
    """The correlation of the request that placed the order (or the order's own key)."""
    context = current_context()
    if context is not None and metadata_of(placed):
        return context.correlation_id
    return placed.idempotency_key or str(placed.originator_id)


class CancellationOutcome(StrEnum):
    """What :meth:`OrderSagas.cancel` did."""

    CANCELLED = "cancelled"  # the order was cancelled already
    CANCELLING = "cancelling"  # a saga is cancelling it (or undoing its fulfilment)
    AWAITING_APPROVAL = "awaiting_approval"  # the policy wants an operator to approve


class OrderSagas:
    """Order-level operations that respect the sagas working on an order.

    Hosts that run the saga engine cancel orders here rather than with
    ``Orders.cancel``: a fulfilment under way holds its order.
    """

    def __init__(self, *, sagas: Sagas, orders: Orders) -> None:
        self.sagas = sagas
        self.orders = orders

    def fulfilment(self, order_id: UUID) -> UUID | None:
        """The id of the order's fulfilment saga, if it has one."""
        saga_id = fulfilment_saga_id(order_id)
        return saga_id if self.sagas.find_aggregate(saga_id) is not None else None

    def cancel(self, cmd: CancelOrder) -> CancellationOutcome:
        """Cancel an order, by whichever saga may do it now.

        * fulfilment under way, before its capture: the fulfilment is compensated (the
          authorization voided, the stock released, the order cancelled);
        * fulfilment past its capture: ``OrderLockedError`` until it has ended;
        * no saga yet and nothing paid: the order is cancelled at once;
        * otherwise, per the cancellation policy: a cancellation saga starts (release,
          refund, record, notify), or the request waits for approval
          (:meth:`approve_cancellation`); ``CancellationNotAllowedError`` once shipped.
        """
        order = self.orders.aggregate(cmd.order_id)
        if order.status is OrderStatus.CANCELLED:
            return CancellationOutcome.CANCELLED
        saga = self.sagas.find_aggregate(fulfilment_saga_id(cmd.order_id))
        if saga is not None and saga.status not in (
            SagaStatus.COMPLETED,
            SagaStatus.COMPENSATED,
        ):
            if saga.status is SagaStatus.COMPENSATING:
                return CancellationOutcome.CANCELLING
            pivot_out = saga.outstanding is not None and saga.pivot == saga.cursor
            if saga.pivot_passed or pivot_out:
                raise OrderLockedError(cmd.order_id, saga.id, saga.step)
            self.sagas.compensate(
                CompensateSaga(saga_id=saga.id, by=cmd.requested_by, reason=cmd.reason)
            )
            return CancellationOutcome.CANCELLING
        if self.sagas.find_aggregate(cancellation_saga_id(cmd.order_id)) is not None:
            return CancellationOutcome.CANCELLING
        if (order.status, order.payment_status) == (OrderStatus.PENDING, PaymentStatus.PENDING):
            # Nothing paid and no saga yet: cancelling the order releases its stock, and its
            # fulfilment will not start (it starts only for orders still pending).
            self.orders.cancel(cmd)
            return CancellationOutcome.CANCELLED
        decision = self.orders.cancellation_policy.decide(order)
        if not decision.allowed:
            raise CancellationNotAllowedError("order", order.status.value, "cancel")
        if decision.needs_approval:
            self.orders.cancel(cmd)
            return CancellationOutcome.AWAITING_APPROVAL
        self._start_cancellation(order, cmd.reason, cmd.requested_by, None)
        return CancellationOutcome.CANCELLING

    def approve_cancellation(self, cmd: ApproveCancellation) -> CancellationOutcome:
        """Approve a cancellation that waits for it: its cancellation saga starts."""
        order = self.orders.aggregate(cmd.order_id)
        if order.status is OrderStatus.CANCELLED:
            return CancellationOutcome.CANCELLED
        if order.status is not OrderStatus.CANCELLATION_REQUESTED:
            raise IllegalTransitionError("order", order.status.value, "approve cancellation of")
        reason = order.cancellation_reason or "approved"
        self._start_cancellation(order, reason, cmd.approved_by, cmd.approved_by)
        return CancellationOutcome.CANCELLING

    def _start_cancellation(
        self, order: Order, reason: str, requested_by: str, approved_by: str | None
    ) -> None:
        decision = self.orders.cancellation_policy.decide(order)
        data: dict[str, Any] = {
            "order_id": str(order.id),
            "customer_id": order.customer_id,
            "reason": reason,
            "requested_by": requested_by,
            "approved_by": approved_by,
            "refund": decision.refund.to_dict(),
        }
        fulfilment = self.sagas.find_aggregate(fulfilment_saga_id(order.id))
        if fulfilment is not None:
            authorization = fulfilment.results.get("authorize_payment") or {}
            capture = fulfilment.results.get("capture_payment") or {}
            data["authorization_key"] = authorization.get("authorization_key")
            data["capture_key"] = capture.get("capture_key")
        self.sagas.start(
            StartSaga(
                definition=ORDER_CANCELLATION.name,
                saga_id=cancellation_saga_id(order.id),
                subject=str(order.id),
                data=data,
                correlation_id=None if current_context() else order.idempotency_key,
            )
        )
