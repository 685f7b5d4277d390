"""A bus consumer process for the reliability tests: handles messages until killed.

``python bus_consumer.py REDIS_URL NAME``: consumes topic ``orders`` as group ``billing``
(redelivery after 1 s), recording each message's effect once (``HSETNX``) and counting
every run of the handler, so a test can tell deliveries from effects.
"""

from __future__ import annotations

import sys
import time

import redis

from suuupra_commerce.adapters.redis_messaging import RedisProcessedMessages, RedisStreamBus
from suuupra_commerce.errors import AdapterError
from suuupra_commerce.messaging import DeliveryPolicy, Envelope, IdempotentConsumer


def main(url: str, name: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    policy = DeliveryPolicy(redeliver_after=1.0, max_deliveries=100)
    bus = RedisStreamBus(client, namespace="reliability", policy=policy)
    processed = RedisProcessedMessages(client, namespace="reliability")

    def handle(envelope: Envelope) -> None:
        client.incr("runs")
        client.hsetnx("effects", envelope.id, name)  # the effect, idempotent by message id
        time.sleep(0.002)

    worker = IdempotentConsumer(bus.consumer("orders", "billing", name), handle, processed)
    while True:
        try:
            worker.poll(max_messages=20, wait=0.2)
        except (AdapterError, redis.RedisError):
            time.sleep(0.1)  # the server is away: try again


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
