"""Messaging: the bus port, integration events, the outbox relay and the idempotent consumer.

Nothing here talks to a broker; the adapters in :mod:`suuupra_commerce.adapters` do
(``memory_messaging``, ``redis_messaging``, ``postgres_messaging``).
"""

from suuupra_commerce.messaging.consumer import IdempotentConsumer, PollResult
from suuupra_commerce.messaging.envelope import DeadLetter, Delivery, Envelope
from suuupra_commerce.messaging.events import (
    INTEGRATION_EVENTS,
    IntegrationEvent,
    MoneyAmount,
    decode,
    envelope_for,
)
from suuupra_commerce.messaging.mapping import DEFAULT_MAPPING, EventMapping, MappingContext
from suuupra_commerce.messaging.ports import (
    Consumer,
    DeliveryPolicy,
    LogWaiter,
    MessageBus,
    ProcessedMessages,
    RelayPositions,
)
from suuupra_commerce.messaging.positions import EventStoreRelayPositions
from suuupra_commerce.messaging.relay import OutboxRelay, PollingWaiter, message_id_for

__all__ = [
    "DEFAULT_MAPPING",
    "INTEGRATION_EVENTS",
    "Consumer",
    "DeadLetter",
    "Delivery",
    "DeliveryPolicy",
    "Envelope",
    "EventMapping",
    "EventStoreRelayPositions",
    "IdempotentConsumer",
    "IntegrationEvent",
    "LogWaiter",
    "MappingContext",
    "MessageBus",
    "MoneyAmount",
    "OutboxRelay",
    "PollResult",
    "PollingWaiter",
    "ProcessedMessages",
    "RelayPositions",
    "decode",
    "envelope_for",
    "message_id_for",
]
