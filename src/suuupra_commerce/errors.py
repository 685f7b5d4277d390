"""The library's exceptions: one tree, rooted at :class:`CommerceError`.

Every error the library raises on purpose descends from ``CommerceError``; errors
of the underlying ``eventsourcing`` and ``pydantic`` packages are translated into
this tree once, at the application boundary, so a host needs to catch only these::

    CommerceError
    ├── InvalidInputError (also a ValueError)      bad input; nothing was written
    │   ├── InvalidCommandError                    a command failed validation (.errors)
    │   ├── InvalidMessageError                    a message is malformed, or of an unknown type
    │   ├── InvalidIdentifierError                 empty, oversized, NUL or malformed id
    │   ├── InvalidQuantityError                   zero, negative or over-limit quantity
    │   └── MoneyError
    │       ├── InvalidAmountError                 NaN, Infinity, float, not a number
    │       ├── AmountOutOfRangeError              absurd magnitude
    │       ├── PrecisionError                     more decimals than the currency has
    │       ├── UnknownCurrencyError               not an ISO 4217 code
    │       └── CurrencyMismatchError              USD + EUR, or a line in another currency
    ├── BusinessRuleError                          valid input refused by a rule
    │   ├── InsufficientStockError                 would oversell (.sku, .requested, .available)
    │   ├── IllegalTransitionError                 not allowed from the current state
    │   │   └── CancellationNotAllowedError        the cancellation policy refuses
    │   ├── PriceChangedError                      cart prices moved since they were quoted
    │   ├── CartClosedError                        checked out, merged, expired or deleted
    │   ├── EmptyCartError                         checkout of a cart with no lines
    │   ├── RefundExceedsPaymentError              refunding more than was captured
    │   └── PaymentDeclinedError                   the payment gateway refused (.reason)
    ├── NotFoundError                              (.kind, .id)
    │   ├── UnknownSkuError
    │   ├── InventoryItemNotFoundError
    │   ├── ReservationNotFoundError
    │   ├── OrderNotFoundError
    │   ├── CartNotFoundError
    │   ├── CartLineNotFoundError                  the cart holds no line for this SKU
    │   ├── UnknownDiscountCodeError
    │   ├── SagaNotFoundError
    │   └── UnknownSagaDefinitionError             no definition of this name and version
    ├── ConflictError
    │   ├── ConcurrencyConflictError               lost every optimistic-concurrency retry
    │   ├── AlreadyExistsError                     creating what exists (a registered SKU)
    │   ├── IdempotencyKeyReusedError              same key, different payload
    │   └── OrderLockedError                       a saga holds the order (.saga_id, .step)
    ├── SagaError                                  about sagas, their participants and set-up
    │   ├── SagaConfigurationError                 a definition or the participants are unsound
    │   └── ReplyPendingError                      a participant took a command, answers later
    └── AdapterError                               infrastructure failed; may be retried
        └── StoreUnavailableError                  a database or broker cannot be reached
            └── MessagingUnavailableError          the message bus (Redis, PostgreSQL) is down

A command that raises any of these has written nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "AdapterError",
    "AlreadyExistsError",
    "AmountOutOfRangeError",
    "BusinessRuleError",
    "CancellationNotAllowedError",
    "CartClosedError",
    "CartLineNotFoundError",
    "CartNotFoundError",
    "CommerceError",
    "ConcurrencyConflictError",
    "ConflictError",
    "CurrencyMismatchError",
    "EmptyCartError",
    "IdempotencyKeyReusedError",
    "IllegalTransitionError",
    "InsufficientStockError",
    "InvalidAmountError",
    "InvalidCommandError",
    "InvalidIdentifierError",
    "InvalidInputError",
    "InvalidMessageError",
    "InvalidQuantityError",
    "InventoryItemNotFoundError",
    "MessagingUnavailableError",
    "MoneyError",
    "NotFoundError",
    "OrderLockedError",
    "OrderNotFoundError",
    "PaymentDeclinedError",
    "PrecisionError",
    "PriceChangedError",
    "RefundExceedsPaymentError",
    "ReplyPendingError",
    "ReservationNotFoundError",
    "SagaConfigurationError",
    "SagaError",
    "SagaNotFoundError",
    "StoreUnavailableError",
    "UnknownCurrencyError",
    "UnknownDiscountCodeError",
    "UnknownSagaDefinitionError",
    "UnknownSkuError",
]


class CommerceError(Exception):
    """Base of every error this library raises on purpose."""


# --- bad input -------------------------------------------------------------------------------


class InvalidInputError(CommerceError, ValueError):
    """The input is malformed or out of range; nothing was written."""


class InvalidCommandError(InvalidInputError):
    """A command model failed validation.

    ``errors`` holds one mapping per problem, with ``loc`` (where), ``msg`` (what)
    and ``type`` (a stable machine-readable code), as pydantic reports them.
    """

    def __init__(self, command: str, errors: Sequence[Mapping[str, Any]]) -> None:
        self.command = command
        self.errors: tuple[Mapping[str, Any], ...] = tuple(errors)
        details = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or '(root)'}: {e.get('msg', '')}"
            for e in self.errors[:5]
        )
        more = f" (+{len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"invalid {command}: {details}{more}")


class InvalidMessageError(InvalidInputError):
    """A message cannot be read: not a valid envelope, or of a type or version nobody knows.

    A consumer never sees one: the bus moves such a message to its dead letters.
    """


class InvalidIdentifierError(InvalidInputError):
    """An identifier is empty, longer than allowed, or holds forbidden characters."""


class InvalidQuantityError(InvalidInputError):
    """A quantity is zero, negative, or over the limit for the operation."""


class MoneyError(InvalidInputError):
    """Base of the errors about amounts and currencies."""


class InvalidAmountError(MoneyError):
    """Not a finite decimal number (NaN, Infinity, a float, or not a number at all)."""


class AmountOutOfRangeError(MoneyError):
    """The amount's magnitude is beyond what the library accepts."""


