"""A host for saga worker processes in tests: participants whose effects live in Redis.

Every worker process loads this module (``--host worker_host:ports``) and so shares one
payment gateway, carrier and notifier: their effects are counted in Redis, per order,
under the namespace ``TEST_WORKER_NAMESPACE``, so a test can prove each happened once.
"""

from __future__ import annotations

import os
from typing import Any

import redis

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.errors import PaymentDeclinedError
from suuupra_commerce.ports import (
    AuthorizationRequest,
    CaptureRequest,
    CustomerNotification,
    RefundRequest,
    ShipmentBooking,
    ShipmentRequest,
    VoidRequest,
)

# Each effect and its count change together, in one script: a worker killed between the
# two would otherwise leave an effect done and uncounted.

# Do something once per key: mark the key, count the effect.
_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('INCR', KEYS[2])
  return 1
end
return 0
"""

# Open an authorization once per key, with its order, and count it.
_AUTHORIZE = """
if redis.call('HSETNX', KEYS[1], 'status', 'authorized') == 1 then
  redis.call('HSET', KEYS[1], 'order', ARGV[1])
  redis.call('INCR', KEYS[2])
  return 1
end
return 0
"""

# Move an authorization from one status to another; count the move.
_MOVE = """
if redis.call('HGET', KEYS[1], 'status') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'status', ARGV[2])
  redis.call('INCR', KEYS[2])
  return 1
end
return 0
"""


class RedisPayments:
    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.r = client
        self.ns = namespace
        self.move = client.register_script(_MOVE)
        self.open = client.register_script(_AUTHORIZE)
        self.once = client.register_script(_ONCE)

    def _auth(self, key: str) -> str:
        return f"{self.ns}:auth:{key}"

    def authorize(self, request: AuthorizationRequest) -> str:
        self.open(
            keys=[
                self._auth(request.idempotency_key),
                f"{self.ns}:authorizations:{request.order_id}",
            ],
            args=[request.order_id],
        )
        return f"auth-{request.idempotency_key.rsplit('/', 2)[0][-12:]}"

    def capture(self, request: CaptureRequest) -> str:
        key = self._auth(request.authorization_key)
        status = self.r.hget(key, "status")
        if status not in (b"authorized", b"captured"):
            raise PaymentDeclinedError(f"authorization is {status!r}")
        self.move(
            keys=[key, f"{self.ns}:captures:{request.order_id}"], args=["authorized", "captured"]
        )
        return f"cap-{request.order_id[-12:]}"

    def void(self, request: VoidRequest) -> None:
        key = self._auth(request.authorization_key)
        self.move(keys=[key, f"{self.ns}:voids:{request.order_id}"], args=["authorized", "voided"])

    def refund(self, request: RefundRequest) -> str:
        self.once(
            keys=[
                f"{self.ns}:refund:{request.idempotency_key}",
                f"{self.ns}:refunds:{request.order_id}",
            ],
            args=["1"],
        )
        return f"ref-{request.order_id[-12:]}"


class RedisShipping:
    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.ns = namespace
        self.once = client.register_script(_ONCE)

    def create_shipment(self, request: ShipmentRequest) -> ShipmentBooking:
        self.once(
            keys=[
                f"{self.ns}:booking:{request.idempotency_key}",
                f"{self.ns}:shipments:{request.order_id}",
            ],
            args=["1"],
        )
        return ShipmentBooking(f"shp-{request.order_id[-12:]}", "redis-carrier", "TRK1")


class RedisNotifier:
    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.ns = namespace
        self.once = client.register_script(_ONCE)

    def notify(self, notification: CustomerNotification) -> None:
        sent = f"{self.ns}:sent:{notification.idempotency_key}"
        self.once(keys=[sent, f"{self.ns}:notified:{notification.order_id}"], args=["1"])


def ports() -> dict[str, Any]:
    """``Commerce`` keyword arguments for a worker process of the test."""
    client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
    namespace = os.environ["TEST_WORKER_NAMESPACE"]
    return {
        "price_book": InMemoryPriceBook(),
        "payments": RedisPayments(client, namespace),
        "shipping_provider": RedisShipping(client, namespace),
        "notifier": RedisNotifier(client, namespace),
    }
