"""Commands of the saga service: starting a saga, and what an operator may do to one."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from suuupra_commerce.commands import Command
from suuupra_commerce.values import Identifier

__all__ = [
    "CompensateSaga",
    "ResolveSaga",
    "RetrySagaStep",
    "SagaCommand",
    "SkipSagaStep",
    "StartSaga",
]

SagaName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class StartSaga(Command):
    """Start the newest version of a saga definition; idempotent by ``saga_id``.

    ``subject`` names what the saga works on (an order id, say) and ``data`` is its
    JSON-plain input (amounts as strings).

    >>> StartSaga(definition="order_fulfilment", saga_id=UUID(int=7), subject="order-1",
    ...           data={"order_id": "order-1"}).definition
    'order_fulfilment'
    """

    definition: SagaName
    saga_id: UUID
    subject: Identifier
    data: Annotated[dict[str, Any], Field(max_length=100)]
    correlation_id: Identifier | None = None


class SagaCommand(Command):
    """An operator's action on one saga, with who asked and why (both recorded)."""

    saga_id: UUID
    by: Identifier
    reason: Identifier


class RetrySagaStep(SagaCommand):
    """Send the step a stuck saga is at again, as a new attempt with a fresh retry budget."""


class SkipSagaStep(SagaCommand):
    """Count the step a stuck saga is at as done by hand, and go on."""


class CompensateSaga(SagaCommand):
    """Undo what the saga has done so far (refused once its pivot may have taken effect)."""


class ResolveSaga(SagaCommand):
    """Mark a stuck saga as ended by hand: ``completed`` or ``compensated``."""

    outcome: Literal["completed", "compensated"]
