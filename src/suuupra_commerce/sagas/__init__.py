"""Sagas: durable, event-sourced distributed transactions with retries, timeouts and compensation.

Define a saga as steps (:class:`SagaDefinition`), register the participants that perform
its actions (:class:`Participants`), and let a :class:`SagaEngine` run it; every saga ends
COMPLETED, COMPENSATED or STUCK, whatever fails and whenever the process dies. The order
fulfilment and cancellation sagas are in :mod:`suuupra_commerce.sagas.orders`.
"""

from suuupra_commerce.sagas.commands import (
    CompensateSaga,
    ResolveSaga,
    RetrySagaStep,
    SkipSagaStep,
    StartSaga,
)
from suuupra_commerce.sagas.definition import SagaDefinition, SagaRegistry, Step, StepRetry
from suuupra_commerce.sagas.domain import Phase, Reply, Saga, SagaStatus, StepCommand, StepKey
from suuupra_commerce.sagas.orders import (
    ORDER_CANCELLATION,
    ORDER_FULFILMENT,
    CancellationOutcome,
    OrderParticipants,
    OrderSagas,
)
from suuupra_commerce.sagas.service import (
    Handler,
    Participants,
    SagaDispatcher,
    SagaEngine,
    Sagas,
    SagaStart,
)
from suuupra_commerce.sagas.views import SagaStatistics, SagaSummary, SagaView, TimelineEntry

__all__ = [
    "ORDER_CANCELLATION",
    "ORDER_FULFILMENT",
    "CancellationOutcome",
    "CompensateSaga",
    "Handler",
    "OrderParticipants",
    "OrderSagas",
    "Participants",
    "Phase",
    "Reply",
    "ResolveSaga",
    "RetrySagaStep",
    "Saga",
    "SagaDefinition",
    "SagaDispatcher",
    "SagaEngine",
    "SagaRegistry",
    "SagaStart",
    "SagaStatistics",
    "SagaStatus",
    "SagaSummary",
    "SagaView",
    "Sagas",
    "SkipSagaStep",
    "StartSaga",
    "Step",
    "StepCommand",
    "StepKey",
    "StepRetry",
    "TimelineEntry",
]
