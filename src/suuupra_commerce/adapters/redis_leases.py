"""Saga partition leases as Redis keys with an expiry, for workers whose shared server is Redis.

Keys, all in one hash slot (``{namespace}``), so each script touches one node::

    {namespace}:lease:{partition}   the holder's token, expiring after ``ttl`` seconds
    {namespace}:members             sorted set: each worker's token, scored by when it expires

A worker draws a random token when built. It claims a partition with ``SET NX PX`` (only
if nobody holds it), and keeps its claims by renewing them well within ``ttl``; renewal and
release compare the key's value with the token before touching it (Lua scripts, atomic on
the server), so a worker never extends or deletes a lease that lapsed and went to another
worker. A lease found lapsed or taken at renewal is given up. A worker that dies (even by
SIGKILL) stops renewing: its partitions are free ``ttl`` seconds later, and it stops
counting as a member then too. Expiry times come from the server's clock, never a worker's.

Unlike PostgreSQL's advisory locks, a lease outlives a frozen holder by up to ``ttl``: a
worker paused longer than that (a stop-the-world pause, a suspended VM) may resume a pass on
a partition another worker has taken. Each saga step is still applied once (the engine
records its position and its effects in one transaction, and the version check refuses the
second writer), but keep ``ttl`` several times the balance interval.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis

from suuupra_commerce.adapters.redis_messaging import redis_client
from suuupra_commerce.errors import InvalidInputError, StoreUnavailableError
from suuupra_commerce.messaging.envelope import check_name

__all__ = ["RedisPartitionLeases"]

log = logging.getLogger("suuupra_commerce.adapters.redis_leases")

_NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "

#: KEYS[1] members; ARGV token, ttl ms. Announces (or re-announces) the worker.
_JOIN = _NOW_MS + "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) return 1"

#: KEYS[1] members. Drops the workers whose announcement lapsed; counts the rest.
_MEMBERS = _NOW_MS + (
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) return redis.call('ZCARD', KEYS[1])"
)

#: KEYS[1] members, KEYS[2..] leases; ARGV token, ttl ms. Extends what is still the token's.
_RENEW = _NOW_MS + (
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) "
    "local kept = {} "
    "for i = 2, #KEYS do "
    "  if redis.call('GET', KEYS[i]) == ARGV[1] then "
    "    redis.call('PEXPIRE', KEYS[i], ARGV[2]) kept[#kept + 1] = i - 1 "
    "  end "
    "end "
    "return kept"
)

#: KEYS leases; ARGV token. Deletes those that are still the token's.
_RELEASE = (
    "local n = 0 "
    "for i = 1, #KEYS do "
    "  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) n = n + 1 end "
    "end "
    "return n"
)


class RedisPartitionLeases:
    """:class:`~suuupra_commerce.sagas.workers.PartitionLeases` on Redis keys with a TTL.

    ``namespace`` keeps deployments apart (``a-z 0-9 . _ -``); ``ttl`` is how long a claim
    or an announcement lasts without renewal (the worker renews at each balance).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str,
        ttl: float = 10.0,
        owns_client: bool = False,
    ) -> None:
        if not 0.05 <= ttl <= 3600:
            raise InvalidInputError("ttl must be between 0.05 and 3600 seconds")
        self.client = client
        self.namespace = check_name(namespace, "namespace")
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self._ttl_ms = round(ttl * 1000)
        self._base = f"{{{self.namespace}}}"
        self._members_key = f"{self._base}:members"
        self._owns_client = owns_client
        self._held: set[int] = set()
        self._join = client.register_script(_JOIN)
        self._members = client.register_script(_MEMBERS)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(
        cls, url: str, *, namespace: str, ttl: float = 10.0, retries: int = 3
    ) -> RedisPartitionLeases:
        """Leases with a client of their own (closed with them); see ``redis_client``."""
        return cls(
            redis_client(url, retries=retries), namespace=namespace, ttl=ttl, owns_client=True
        )

    def lease_key(self, partition: int) -> str:
        """The key holding ``partition``'s lease."""
        return f"{self._base}:lease:{partition}"

    def _call(self, what: str, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise StoreUnavailableError(f"Redis unreachable for leases ({what}): {error}") from None

    def join(self) -> None:
        self._call("join", self._join, [self._members_key], [self.token, self._ttl_ms])

    def members(self) -> int:
        return int(self._call("members", self._members, [self._members_key], []))

    def try_acquire(self, partition: int) -> bool:
        if partition in self._held:
            return True
        try:
            taken = self.client.set(self.lease_key(partition), self.token, nx=True, px=self._ttl_ms)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise StoreUnavailableError(
                f"Redis unreachable for leases (acquire): {error}"
            ) from None
        if taken:
            self._held.add(partition)
            return True
        return False

    def release(self, partition: int) -> None:
        if partition in self._held:
            self._call("release", self._release, [self.lease_key(partition)], [self.token])
            self._held.discard(partition)

    def renew(self) -> frozenset[int]:
        held = sorted(self._held)
        try:
            kept = self._call(
                "renew",
                self._renew,
                [self._members_key, *(self.lease_key(p) for p in held)],
                [self.token, self._ttl_ms],
            )
        except StoreUnavailableError as error:
            # Unable to renew, the leases may lapse any moment: give everything up now.
            log.warning("%s: every partition is given up", error)
            self._held.clear()
            return frozenset()
        still = {held[int(i) - 1] for i in kept}
        lost = self._held - still
        if lost:
            log.warning("leases lapsed or taken over, given up: partitions %s", sorted(lost))
        self._held = still
        return frozenset(still)

    def held(self) -> frozenset[int]:
        """The partitions this worker holds, as far as it knows."""
        return frozenset(self._held)

    def close(self) -> None:
        held = [self.lease_key(p) for p in sorted(self._held)]
        self._held.clear()
        try:
            if held:
                self._release(keys=held, args=[self.token])
            self.client.zrem(self._members_key, self.token)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            log.warning("could not give the leases up (they lapse by themselves): %s", error)
        finally:
            if self._owns_client:
                self.client.close()
