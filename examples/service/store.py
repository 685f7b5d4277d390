"""The host's own records: its product catalogue and its idempotency keys, event-sourced.

The library owns stock, carts, orders and sagas; a host still owns what the library does
not model. Here that is two things, kept in one small eventsourcing application of the
host's own (``HostRecords``), on the same backend as the library's stores (a ``hostrecords.sqlite``
file beside theirs, or a ``hostrecords_events`` table in the same PostgreSQL schema):

* :class:`CatalogueEntry`, one per SKU: the product and variant the SKU stands for, its
  display name and its selling price. It is the library's price book
  (:class:`~suuupra_commerce.ports.PriceBook`): carts and orders are priced from it,
  never from what a client sends.
* :class:`IdempotencyRecord`, one per ``Idempotency-Key``: the fingerprint of the first
  request that used the key and, once it succeeded, the response to replay.

Both are created with a deterministic id (``uuid5``), so two requests racing to create
the same one meet at the event store's version check: one wins, the other reloads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import RecordConflictError

from suuupra_commerce import AlreadyExistsError, ConcurrencyConflictError, Money, PriceQuote

__all__ = ["CatalogueEntry", "Claim", "IdempotencyRecord", "ServiceRecords"]

NAMESPACE = UUID("0b6f1d2e-6a53-5d8e-9f43-2c1a8e7b5d10")
T = TypeVar("T")


class CatalogueEntry(Aggregate):
    """A SKU as the host sells it: product, variant, name, price (and cost, for reports)."""

    class Listed(Aggregate.Created):
        sku: str
        product_id: str
        variant_id: str | None
        name: str
        unit_price: dict[str, str]
        cost_price: dict[str, str] | None
        metadata: dict[str, str]

    @staticmethod
    def id_for(sku: str) -> UUID:
        """The id of the entry of ``sku``."""
        return uuid5(NAMESPACE, f"catalogue/{sku}")

    @event(Listed)
    def __init__(
        self,
        id: UUID,
        sku: str,
        product_id: str,
        variant_id: str | None,
        name: str,
        unit_price: dict[str, str],
        cost_price: dict[str, str] | None,
        metadata: dict[str, str],
    ) -> None:
        self.sku = sku
        self.product_id = product_id
        self.variant_id = variant_id
        self.name = name
        self.unit_price = Money.from_dict(unit_price)
        self.cost_price = None if cost_price is None else Money.from_dict(cost_price)
        self.metadata = dict(metadata)

    class Repriced(Aggregate.Event):
        unit_price: dict[str, str]
        cost_price: dict[str, str] | None

    @event(Repriced)
    def reprice(self, unit_price: dict[str, str], cost_price: dict[str, str] | None) -> None:
        self.unit_price = Money.from_dict(unit_price)
        self.cost_price = None if cost_price is None else Money.from_dict(cost_price)

    def same_listing(self, other: CatalogueEntry) -> bool:
        """Whether ``other`` lists the same SKU the same way (a repeated creation)."""
        return (
            self.sku,
            self.product_id,
            self.variant_id,
            self.name,
            self.unit_price,
            self.cost_price,
            self.metadata,
        ) == (
            other.sku,
            other.product_id,
            other.variant_id,
            other.name,
            other.unit_price,
            other.cost_price,
            other.metadata,
        )


class VariantIndex(Aggregate):
    """Which SKU a (product id, variant id) pair names: unique, like a database index."""

    class Indexed(Aggregate.Created):
        sku: str

    @staticmethod
    def id_for(product_id: str, variant_id: str) -> UUID:
        """The id of the index entry of one variant of a product."""
        return uuid5(NAMESPACE, f"variant/{product_id}\x1f{variant_id}")

    @event(Indexed)
    def __init__(self, id: UUID, sku: str) -> None:
        self.sku = sku


class IdempotencyRecord(Aggregate):
    """What became of the requests sent with one ``Idempotency-Key``."""

    class Claimed(Aggregate.Created):
        fingerprint: str
        at: datetime

    @staticmethod
    def id_for(key: str) -> UUID:
        """The id of the record of ``key``."""
        return uuid5(NAMESPACE, f"idempotency/{key}")

    @event(Claimed)
    def __init__(self, id: UUID, fingerprint: str, at: datetime) -> None:
        self.fingerprint = fingerprint
        self.claimed_at = at
        self.state: Literal["in_progress", "completed", "released"] = "in_progress"
        self.status_code = 0
        self.body = ""

    class Reclaimed(Aggregate.Event):
        fingerprint: str
        at: datetime

    @event(Reclaimed)
    def reclaim(self, fingerprint: str, at: datetime) -> None:
        self.fingerprint = fingerprint
        self.claimed_at = at
        self.state = "in_progress"

    class Completed(Aggregate.Event):
        status_code: int
        body: str

    @event(Completed)
    def complete(self, status_code: int, body: str) -> None:
        self.state = "completed"
        self.status_code = status_code
        self.body = body

    class Released(Aggregate.Event):
        status_code: int

    @event(Released)
    def release(self, status_code: int) -> None:
        self.state = "released"


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to "may this request run under this key?".

    ``outcome`` is ``run`` (go ahead; the key is held for this request), ``replay`` (it ran
    before: send ``status_code`` and ``body`` again), ``mismatch`` (the key was used for
    another request) or ``in_progress`` (a request with this key is running now).
    """

    outcome: Literal["run", "replay", "mismatch", "in_progress"]
    status_code: int = 0
    body: str = ""