class PrecisionError(MoneyError):
    """The amount has more decimal places than its currency's minor unit allows."""


class UnknownCurrencyError(MoneyError):
    """The currency code is not a known ISO 4217 code."""


class CurrencyMismatchError(MoneyError):
    """Two amounts in different currencies were combined or compared."""


# --- refused by a rule -----------------------------------------------------------------------


class BusinessRuleError(CommerceError):
    """The input is well formed but a business rule refuses it; nothing was written."""


class InsufficientStockError(BusinessRuleError):
    """Reserving or removing this many units would take a SKU below what it may go to."""

    def __init__(self, sku: str, requested: int, available: int) -> None:
        self.sku = sku
        self.requested = requested
        self.available = available
        super().__init__(
            f"insufficient stock for {sku}: requested {requested}, available {available}"
        )


class IllegalTransitionError(BusinessRuleError):
    """The requested change is not allowed from the current state."""

    def __init__(self, entity: str, state: str, trigger: str) -> None:
        self.entity = entity
        self.state = state
        self.trigger = trigger
        super().__init__(f"cannot {trigger} {entity} in state {state!r}")


class CancellationNotAllowedError(IllegalTransitionError):
    """The cancellation policy refuses to cancel the order in its current state."""


class PriceChangedError(BusinessRuleError):
    """Prices changed since the cart quoted them; ``changes`` maps SKU to (old, new)."""

    def __init__(self, changes: Mapping[str, tuple[Any, Any]]) -> None:
        self.changes = dict(changes)
        listed = ", ".join(f"{sku}: {old} -> {new}" for sku, (old, new) in self.changes.items())
        super().__init__(f"prices changed since they were quoted: {listed}")


class CartClosedError(BusinessRuleError):
    """The cart was checked out, merged, expired or deleted and takes no more changes."""


