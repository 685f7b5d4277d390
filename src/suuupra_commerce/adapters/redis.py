"""Redis persistence for eventsourcing: the recorders and factory ``PERSISTENCE_MODULE`` selects.

Set ``PERSISTENCE_MODULE=suuupra_commerce.adapters.redis`` (or ``COMMERCE_PERSISTENCE=redis``);
docs/adapters/redis.md describes the keys, the settings and what is guaranteed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, TypeVar, cast
from uuid import UUID

import redis
import redis.exceptions
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    DatabaseError,
    DataError,
    InfrastructureFactory,
    IntegrityError,
    InterfaceError,
    ListenNotifySubscription,
    Notification,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProcessRecorder,
    ProgrammingError,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "RedisAggregateRecorder",
    "RedisApplicationRecorder",
    "RedisDatastore",
    "RedisFactory",
    "RedisProcessRecorder",
    "RedisSubscription",
    "RedisTrackingRecorder",
]

T = TypeVar("T")

#: What a script takes as an argument.
ScriptArg = bytes | str | int | float

# One script writes everything a recorder writes: events, their notification-log entries, the
# sequence counter and the tracking record. Redis runs a script alone, so the checks and the
# writes are one atomic step, and notification ids are handed out in commit order. Every check
# comes before the first write, and the first write is the one that could fail (an XADD whose
# id is not above the log's top, or a refusal when out of memory), so a refused or failed
# insert writes nothing.
#
# KEYS: 1 sequence counter, 2 notification log, 3 tracking hash, then the aggregates' sorted
#   sets (k of them, numbered 1..k by ARGV), then keys whose expiry is refreshed with them.
# ARGV: 1 notify (1: assign notification ids and append to the log), 2 TTL in ms (0: none),
#   3 strict (1: an aggregate's new events must follow its stored ones without a gap),
#   4 retrying (1: a retry after a lost reply; if this exact write is stored, answer as then),
#   5 tracking application name ('' for none), 6 tracking notification id, 7 k, 8 n events,
#   then 5 per event: aggregate number, version, originator id, topic, state.
# An aggregate's sorted set has its versions as scores and "<version> <nid> <topic>\n<state>"
# as members (nid 0 when the recorder keeps no notification log).
_INSERT_SCRIPT: Final = """
local notify = ARGV[1] == '1'
local ttl = tonumber(ARGV[2])
local strict = ARGV[3] == '1'
local retrying = ARGV[4] == '1'
local app = ARGV[5]
local tid = tonumber(ARGV[6])
local n = tonumber(ARGV[8])
local function ev(i, field) return ARGV[8 + (i - 1) * 5 + field] end
local function agg(i) return KEYS[3 + tonumber(ev(i, 1))] end

local function stored_nid(i)
  local member = redis.call('ZRANGE', agg(i), ev(i, 2), ev(i, 2), 'BYSCORE')[1]
  if not member then return nil end
  local nl = string.find(member, '\\n', 1, true)
  local _, _, nid, topic = string.find(string.sub(member, 1, nl - 1), '^%-?%d+ (%d+) (.*)$')
  if topic ~= ev(i, 4) or string.sub(member, nl + 1) ~= ev(i, 5) then return nil end
  return tonumber(nid)
end

if retrying then
  local done = true
  local nids = {}
  for i = 1, n do
    local nid = stored_nid(i)
    if nid == nil then done = false break end
    nids[i] = nid
  end
  if done and n == 0 then done = app ~= '' and redis.call('HGET', KEYS[3], app) == ARGV[6] end
  if done then
    if notify then return nids end
    return {}
  end
end

if app ~= '' then
  local current = redis.call('HGET', KEYS[3], app)
  if current and tonumber(current) >= tid then
    return redis.error_reply('CONFLICT tracking of ' .. app .. ': ' .. ARGV[6]
      .. ' is not above the recorded ' .. current)
  end
end

