"""The composition root: builds every application service from settings.

This is the one module that reads the environment and names a persistence backend.
Switching backend is a setting, never an edit::

    COMMERCE_PERSISTENCE=sqlite   (default)  SQLite files under COMMERCE_SQLITE_DIR (./data)
    COMMERCE_PERSISTENCE=memory              in-process only, gone on exit
    COMMERCE_PERSISTENCE=postgres            PostgreSQL via eventsourcing's POSTGRES_* settings
    COMMERCE_PERSISTENCE=redis               Redis via the REDIS_* settings (docs/adapters/redis.md)

and so is the message bus the outbox relays publish integration events to::

    COMMERCE_MESSAGING=none       (default)  no bus, no relays
    COMMERCE_MESSAGING=memory                in-process (tests, one-process hosts)
    COMMERCE_MESSAGING=redis                 Redis Streams at REDIS_URL
    COMMERCE_MESSAGING=postgres              tables in the POSTGRES_* database

Settings come from the ``env`` mapping given, then from ``os.environ``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.persistence import InterfaceError, OperationalError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from suuupra_commerce.application import (
    BatchReads,
    CommerceApplication,
    RecorderHook,
    RetryPolicy,
)
from suuupra_commerce.carts.service import Carts
from suuupra_commerce.errors import InvalidInputError, StoreUnavailableError
from suuupra_commerce.inventory.domain import AllocationStrategy
from suuupra_commerce.inventory.service import Inventory
from suuupra_commerce.messaging.ports import DeliveryPolicy, LogWaiter, MessageBus
from suuupra_commerce.messaging.positions import EventStoreRelayPositions
from suuupra_commerce.messaging.relay import OutboxRelay, PollingWaiter
from suuupra_commerce.orders.policy import CancellationPolicy
from suuupra_commerce.orders.service import Orders
from suuupra_commerce.ports import (
    Clock,
    DiscountPolicy,
    Notifier,
    PaymentGateway,
    PriceBook,
    ShippingPolicy,
    ShippingProvider,
    SystemClock,
    TaxPolicy,
)
from suuupra_commerce.pricing import FreeShipping, NoDiscounts, NoTax, Pricing
from suuupra_commerce.projections import InMemoryViewStore, ViewStore
from suuupra_commerce.sagas.definition import SagaRegistry
from suuupra_commerce.sagas.orders import (
    ORDER_CANCELLATION,
    ORDER_FULFILMENT,
    OrderParticipants,
    OrderSagas,
    fulfilment_trigger,
)
from suuupra_commerce.sagas.service import Participants, SagaDispatcher, SagaEngine, Sagas
from suuupra_commerce.sagas.workers import PartitionLeases, SagaWorker, SoleLeases

__all__ = ["Commerce", "Progress", "Settings"]

Progress = Callable[[str, int, int], None]
"""Told ``(service, done, total)`` as a rebuild goes (notification ids of that service's log)."""

log = logging.getLogger("suuupra_commerce.system")

_PERSISTENCE_MODULES = {
    "memory": "eventsourcing.popo",
    "sqlite": "eventsourcing.sqlite",
    "postgres": "suuupra_commerce.adapters.postgres",
    "redis": "suuupra_commerce.adapters.redis",
}

#: eventsourcing's own PostgreSQL settings, passed through unchanged when present.
_POSTGRES_KEYS = (
    "POSTGRES_DBNAME",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_SCHEMA",
    "POSTGRES_CONNECT_TIMEOUT",
    "POSTGRES_POOL_SIZE",
    "POSTGRES_MAX_OVERFLOW",
    "POSTGRES_LOCK_TIMEOUT",
    "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT",
    "POSTGRES_CONN_MAX_AGE",
    "POSTGRES_PRE_PING",
    "POSTGRES_MAX_WAITING",
    "POSTGRES_GET_PASSWORD_TOPIC",
)

#: The applications of a ``Commerce``: each may have ``<APP>_POSTGRES_*`` keys of its own.
_APPLICATIONS = ("INVENTORY", "ORDERS", "CARTS", "SAGAS", "SAGADISPATCHER")


def _postgres_keys(merged: Mapping[str, str]) -> dict[str, str]:
    """The PostgreSQL keys to pass on: ``COMMERCE_POSTGRES_URL`` spelled out, then the
    ``POSTGRES_*`` keys (which win over the URL), then per-application ``<APP>_POSTGRES_*``.

    >>> keys = _postgres_keys({"COMMERCE_POSTGRES_URL": "postgresql://shop:pw@db:6543/shop?schema=eu",
    ...                        "POSTGRES_PORT": "5432", "ORDERS_POSTGRES_POOL_SIZE": "20"})
    >>> sorted(keys.items())  # doctest: +NORMALIZE_WHITESPACE
    [('ORDERS_POSTGRES_POOL_SIZE', '20'), ('POSTGRES_DBNAME', 'shop'), ('POSTGRES_HOST', 'db'),
     ('POSTGRES_PASSWORD', 'pw'), ('POSTGRES_PORT', '5432'), ('POSTGRES_SCHEMA', 'eu'),
     ('POSTGRES_USER', 'shop')]
    """
    keys: dict[str, str] = {}
    url = merged.get("COMMERCE_POSTGRES_URL")
    if url:
        keys.update(_from_url(url))
    keys.update({k: merged[k] for k in _POSTGRES_KEYS if k in merged})
    for app in _APPLICATIONS:
        keys.update(
            {f"{app}_{k}": merged[f"{app}_{k}"] for k in _POSTGRES_KEYS if f"{app}_{k}" in merged}
        )
    return keys


def _from_url(url: str) -> dict[str, str]:
    """``postgresql://user:password@host:port/dbname?schema=s`` as ``POSTGRES_*`` keys."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname or not parts.path[1:]:
        msg = "COMMERCE_POSTGRES_URL must look like postgresql://user:password@host:port/dbname"
        raise InvalidInputError(msg)
    keys = {"POSTGRES_HOST": parts.hostname, "POSTGRES_DBNAME": unquote(parts.path[1:])}
    try:
        port = parts.port
    except ValueError:
        raise InvalidInputError("COMMERCE_POSTGRES_URL has an invalid port") from None
    if port is not None:
        keys["POSTGRES_PORT"] = str(port)
    if parts.username:
        keys["POSTGRES_USER"] = unquote(parts.username)
    if parts.password is not None:
        keys["POSTGRES_PASSWORD"] = unquote(parts.password)
    schema = parse_qs(parts.query).get("schema")
    if schema:
        keys["POSTGRES_SCHEMA"] = schema[-1]
    return keys


#: The Redis recorders' settings, passed through unchanged when present. Only carts may expire.
_REDIS_KEYS = (
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "REDIS_SOCKET_TIMEOUT",
    "REDIS_SOCKET_CONNECT_TIMEOUT",
    "REDIS_MAX_CONNECTIONS",
    "REDIS_RETRIES",
    "CARTS_REDIS_AGGREGATE_TTL_SECONDS",
)

#: eventsourcing's own settings for encrypting and compressing stored events, by field.
_CIPHER_KEYS = {
    "cipher_topic": "CIPHER_TOPIC",
    "cipher_key": "CIPHER_KEY",
    "compressor_topic": "COMPRESSOR_TOPIC",
}
_AES_CIPHER = "eventsourcing.cipher:AESCipher"


class Settings(BaseModel):
    """Everything the composition root needs, with defaults for the embedded store.

    >>> Settings.from_env({"COMMERCE_PERSISTENCE": "memory"}).persistence
    'memory'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    persistence: Literal["memory", "sqlite", "postgres", "redis"] = "sqlite"
    sqlite_dir: Path = Path("data")
    sqlite_lock_timeout_seconds: int = Field(default=30, ge=1, le=600)
    postgres: dict[str, str] = Field(default_factory=dict, repr=False)  # holds a password
    redis: dict[str, str] = Field(default_factory=dict, repr=False)  # its URL may hold one
    reservation_minutes: int = Field(default=15, ge=1, le=43_200)
    cart_ttl_hours: int = Field(default=24 * 7, ge=1, le=24 * 365)
    cart_abandoned_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    retry_max_attempts: int = Field(default=30, ge=1, le=1000)
    aggregate_cache_size: int = Field(default=1000, ge=0, le=1_000_000)
    saga_poll_seconds: float = Field(default=0.2, gt=0, le=60, allow_inf_nan=False)
    saga_partitions: int = Field(default=1, ge=1, le=1024)
    saga_threads: int = Field(default=1, ge=1, le=64)
    saga_lease_seconds: float = Field(default=10.0, ge=0.05, le=3600, allow_inf_nan=False)
    messaging: Literal["none", "memory", "redis", "postgres"] = "none"
    bus_redeliver_seconds: float = Field(default=30.0, gt=0, le=86_400, allow_inf_nan=False)
    bus_max_deliveries: int = Field(default=5, ge=1, le=1000)
    bus_max_length: int = Field(default=100_000, ge=1, le=10**9)
    relay_poll_seconds: float = Field(default=0.5, gt=0, le=60, allow_inf_nan=False)
    views: Literal["memory", "sqlite", "postgres"] | None = None
    views_pool_size: int = Field(default=4, ge=1, le=100)
    views_fold: Literal["query", "worker"] = "query"
    #: ``VIEWS_POSTGRES_*`` keys: where the view store connects, over ``POSTGRES_*`` (a replica).
    views_postgres: dict[str, str] = Field(default_factory=dict, repr=False)
    views_poll_seconds: float = Field(default=0.5, gt=0, le=60, allow_inf_nan=False)
    cipher_topic: str | None = None
    #: Never shown: repr, str and JSON of the settings print ``**********`` for it.
    cipher_key: SecretStr | None = None
    compressor_topic: str | None = None

    @model_validator(mode="after")
    def _cipher_needs_a_key(self) -> Self:
        if self.cipher_topic and self.cipher_key is None:
            msg = "CIPHER_TOPIC is set but CIPHER_KEY is not"
            raise ValueError(msg)
        return self

    @property
    def views_backend(self) -> Literal["memory", "sqlite", "postgres"]:
        """Where the read models live: ``views`` if set, else beside the events.

        On Redis they default to memory (folded again from the log at start).

        >>> Settings(persistence="postgres").views_backend
        'postgres'
        >>> Settings(persistence="redis").views_backend
        'memory'
        """
        if self.views is not None:
            return self.views
        return "memory" if self.persistence == "redis" else self.persistence

    def view_store(self) -> ViewStore:
        """A new view store as the settings choose it (the caller closes it)."""
        backend = self.views_backend
        if backend == "sqlite":
            # Imported here, like every adapter: the composition root alone names them.
            from suuupra_commerce.adapters.sqlite_views import SQLiteViewStore

            self.sqlite_dir.mkdir(parents=True, exist_ok=True)
            return SQLiteViewStore(
                self.sqlite_dir / "views.sqlite",
                lock_timeout_seconds=self.sqlite_lock_timeout_seconds,
            )
        if backend == "postgres":
            from suuupra_commerce.adapters.postgres_views import PostgresViewStore

            where = {**self.postgres, **self.views_postgres}
            return PostgresViewStore(where, pool_size=self.views_pool_size)
        return InMemoryViewStore()

    def batch_reads(self) -> BatchReads | None:
        """How the services read many aggregates at once (the saga engine reads a section's
        sagas, exchanges and orders so), if not one by one."""
        if self.persistence == "postgres":
            from suuupra_commerce.adapters.postgres_reads import read_postgres_events_after

            return read_postgres_events_after
        return None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Read ``COMMERCE_*`` (and the stores' ``POSTGRES_*``, ``REDIS_*``, eventsourcing's
        ``CIPHER_TOPIC``, ``CIPHER_KEY``, ``COMPRESSOR_TOPIC``) keys, ``env`` first."""
        merged: dict[str, str] = dict(os.environ)
        if env is not None:
            merged.update(env)
        values: dict[str, Any] = {}
        for field in cls.model_fields:
            key = _CIPHER_KEYS.get(field, f"COMMERCE_{field.upper()}")
            if field not in ("postgres", "redis", "views_postgres") and merged.get(key):
                values[field] = merged[key]
        values["postgres"] = _postgres_keys(merged)
        values["redis"] = {k: merged[k] for k in _REDIS_KEYS if k in merged}
        values["views_postgres"] = {
            k: merged[f"VIEWS_{k}"] for k in _POSTGRES_KEYS if f"VIEWS_{k}" in merged
        }
        try:
            return cls.model_validate(values)
        except ValueError as error:
            raise InvalidInputError(f"invalid commerce settings: {error}") from None

    def application_env(self, name: str) -> dict[str, str]:
        """The eventsourcing environment of one application (``name`` is its table prefix)."""
        env = {"PERSISTENCE_MODULE": _PERSISTENCE_MODULES[self.persistence]}
        if self.aggregate_cache_size:
            # Keep recently used aggregates in memory; each command fast-forwards its cached
            # copy with the events stored since (so other processes' writes are seen) and
            # decides on a deep copy of it.
            env["AGGREGATE_CACHE_MAXSIZE"] = str(self.aggregate_cache_size)
            env["AGGREGATE_CACHE_FASTFORWARD"] = "y"
            env["DEEPCOPY_FROM_AGGREGATE_CACHE"] = "y"
        if self.persistence == "sqlite":
            self.sqlite_dir.mkdir(parents=True, exist_ok=True)
            env["SQLITE_DBNAME"] = str(self.sqlite_dir / f"{name.lower()}.sqlite")
            env["SQLITE_LOCK_TIMEOUT"] = str(self.sqlite_lock_timeout_seconds)
        elif self.persistence == "postgres":
            env.update(self.postgres)
        elif self.persistence == "redis":
            env.update(self.redis)
            # Only carts may expire: a plain REDIS_AGGREGATE_TTL_SECONDS gives no TTL here.
            env.setdefault(f"{name.upper()}_REDIS_AGGREGATE_TTL_SECONDS", "")
        if self.cipher_key is not None:
            env["CIPHER_TOPIC"] = self.cipher_topic or _AES_CIPHER
            env["CIPHER_KEY"] = self.cipher_key.get_secret_value()
        if self.compressor_topic:
            env["COMPRESSOR_TOPIC"] = self.compressor_topic
        return env

    @property
    def redis_url(self) -> str:
        """The Redis server of the store, the bus and the leases (as the store defaults it)."""
        return self.redis.get("REDIS_URL") or "redis://127.0.0.1:6379/0"

    def redis_namespace(self, what: str) -> str:
        """A key namespace under ``REDIS_KEY_PREFIX`` for ``what`` (the bus, the leases)."""
        prefix = self.redis.get("REDIS_KEY_PREFIX", "eventsourcing:")
        return f"{prefix}{what}".replace(":", ".").replace("{", "").replace("}", "").lower()

    @property
    def delivery_policy(self) -> DeliveryPolicy:
        """How patient the bus is with consumers (``COMMERCE_BUS_*``)."""
        return DeliveryPolicy(
            redeliver_after=self.bus_redeliver_seconds,
            max_deliveries=self.bus_max_deliveries,
            max_length=self.bus_max_length,
        )


class Commerce:
    """Inventory, orders, carts and the order sagas, wired together on one backend.

    The sagas need the host's payment gateway, shipping provider and notifier; without
    them everything else works, and :attr:`engine` says which port is missing.

    >>> from suuupra_commerce.adapters.memory import InMemoryPriceBook
    >>> with Commerce.from_env({"COMMERCE_PERSISTENCE": "memory"},
    ...                        price_book=InMemoryPriceBook()) as commerce:
    ...     commerce.inventory.items()
    []
    """

    def __init__(
        self,
        settings: Settings,
        *,
        price_book: PriceBook,
        tax: TaxPolicy | None = None,
        discounts: DiscountPolicy | None = None,
        shipping: ShippingPolicy | None = None,
        clock: Clock | None = None,
        cancellation_policy: CancellationPolicy | None = None,
        allocation: AllocationStrategy | None = None,
        payments: PaymentGateway | None = None,
        shipping_provider: ShippingProvider | None = None,
        notifier: Notifier | None = None,
        recorder_hook: RecorderHook | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.pricing = Pricing(
            price_book=price_book,
            tax=tax or NoTax(),
            discounts=discounts or NoDiscounts(),
            shipping=shipping or FreeShipping(),
        )
        try:
            with _starting(settings):
                retry = RetryPolicy(max_attempts=settings.retry_max_attempts)
                self.views = settings.view_store()
                common: dict[str, Any] = {
                    "clock": self.clock,
                    "retry": retry,
                    "views": self.views,
                    "batch_reads": settings.batch_reads(),
                }
                if recorder_hook is not None:
                    common["recorder_hook"] = recorder_hook
                self.inventory = Inventory(
                    settings.application_env(Inventory.name), allocation=allocation, **common
                )
                self.orders = Orders(
                    settings.application_env(Orders.name),
                    inventory=self.inventory,
                    pricing=self.pricing,
                    cancellation_policy=cancellation_policy,
                    reservation_minutes=settings.reservation_minutes,
                    **common,
                )
                self.carts = Carts(
                    settings.application_env(Carts.name),
                    orders=self.orders,
                    pricing=self.pricing,
                    ttl=timedelta(hours=settings.cart_ttl_hours),
                    abandoned_after=timedelta(minutes=settings.cart_abandoned_minutes),
                    **common,
                )
                self.sagas = Sagas(
                    settings.application_env(Sagas.name),
                    registry=SagaRegistry([ORDER_FULFILMENT, ORDER_CANCELLATION]),
                    triggers=[fulfilment_trigger(self.orders)],
                    **common,
                )
                order_participants = OrderParticipants(
                    inventory=self.inventory,
                    orders=self.orders,
                    payments=payments,
                    shipping=shipping_provider,
                    notifier=notifier,
                    reservation_minutes=settings.reservation_minutes,
                )
                self.participants = Participants(
                    order_participants.handlers(),
                    # An order is the saga's while it works on it: its writes are held and
                    # recorded once per group of commands. Stock items are not: clients
                    # reserve on them all the time, and a group that lost a race to one
                    # would have to run again.
                    writes_to=(self.orders,),
                    reads=order_participants.reads,
                )
                self.saga_dispatcher = SagaDispatcher(
                    settings.application_env(SagaDispatcher.name),
                    participants=self.participants,
                    **common,
                )
                self.order_sagas = OrderSagas(sagas=self.sagas, orders=self.orders)
                if settings.views_fold == "worker":
                    for app in (self.inventory, self.orders, self.carts, self.sagas):
                        app.fold_on_query = False
                self._engine: SagaEngine | None = None
                self._bus: MessageBus | None = None
                self._relays: tuple[OutboxRelay, ...] | None = None
                self._relay_positions: EventStoreRelayPositions | None = None
        except (OperationalError, InterfaceError) as error:
            self._close_built()
            msg = f"the store cannot be reached: {error}"
            raise StoreUnavailableError(msg) from error

    def _close_built(self) -> None:
        """Close what a constructor that failed half-way had opened."""
        for name in ("saga_dispatcher", "sagas", "carts", "orders", "inventory", "views"):
            built = getattr(self, name, None)
            if built is not None:
                with suppress(Exception):
                    built.close()

    @property
    def engine(self) -> SagaEngine:
        """The saga engine of this process (built on first use).

        ``SagaConfigurationError`` if a port the sagas need was not given.
        """
        if self._engine is None:
            self._engine = SagaEngine(
                self.sagas,
                self.saga_dispatcher,
                leaders={Orders.name: self.orders},
                poll_interval=self.settings.saga_poll_seconds,
                partitions=self.settings.saga_partitions,
                threads=self.settings.saga_threads,
            )
        return self._engine

    @property
    def bus(self) -> MessageBus | None:
        """The message bus ``COMMERCE_MESSAGING`` names (built on first use), or ``None``."""
        if self._bus is None and self.settings.messaging != "none":
            self._bus = _build_bus(self.settings)
        return self._bus

    @property
    def relays(self) -> tuple[OutboxRelay, ...]:
        """One outbox relay per publishing application (inventory, orders, carts) to :attr:`bus`.

        Empty when ``COMMERCE_MESSAGING=none``. Their positions are tracking records in the
        event store (see :class:`~suuupra_commerce.messaging.EventStoreRelayPositions`).
        """
        if self._relays is None:
            bus = self.bus
            if bus is None:
                self._relays = ()
            else:
                with _starting(self.settings):
                    positions = EventStoreRelayPositions(self.settings.application_env("Relays"))
                self._relay_positions = positions
                self._relays = tuple(
                    OutboxRelay(application, bus, positions, clock=self.clock)
                    for application in (self.inventory, self.orders, self.carts)
                )
        return self._relays

    def run_relays(self, stop: threading.Event) -> None:
        """Run every relay, each in a thread of its own, until ``stop`` is set.

        On PostgreSQL a relay sleeps on LISTEN/NOTIFY of its application's events and wakes
        as a command commits; elsewhere it polls every ``COMMERCE_RELAY_POLL_SECONDS``. A
        relay that fails with anything but an unreachable store or bus (which it retries)
        stops the others, and its error is raised here.
        """

        def run(relay: OutboxRelay) -> Callable[[], None]:
            def follow() -> None:
                waiter = self._waiter(relay.application, self.settings.relay_poll_seconds)
                try:
                    relay.run(stop, waiter)
                finally:
                    waiter.close()

            return follow

        _run_together(stop, {f"relay-{r.name}": run(r) for r in self.relays})

    def run_projections(self, stop: threading.Event) -> None:
        """Fold every service's read models as its events commit, until ``stop`` is set.

        For ``COMMERCE_VIEWS_FOLD=worker``: one such process (or several: each event is
        folded once whoever folds it) keeps the views up to date, and queries read them
        without folding. An unreachable store is waited out; any other failure stops the
        others and is raised here.
        """

        def run(app: CommerceApplication) -> Callable[[], None]:
            def follow() -> None:
                waiter = self._waiter(app, self.settings.views_poll_seconds)
                try:
                    while not stop.is_set():
                        try:
                            app.catch_up()
                        except StoreUnavailableError:
                            log.warning("%s views: store unavailable; retrying", app.name)
                        waiter.wait(self.settings.views_poll_seconds)
                finally:
                    waiter.close()

            return follow

        apps = (self.inventory, self.orders, self.carts, self.sagas)
        _run_together(stop, {f"views-{app.name}": run(app) for app in apps})

    def _waiter(self, application: Any, poll_seconds: float) -> LogWaiter:
        """Sleeps until ``application`` may have recorded something (LISTEN on PostgreSQL)."""
        if self.settings.persistence == "postgres":
            from suuupra_commerce.adapters.postgres_messaging import PostgresNotificationWaiter

            return PostgresNotificationWaiter.for_application(self.settings.postgres, application)
        return PollingWaiter(poll_seconds)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **ports: Any) -> Commerce:
        """Build from ``env`` (then ``os.environ``); ``ports`` as for the constructor."""
        return cls(Settings.from_env(env), **ports)

    def worker(
        self, leases: PartitionLeases | None = None, *, balance_interval: float = 1.0
    ) -> SagaWorker:
        """A saga worker that shares the partitions with the deployment's other workers.

        On PostgreSQL the leases are advisory locks on the store's server (a worker that
        dies frees its partitions at once). Where Redis is the one server the workers share
        (the Redis store, or SQLite files with the Redis bus) they are keys with an expiry
        there (a dead worker's partitions free up when its leases expire). On the embedded
        stores alone a worker is alone and owns every partition.
        """
        if leases is None:
            leases = self._default_leases()
        return SagaWorker(self.engine, leases, balance_interval=balance_interval)

    def _default_leases(self) -> PartitionLeases:
        settings = self.settings
        if settings.persistence == "postgres":
            # Imported here: it needs psycopg, which only the postgres extra installs.
            from suuupra_commerce.adapters.postgres_leases import PostgresPartitionLeases

            where = settings.postgres
            namespace = (
                f"{where.get('POSTGRES_DBNAME', '')}/{where.get('POSTGRES_SCHEMA', 'public')}/sagas"
            )
            return PostgresPartitionLeases(where, namespace)
        if settings.persistence == "redis" or (
            settings.persistence == "sqlite" and settings.messaging == "redis"
        ):
            from suuupra_commerce.adapters.redis_leases import RedisPartitionLeases

            return RedisPartitionLeases.from_url(
                settings.redis_url,
                namespace=settings.redis_namespace("sagas"),
                ttl=settings.saga_lease_seconds,
            )
        return SoleLeases()

    def close(self) -> None:
        """Stop the saga engine's thread, if it runs, and close every connection opened."""
        if self._engine is not None:
            self._engine.stop()
        if self._relay_positions is not None:
            self._relay_positions.close()
        if self._bus is not None:
            self._bus.close()
        self.saga_dispatcher.close()
        self.sagas.close()
        self.carts.close()
        self.orders.close()
        self.inventory.close()
        self.views.close()

    def rebuild_views(self, progress: Progress | None = None) -> dict[str, int]:
        """Fold every read model again from the first event; events folded per service.

        ``progress(service, done, total)`` is told how far each service has got.
        """
        folded: dict[str, int] = {}
        for app in (self.inventory, self.orders, self.carts, self.sagas):

            def told(done: int, total: int, name: str = app.name) -> None:
                if progress is not None:
                    progress(name, done, total)

            folded[app.name] = app.rebuild(told)
        return folded

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _build_bus(settings: Settings) -> MessageBus:
    """The bus ``settings.messaging`` names; the adapters are imported only when named."""
    policy = settings.delivery_policy
    if settings.messaging == "memory":
        from suuupra_commerce.adapters.memory_messaging import InMemoryMessageBus

        return InMemoryMessageBus(policy)
    if settings.messaging == "redis":
        from suuupra_commerce.adapters.redis_messaging import RedisStreamBus

        return RedisStreamBus.from_url(
            settings.redis_url, namespace=settings.redis_namespace("bus"), policy=policy
        )
    if settings.messaging == "postgres":
        from suuupra_commerce.adapters.postgres_messaging import PostgresMessageBus

        return PostgresMessageBus(settings.postgres, policy=policy)
    msg = f"COMMERCE_MESSAGING={settings.messaging} builds no bus"
    raise InvalidInputError(msg)


def _starting(settings: Settings) -> AbstractContextManager[None]:
    """Serialise start-up across processes where the store needs it (PostgreSQL's DDL)."""
    if settings.persistence != "postgres" and settings.views_backend != "postgres":
        return nullcontext()
    from suuupra_commerce.adapters.postgres_connection import startup_lock

    return startup_lock(settings.postgres)


def _run_together(stop: threading.Event, jobs: Mapping[str, Callable[[], None]]) -> None:
    """Run each job in a thread of its own until all end; one failing stops the others."""
    failures: list[BaseException] = []

    def guarded(name: str, job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except BaseException as error:
                log.exception("%s failed; stopping the others", name)
                failures.append(error)
                stop.set()

        return run

    threads = [threading.Thread(target=guarded(n, j), name=n) for n, j in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