class ServiceRecords(Application[UUID]):
    """The host's catalogue (its price book) and idempotency keys.

    >>> records = ServiceRecords({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    >>> records.list_sku("MUG-1", "mug", None, "Mug", Money("9.50", "USD"), None, {})
    >>> records.quote("MUG-1", "USD")
    PriceQuote(sku='MUG-1', name='Mug', unit_price=Money('9.50', 'USD'))
    """

    name = "HostRecords"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        claim_lease: timedelta = timedelta(seconds=60),
        now: Callable[[], datetime] | None = None,
        max_attempts: int = 20,
    ) -> None:
        super().__init__(env=dict(env) if env is not None else None)
        self.claim_lease = claim_lease
        self._now = now or (lambda: datetime.now(UTC))
        self._max_attempts = max_attempts

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` (load, decide, save) again from scratch when a race is lost."""
        for n in range(1, self._max_attempts + 1):
            try:
                return attempt()
            except RecordConflictError:
                time.sleep(min(0.001 * 2**n, 0.05))
        msg = f"gave up after {self._max_attempts} attempts lost to concurrent writers"
        raise ConcurrencyConflictError(msg)

    def _get(self, aggregate_id: UUID) -> Any | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    # --- catalogue ----------------------------------------------------------------------------

    def entry(self, sku: str) -> CatalogueEntry | None:
        """The catalogue entry of ``sku``, if it is listed."""
        found = self._get(CatalogueEntry.id_for(sku))
        return found if isinstance(found, CatalogueEntry) else None

    def list_sku(
        self,
        sku: str,
        product_id: str,
        variant_id: str | None,
        name: str,
        unit_price: Money,
        cost_price: Money | None,
        metadata: Mapping[str, str],
        *,
        replace: bool = False,
    ) -> None:
        """List a SKU; a repeat of the same listing is a no-op.

        Another listing of a listed SKU, or a variant another SKU holds, raises
        ``AlreadyExistsError`` -- unless ``replace``, for a SKU whose stock was never
        registered (the listing of a creation that failed half-way).
        """
        new = CatalogueEntry(
            id=CatalogueEntry.id_for(sku),
            sku=sku,
            product_id=product_id,
            variant_id=variant_id,
            name=name,
            unit_price=unit_price.to_dict(),
            cost_price=None if cost_price is None else cost_price.to_dict(),
            metadata=dict(metadata),
        )

        def attempt() -> None:
            index: VariantIndex | None = None
            if variant_id is not None:
                found = self._get(VariantIndex.id_for(product_id, variant_id))
                if isinstance(found, VariantIndex) and found.sku != sku:
                    msg = f"variant {variant_id} of product {product_id} is SKU {found.sku}"
                    raise AlreadyExistsError(msg)
                if found is None:
                    index = VariantIndex(id=VariantIndex.id_for(product_id, variant_id), sku=sku)
            old = self.entry(sku)
            if old is None:
                self.save(new, *([index] if index else []))
                return
            if old.same_listing(new):
                if index is not None:
                    self.save(index)
                return
            if not replace:
                raise AlreadyExistsError(f"SKU {sku} is listed already")
            # An orphan listing keeps its id: only its prices may change.
            if (old.product_id, old.variant_id, old.name) != (product_id, variant_id, name):
                raise AlreadyExistsError(f"SKU {sku} is listed already as another product")
            old.reprice(unit_price.to_dict(), None if cost_price is None else cost_price.to_dict())
            self.save(old, *([index] if index else []))

        self._retrying(attempt)

    def reprice(self, sku: str, unit_price: Money | None, cost_price: Money | None) -> None:
        """Change a listed SKU's selling price and/or cost (``None`` keeps it)."""

        def attempt() -> None:
            entry = self.entry(sku)
            if entry is None:
                return
            price = entry.unit_price if unit_price is None else unit_price
            cost = entry.cost_price if cost_price is None else cost_price
            if (price, cost) == (entry.unit_price, entry.cost_price):
                return
            entry.reprice(price.to_dict(), None if cost is None else cost.to_dict())
            self.save(entry)

        self._retrying(attempt)

    def sku_of_variant(self, product_id: str, variant_id: str) -> str | None:
        """The SKU listed for one variant of a product, if any."""
        found = self._get(VariantIndex.id_for(product_id, variant_id))
        return found.sku if isinstance(found, VariantIndex) else None

    def quote(self, sku: str, currency: str) -> PriceQuote | None:
        """The library's price book: the listed price of ``sku`` in ``currency``, or ``None``."""
        entry = self.entry(sku)
        if entry is None or entry.unit_price.currency != currency:
            return None
        return PriceQuote(sku=sku, name=entry.name, unit_price=entry.unit_price)

    # --- idempotency keys ---------------------------------------------------------------------

    def claim(self, key: str, fingerprint: str) -> Claim:
        """Hold ``key`` for a request with this fingerprint, or say why not (see :class:`Claim`).

        A key held longer than ``claim_lease`` by a request that never finished (its
        process died) may be claimed again by a request with the same fingerprint.
        """

        def attempt() -> Claim:
            now = self._now()
            record = self._get(IdempotencyRecord.id_for(key))
            if not isinstance(record, IdempotencyRecord):
                self.save(
                    IdempotencyRecord(
                        id=IdempotencyRecord.id_for(key), fingerprint=fingerprint, at=now
                    )
                )
                return Claim("run")
            if record.state == "completed":
                if record.fingerprint != fingerprint:
                    return Claim("mismatch")
                return Claim("replay", record.status_code, record.body)
            if record.state == "in_progress":
                if record.fingerprint != fingerprint:
                    return Claim("mismatch")
                if now - record.claimed_at < self.claim_lease:
                    return Claim("in_progress")
            record.reclaim(fingerprint, now)
            self.save(record)
            return Claim("run")

        return self._retrying(attempt)

    def finish(self, key: str, fingerprint: str, status_code: int, body: str) -> None:
        """Record the response of a successful request, to replay it for the same key."""
        self._settle(key, fingerprint, lambda r: r.complete(status_code, body))

    def abandon(self, key: str, fingerprint: str, status_code: int) -> None:
        """Free the key after a refused request, so that the client may try it again."""
        self._settle(key, fingerprint, lambda r: r.release(status_code))

    def _settle(
        self, key: str, fingerprint: str, change: Callable[[IdempotencyRecord], None]
    ) -> None:
        def attempt() -> None:
            record = self._get(IdempotencyRecord.id_for(key))
            if not isinstance(record, IdempotencyRecord):
                return
            if record.state != "in_progress" or record.fingerprint != fingerprint:
                return  # a request that outlived its lease; the newer one settles the key
            change(record)
            self.save(record)

        self._retrying(attempt)