local seen = {}
local last = {}
for i = 1, n do
  local number = ev(i, 1)
  local version = tonumber(ev(i, 2))
  local where = ev(i, 3) .. ' version ' .. ev(i, 2)
  if seen[number .. ' ' .. ev(i, 2)] then
    return redis.error_reply('CONFLICT ' .. where .. ' twice in one insert')
  end
  seen[number .. ' ' .. ev(i, 2)] = true
  if strict then
    local previous = last[number]
    if previous == nil then
      local top = redis.call('ZRANGE', agg(i), '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 1,
        'WITHSCORES')
      if #top == 0 then
        if version > 1 then
          return redis.error_reply('CONFLICT ' .. where .. ' follows no stored event'
            .. ' (expired?)')
        end
      elseif version ~= tonumber(top[2]) + 1 then
        return redis.error_reply('CONFLICT ' .. where .. ' does not follow the stored version '
          .. top[2])
      end
    elseif version ~= previous + 1 then
      return redis.error_reply('CONFLICT ' .. where .. ' leaves a gap in one insert')
    end
    last[number] = version
  elseif redis.call('ZCOUNT', agg(i), version, version) > 0 then
    return redis.error_reply('CONFLICT ' .. where .. ' is already recorded')
  end
end

local nids = {}
local nid = 0
if notify then nid = tonumber(redis.call('GET', KEYS[1]) or '0') end
for i = 1, n do
  local sn = '0'
  if notify then
    nid = nid + 1
    sn = string.format('%d', nid)
    if i == 1 then
      local added = redis.pcall('XADD', KEYS[2], sn .. '-0', 'o', ev(i, 3), 'v', ev(i, 2),
        't', ev(i, 4))
      if type(added) == 'table' and added.err then
        return redis.error_reply('REFUSED nothing written: ' .. added.err)
      end
    else
      redis.call('XADD', KEYS[2], sn .. '-0', 'o', ev(i, 3), 'v', ev(i, 2), 't', ev(i, 4))
    end
    nids[i] = nid
  end
  local member = ev(i, 2) .. ' ' .. sn .. ' ' .. ev(i, 4) .. '\\n' .. ev(i, 5)
  if i == 1 and not notify then
    local added = redis.pcall('ZADD', agg(i), ev(i, 2), member)
    if type(added) == 'table' and added.err then
      return redis.error_reply('REFUSED nothing written: ' .. added.err)
    end
  else
    redis.call('ZADD', agg(i), ev(i, 2), member)
  end
end
if notify and n > 0 then redis.call('SET', KEYS[1], string.format('%d', nid)) end
if ttl > 0 then
  for j = 4, #KEYS do redis.call('PEXPIRE', KEYS[j], ttl) end
end
if app ~= '' then
  local written = redis.pcall('HSET', KEYS[3], app, ARGV[6])
  if n == 0 and type(written) == 'table' and written.err then
    return redis.error_reply('REFUSED nothing written: ' .. written.err)
  end
end
return nids
"""

# Reads a section of the notification log: entries from ARGV[1] (inclusive) to ARGV[2]
# (a notification id or '+'), at most ARGV[3] of them, looking at no more than ARGV[5] log
# entries. Each log entry names an aggregate and version; the event itself is read from the
# aggregate's sorted set (key ARGV[4] .. originator id) and must carry the entry's notification
# id: an aggregate that expired (or expired and began again under the same id) leaves entries
# that match nothing, which are skipped, and deleted when ARGV[6] is '1'. ARGV[7..] are topics.
# Returns {nid, originator id, member, ...} and the last notification id looked at, or -1 when
# the log holds nothing more in the range.
_SELECT_SCRIPT: Final = """
local limit = tonumber(ARGV[3])
local prefix = ARGV[4]
local budget = tonumber(ARGV[5])
local cleanup = ARGV[6] == '1'
local topics = nil
if #ARGV > 6 then
  topics = {}
  for i = 7, #ARGV do topics[ARGV[i]] = true end