class EmptyCartError(BusinessRuleError):
    """A cart with no lines cannot be checked out."""


class RefundExceedsPaymentError(BusinessRuleError):
    """A refund would return more than was captured and not yet refunded."""


class PaymentDeclinedError(BusinessRuleError):
    """The payment gateway refused the payment (card declined, insufficient funds ...).

    Gateways raise it from :class:`~suuupra_commerce.ports.PaymentGateway` methods; a
    saga treats it as final (no retry) and compensates.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"payment declined: {reason}")


# --- not found -------------------------------------------------------------------------------


class NotFoundError(CommerceError):
    """The thing asked for does not exist."""

    kind = "object"

    def __init__(self, id: object) -> None:
        self.id = id
        super().__init__(f"{self.kind} not found: {id}")


class UnknownSkuError(NotFoundError):
    """No inventory item, or no price, is registered for this SKU."""

    kind = "SKU"


class InventoryItemNotFoundError(NotFoundError):
    """No inventory item has this id."""

    kind = "inventory item"


class ReservationNotFoundError(NotFoundError):
    """The inventory item holds no reservation with this id."""

    kind = "reservation"


class OrderNotFoundError(NotFoundError):
    """No order has this id."""

    kind = "order"


class CartNotFoundError(NotFoundError):
    """No cart has this id."""

    kind = "cart"


class UnknownDiscountCodeError(NotFoundError):
    """The discount policy does not know this code (or it does not apply)."""

    kind = "discount code"


# --- conflicts -------------------------------------------------------------------------------


class ConflictError(CommerceError):
    """The command conflicts with the current state of the store."""


class ConcurrencyConflictError(ConflictError):
    """Concurrent writers kept winning the race for this aggregate; retries were spent."""


class AlreadyExistsError(ConflictError):
    """Something with this identity exists already."""


class IdempotencyKeyReusedError(ConflictError):
    """An idempotency key was used before with a different payload."""


class CartLineNotFoundError(NotFoundError):
    """The cart holds no line for this SKU (``.id`` is the SKU)."""

    kind = "cart line"


class SagaNotFoundError(NotFoundError):
    """No saga has this id."""

    kind = "saga"


class UnknownSagaDefinitionError(NotFoundError):
    """No saga definition is registered under this name and version (``.id``)."""

    kind = "saga definition"


class OrderLockedError(ConflictError):
    """A saga is working on the order and holds it until it ends (a semantic lock).

    ``saga_id`` is the saga holding it and ``step`` the step it is at; try again once
    that saga has ended.
    """

    def __init__(self, order_id: object, saga_id: object, step: str = "") -> None:
        self.order_id = order_id
        self.saga_id = saga_id
        self.step = step
        where = f" (at step {step})" if step else ""
        super().__init__(
            f"order {order_id} is held by saga {saga_id}{where}; try again when that saga has ended"
        )


# --- sagas -----------------------------------------------------------------------------------


class SagaError(CommerceError):
    """Base of the errors about sagas, their definitions and their participants."""


class SagaConfigurationError(SagaError):
    """A saga definition is unsound, or a participant it needs is not configured."""


class ReplyPendingError(SagaError):
    """A participant accepted a command and will answer later.

    A participant raises it (instead of returning) when its answer comes
    asynchronously, through a webhook for example; the host then hands the answer
    to :meth:`suuupra_commerce.sagas.Sagas.deliver_reply`. Until it arrives the
    step's timeout runs.
    """


# --- infrastructure --------------------------------------------------------------------------


class AdapterError(CommerceError):
    """An adapter (a database, a broker) failed; what was asked may be retried."""


class StoreUnavailableError(AdapterError):
    """A database or broker cannot be reached, or dropped the connection."""


class MessagingUnavailableError(StoreUnavailableError):
    """The message bus cannot be reached, even after the retries that were safe to make.

    Publishing again is safe (consumers drop duplicates by message id); so is receiving
    again (what was handed out and not acknowledged comes back after the idle time).
    """