end
local out = {}
local found = 0
local scanned = 0
local from = ARGV[1]
local last = '-1'
while scanned < budget do
  local want = math.min(budget - scanned, math.max(limit - found, 64))
  local entries = redis.call('XRANGE', KEYS[1], from, ARGV[2], 'COUNT', want)
  for _, entry in ipairs(entries) do
    local nid = string.match(entry[1], '^(%d+)')
    local fields = entry[2]
    scanned = scanned + 1
    last = nid
    if topics == nil or topics[fields[6]] then
      local member = redis.call('ZRANGE', prefix .. fields[2], fields[4], fields[4], 'BYSCORE')[1]
      if member and string.match(member, '^%-?%d+ (%d+) ') == nid then
        out[#out + 1] = nid
        out[#out + 1] = fields[2]
        out[#out + 1] = member
        found = found + 1
        if found == limit then return {out, nid} end
      elseif cleanup then
        redis.call('XDEL', KEYS[1], entry[1])
      end
    end
  end
  if #entries < want then return {out, '-1'} end
  from = string.format('%d', tonumber(last) + 1)
end
return {out, last}
"""

#: Redis commands this module needs: ZRANGE ... BYSCORE REV LIMIT came in 6.2.
_MINIMUM_SERVER: Final = (6, 2)

#: How long a subscription's blocking read waits before it looks at whether it was stopped.
_SUBSCRIBE_BLOCK_SECONDS: Final = 0.1


def _translate(error: redis.exceptions.RedisError) -> PersistenceError:
    """The eventsourcing persistence error that says what ``error`` means."""
    message = str(error) or type(error).__name__
    if isinstance(error, redis.exceptions.ResponseError):
        if message.startswith("CONFLICT"):
            return IntegrityError(message)
        if message.startswith(("WRONGTYPE", "NOPERM", "NOSCRIPT")):
            return ProgrammingError(message)
        if isinstance(
            error, redis.exceptions.OutOfMemoryError | redis.exceptions.ReadOnlyError
        ) or message.startswith(
            (
                "REFUSED",
                "OOM",
                "BUSY",
                "LOADING",
                "MASTERDOWN",
                "READONLY",
                "NOREPLICAS",
                "TRYAGAIN",
            )
        ):
            return OperationalError(message)
        return DatabaseError(message)
    if isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return OperationalError(message)
    if isinstance(error, redis.exceptions.DataError):
        return DataError(message)
    if isinstance(error, redis.exceptions.InvalidResponse):
        return InterfaceError(message)
    return PersistenceError(message)


def _transient(error: redis.exceptions.RedisError) -> bool:
    """Whether ``error`` is a lost or refused connection, which another attempt may not meet."""
    return isinstance(
        error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError
    ) and not isinstance(error, redis.exceptions.AuthenticationError)


class RedisDatastore:
    """A Redis connection pool and the scripts, retries and error translation recorders share.

    Reads are retried after a lost connection (they change nothing). A write is retried
    too, but as a *retry*: the script first looks for this very write (the same events,
    byte for byte, or the same tracking record) and, if it landed before the reply was
    lost, answers as it did then instead of raising a false conflict or writing twice.

    >>> store = RedisDatastore("redis://127.0.0.1:6379/0", retries=0)
    >>> store.retries
    0
    >>> store.close()
    """

    def __init__(
        self,
        url: str,
        *,
        socket_timeout: float = 5.0,
        socket_connect_timeout: float = 5.0,
        max_connections: int = 32,
        retries: int = 2,
        retry_delay: float = 0.05,
        aggregate_ttl_seconds: float | None = None,
        originator_id_type: Literal["uuid", "text"] = "uuid",
        client_name: str | None = None,
    ) -> None:
        if retries < 0 or max_connections < 1 or socket_timeout <= 0:
            msg = "RedisDatastore needs retries >= 0, max_connections >= 1, socket_timeout > 0"
            raise ValueError(msg)
        self.url = url
        self.socket_timeout = socket_timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self.aggregate_ttl_ms = (
            max(1, round(aggregate_ttl_seconds * 1000)) if aggregate_ttl_seconds else 0
        )
        self.originator_id_type = originator_id_type
        # redis-py would retry every command, writes included, ten times by default: turn
        # that off and decide here what may be tried again.
        self.pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            retry=Retry(NoBackoff(), 0),
            client_name=client_name,
        )
        self.client = redis.Redis(connection_pool=self.pool)
        self._insert = self.client.register_script(_INSERT_SCRIPT)
        self._select = self.client.register_script(_SELECT_SCRIPT)
        self._checked = False
        self._closed = False

    def read(self, operation: Callable[[redis.Redis], T]) -> T:
        """Run a read, retrying it after a lost connection; persistence errors otherwise."""
        attempt = 0
        while True:
            try:
                return operation(self.client)
            except redis.exceptions.RedisError as error:
                if not _transient(error) or attempt >= self.retries or self._closed:
                    raise _translate(error) from error
            attempt += 1
            time.sleep(self.retry_delay * 2 ** (attempt - 1))

    def insert(self, keys: Sequence[str], args: Callable[[bool], Sequence[ScriptArg]]) -> list[int]:
        """Run the insert script; ``args(retrying)`` gives its arguments for each attempt.

        After a lost connection it tries again, as a retry, up to ``retries`` times; if it
        still cannot tell whether the write landed it raises ``OperationalError`` saying so.
        """
        attempt = 0
        while True:
            try:
                result = self._insert(keys=list(keys), args=list(args(attempt > 0)))
            except redis.exceptions.RedisError as error:
                translated = _translate(error)
                if _transient(error) and attempt < self.retries and not self._closed:
                    attempt += 1
                    time.sleep(self.retry_delay * 2 ** (attempt - 1))
                    continue
                if _transient(error) or (attempt and not isinstance(translated, IntegrityError)):
                    msg = (
                        f"Redis write failed after {attempt + 1} attempts ({error}); "
                        "it may or may not have been recorded"
                    )
                    raise OperationalError(msg) from error
                raise translated from error
            return [int(nid) for nid in cast(list[int], result)]

    def select(self, log_key: str, args: Sequence[ScriptArg]) -> tuple[list[bytes], int]:
        """Run the select script: flat (nid, originator id, member) triples, last id looked at."""
        found, last = self.read(lambda _: self._select(keys=[log_key], args=list(args)))
        return cast(list[bytes], found), int(last)

    def check_server(self) -> None:
        """Fail now, with a persistence error, if the server is unreachable or too old."""
        if self._checked:
            return

        def version(client: redis.Redis) -> str:
            return str(client.info("server")["redis_version"])

        found = self.read(version)
        if tuple(int(part) for part in found.split(".")[:2]) < _MINIMUM_SERVER:
            msg = f"Redis {found} is older than the 6.2 this recorder needs"
            raise NotSupportedError(msg)
        self._checked = True

    def originator_id(self, stored: bytes | str) -> UUID | str:
        """The originator id as the application knows it, from its stored text."""
        text = stored.decode() if isinstance(stored, bytes) else stored
        return UUID(text) if self.originator_id_type == "uuid" else text

    def close(self) -> None:
        """Close every connection of the pool."""
        self._closed = True
        self.pool.disconnect()


def _parse_member(member: bytes) -> tuple[int, str, bytes]:
    """(version, topic, state) of an aggregate's sorted-set member."""
    header, _, state = member.partition(b"\n")
    version, _nid, topic = header.decode().split(" ", 2)
    return int(version), topic, state


class RedisRecorder:
    """Base of the Redis recorders: a datastore and the namespace of one application's keys."""

    def __init__(self, datastore: RedisDatastore, namespace: str, purpose: str = "events") -> None:
        self.datastore = datastore
        self.namespace = namespace
        self.purpose = purpose
        self.sequence_key = f"{namespace}:seq"
        self.log_key = f"{namespace}:log"
        self.tracking_key = f"{namespace}:tracking"
        self.aggregate_key_prefix = f"{namespace}:{purpose}:"

    def aggregate_key(self, originator_id: UUID | str) -> str:
        """The sorted set that holds one aggregate's events (or snapshots)."""
        return f"{self.aggregate_key_prefix}{originator_id}"

    def _companion_keys(self, originator_id: str) -> list[str]:
        """An aggregate's other keys, whose expiry is refreshed whenever it is written."""
        purposes = ("events", "snapshots")
        return [f"{self.namespace}:{p}:{originator_id}" for p in purposes if p != self.purpose]

    def _insert(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        notify: bool,
        tracking: Tracking | None = None,
    ) -> list[int]:
        numbers: dict[str, int] = {}
        event_args: list[ScriptArg] = []
        for event in stored_events:
            if "\n" in event.topic:
                msg = f"topic {event.topic!r} contains a newline"
                raise DataError(msg)
            originator_id = str(event.originator_id)
            number = numbers.setdefault(originator_id, len(numbers) + 1)
            event_args += [
                number,
                event.originator_version,
                originator_id,
                event.topic,
                event.state,
            ]
        keys = [self.sequence_key, self.log_key, self.tracking_key]
        keys += [self.aggregate_key(o) for o in numbers]
        ttl = self.datastore.aggregate_ttl_ms
        if ttl:
            keys += [k for o in numbers for k in self._companion_keys(o)]
        strict = bool(ttl) and self.purpose == "events"

        def args(retrying: bool) -> list[ScriptArg]:
            return [
                int(notify),
                ttl,
                int(strict),
                int(retrying),
                tracking.application_name if tracking else "",
                tracking.notification_id if tracking else 0,
                len(numbers),
                len(stored_events),
                *event_args,
            ]

        return self.datastore.insert(keys, args)


class RedisAggregateRecorder(RedisRecorder, AggregateRecorder):
    """Stores each aggregate's events (or snapshots) in a sorted set scored by version.

    A version already stored raises ``IntegrityError`` and the whole insert writes nothing.
    """

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if stored_events:
            self._insert(stored_events, notify=False)
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        low = f"({gt}" if gt is not None else "-inf"
        high = str(lte) if lte is not None else "+inf"
        key = self.aggregate_key(originator_id)
        members = self.datastore.read(
            lambda client: cast(
                list[bytes],
                client.zrange(
                    key,
                    high if desc else low,
                    low if desc else high,
                    desc=desc,
                    byscore=True,
                    offset=None if limit is None else 0,
                    num=limit,
                ),
            )
        )
        events = []
        for member in members:
            version, topic, state = _parse_member(member)
            events.append(
                StoredEvent(
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    state=state,
                )
            )
        return events


class RedisApplicationRecorder(RedisAggregateRecorder, ApplicationRecorder):
    """Also keeps the application's notification log: a stream of entries ``<id>-0``.

    Ids are assigned by the insert script, one after another, in the order inserts commit:
    a reader that has seen id ``n`` has seen (or can still read) every id below it.
    """

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        return self._insert(stored_events, notify=True)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        first = 1 if start is None else start if inclusive_of_start else start + 1
        first = max(first, 1)
        notifications: list[Notification] = []
        if limit < 1 or (stop is not None and stop < first):
            return notifications
        cleanup = int(bool(self.datastore.aggregate_ttl_ms))
        while len(notifications) < limit:
            wanted = limit - len(notifications)
            args: list[ScriptArg] = [
                first,
                "+" if stop is None else stop,
                wanted,
                self.aggregate_key_prefix,
                min(max(wanted, 1000), 10_000),
                cleanup,
                *topics,
            ]
            found, last = self.datastore.select(self.log_key, args)
            for i in range(0, len(found), 3):
                version, topic, state = _parse_member(found[i + 2])
                notifications.append(
                    Notification(
                        id=int(found[i]),
                        originator_id=self.datastore.originator_id(found[i + 1]),
                        originator_version=version,
                        topic=topic,
                        state=state,
                    )
                )
            if last < 0:
                break
            first = last + 1
        return notifications

    def max_notification_id(self) -> int | None:
        value = self.datastore.read(lambda client: client.get(self.sequence_key))
        return int(cast(bytes, value)) if value is not None else None

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return RedisSubscription(recorder=self, gt=gt, topics=topics)


class RedisSubscription(ListenNotifySubscription[RedisApplicationRecorder]):
    """Yields notifications after ``gt``, then blocks until more are recorded.

    A thread waits on the log with ``XREAD BLOCK`` and wakes the reader, which reads the new
    notifications with ``select_notifications``, so topics and expiry are handled as there.
    """

    def __init__(
        self,
        recorder: RedisApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        # Listen from before the first read, so nothing recorded in between goes unnoticed.
        self._listen_from = f"{recorder.max_notification_id() or 0}-0"
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._listen_thread = threading.Thread(target=self._listen, daemon=True)
        self._listen_thread.start()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._listen_thread.join()

    def _listen(self) -> None:
        store = self._recorder.datastore
        block_ms = max(1, int(min(_SUBSCRIBE_BLOCK_SECONDS, store.socket_timeout / 2) * 1000))
        try:
            while not self._has_been_stopped and self._thread_error is None:
                response = store.read(
                    lambda client: client.xread(
                        {self._recorder.log_key: self._listen_from}, count=1000, block=block_ms
                    )
                )
                for _stream, entries in cast(
                    list[tuple[bytes, list[tuple[bytes, Any]]]], response or []
                ):
                    if entries:
                        last_id = entries[-1][0]
                        self._listen_from = (
                            last_id.decode() if isinstance(last_id, bytes) else str(last_id)
                        )
                        self._has_been_notified.set()
        except BaseException as error:  # noqa: BLE001 - handed to the reader, which raises it
            if self._thread_error is None:
                self._thread_error = error
            self.stop()


class RedisTrackingRecorder(RedisRecorder, TrackingRecorder):
    """Records, per upstream application, the highest notification id processed (a hash field).

    A tracking id not above the recorded one raises ``IntegrityError``.
    """

    def insert_tracking(self, tracking: Tracking) -> None:
        self._insert([], notify=False, tracking=tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        value = self.datastore.read(lambda client: client.hget(self.tracking_key, application_name))
        return int(cast(bytes, value)) if value is not None else None


class RedisProcessRecorder(RedisTrackingRecorder, RedisApplicationRecorder, ProcessRecorder):
    """Records events, their notifications and the tracking record in one atomic script."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        tracking: Tracking | None = kwargs.get("tracking")
        if not stored_events and tracking is None:
            return []
        return self._insert(stored_events, notify=True, tracking=tracking)


class RedisFactory(InfrastructureFactory[RedisTrackingRecorder]):
    """Builds the Redis recorders of one application from its eventsourcing environment.

    Keys are namespaced ``<REDIS_KEY_PREFIX>{<application name>}:``, one hash slot per
    application, and the connections carry that namespace as their client name. Settings
    (each also read with the application's name as a prefix, as eventsourcing does):
    ``REDIS_URL``, ``REDIS_KEY_PREFIX``, ``REDIS_SOCKET_TIMEOUT``,
    ``REDIS_SOCKET_CONNECT_TIMEOUT``, ``REDIS_MAX_CONNECTIONS``, ``REDIS_RETRIES``,
    ``REDIS_AGGREGATE_TTL_SECONDS``, ``ORIGINATOR_ID_TYPE`` and ``CREATE_TABLE`` (``n``
    skips the check, when a recorder is built, that the server answers and is recent enough).

    >>> factory = RedisFactory({"REDIS_KEY_PREFIX": "shop:"})
    >>> factory.namespace
    'shop:{eventsourcing}'
    >>> factory.close()
    """

    REDIS_URL = "REDIS_URL"
    REDIS_KEY_PREFIX = "REDIS_KEY_PREFIX"
    REDIS_SOCKET_TIMEOUT = "REDIS_SOCKET_TIMEOUT"
    REDIS_SOCKET_CONNECT_TIMEOUT = "REDIS_SOCKET_CONNECT_TIMEOUT"
    REDIS_MAX_CONNECTIONS = "REDIS_MAX_CONNECTIONS"
    REDIS_RETRIES = "REDIS_RETRIES"
    REDIS_AGGREGATE_TTL_SECONDS = "REDIS_AGGREGATE_TTL_SECONDS"
    ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"
    CREATE_TABLE = "CREATE_TABLE"

    aggregate_recorder_class = RedisAggregateRecorder
    application_recorder_class = RedisApplicationRecorder
    tracking_recorder_class = RedisTrackingRecorder
    process_recorder_class = RedisProcessRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        prefix = self.env.get(self.REDIS_KEY_PREFIX, "eventsourcing:")
        if any(c in prefix for c in "{} \t\r\n"):
            msg = f"{self.REDIS_KEY_PREFIX} must not contain braces or spaces: {prefix!r}"
            raise OSError(msg)
        self.namespace = f"{prefix}{{{self.env.name.lower() or 'eventsourcing'}}}"
        originator_id_type = self.env.get(self.ORIGINATOR_ID_TYPE, "uuid").lower()
        if originator_id_type not in ("uuid", "text"):
            msg = f"{self.ORIGINATOR_ID_TYPE} must be 'uuid' or 'text': {originator_id_type!r}"
            raise OSError(msg)
        ttl = self._number(self.REDIS_AGGREGATE_TTL_SECONDS, None)
        url = self.env.get(self.REDIS_URL, "redis://127.0.0.1:6379/0")
        try:
            self.datastore = RedisDatastore(
                url,
                socket_timeout=self._number(self.REDIS_SOCKET_TIMEOUT, 5.0),
                socket_connect_timeout=self._number(self.REDIS_SOCKET_CONNECT_TIMEOUT, 5.0),
                max_connections=int(self._number(self.REDIS_MAX_CONNECTIONS, 32)),
                retries=int(self._number(self.REDIS_RETRIES, 2)),
                aggregate_ttl_seconds=ttl,
                originator_id_type=cast(Literal["uuid", "text"], originator_id_type),
                client_name=self.namespace,
            )
        except ValueError as error:
            msg = (
                f"invalid Redis settings for {self.env.name or 'the application'}: {error} "
                f"(check {self.REDIS_URL}, {self.REDIS_SOCKET_TIMEOUT}, "
                f"{self.REDIS_MAX_CONNECTIONS})"
            )
            raise OSError(msg) from None

    def _number(self, key: str, default: T) -> float | T:
        text = (self.env.get(key) or "").strip()
        if not text:
            return default
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not value >= 0 or value == float("inf"):
            msg = f"{key} must be a non-negative number: {text!r}"
            raise OSError(msg)
        return value

    def _checked(self, recorder: T) -> T:
        if strtobool(self.env.get(self.CREATE_TABLE) or "yes"):
            self.datastore.check_server()
        return recorder

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return self._checked(
            self.aggregate_recorder_class(self.datastore, self.namespace, purpose=purpose)
        )

    def application_recorder(self) -> ApplicationRecorder:
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        cls: type[RedisApplicationRecorder] = (
            resolve_topic(topic) if topic else self.application_recorder_class
        )
        return self._checked(cls(self.datastore, self.namespace))

    def tracking_recorder(
        self, tracking_recorder_class: type[RedisTrackingRecorder] | None = None
    ) -> RedisTrackingRecorder:
        cls = tracking_recorder_class
        if cls is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            cls = resolve_topic(topic) if topic else self.tracking_recorder_class
        if not issubclass(cls, RedisTrackingRecorder):
            msg = f"{cls!r} is not a RedisTrackingRecorder"
            raise ProgrammingError(msg)
        return self._checked(cls(self.datastore, self.namespace))

    def process_recorder(self) -> ProcessRecorder:
        topic = self.env.get(self.PROCESS_RECORDER_TOPIC)
        cls: type[RedisProcessRecorder] = (
            resolve_topic(topic) if topic else self.process_recorder_class
        )
        return self._checked(cls(self.datastore, self.namespace))

    def close(self) -> None:
        self.datastore.close()
