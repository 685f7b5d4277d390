"""Saga definitions: ordered steps with their compensations, retry policies, timeouts and pivot.

A definition is data, not code: each step names the *action* a participant performs
(``"payments.authorize"``) and, optionally, the action that undoes it. The engine looks
the actions up in its participant registry, so a definition can be drawn, versioned and
checked without importing any participant::

    FULFILMENT = SagaDefinition(
        name="order_fulfilment",
        version=1,
        steps=(
            Step("reserve_stock", action="inventory.reserve", compensation="orders.reject"),
            Step("authorize_payment", action="payments.authorize",
                 compensation="payments.void",
                 retry=StepRetry(non_retryable=("PaymentDeclinedError",))),
            Step("capture_payment", action="payments.capture", pivot=True),
            Step("notify_customer", action="notifier.order_confirmed"),
        ),
    )

Once the **pivot** step has succeeded (or may have), the saga only moves forward:
steps are retried, never compensated. Steps before the pivot may be compensated; the
pivot and the steps after it may not have compensations at all.

A running saga keeps the version it started with: register a new version next to the
old one, and the old instances finish on the old steps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from suuupra_commerce.errors import SagaConfigurationError, UnknownSagaDefinitionError

__all__ = ["SagaDefinition", "SagaRegistry", "Step", "StepRetry"]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


@dataclass(frozen=True, slots=True)
class StepRetry:
    """How a step is retried after a failure worth retrying.

    The wait before attempt ``n + 1`` is ``initial_interval * backoff_coefficient ** (n - 1)``,
    capped at ``max_interval``; no jitter, so a saga's schedule is reproducible. After
    ``max_attempts`` sends in all (timeouts included), or at once for an error whose type
    (or one of its base classes) is named in ``non_retryable``, the step has failed.

    >>> retry = StepRetry(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0)
    >>> print(*(retry.delay(n) for n in (1, 2, 3)), sep=", ")
    0:00:01, 0:00:02, 0:00:04
    """

    initial_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = 2.0
    max_interval: timedelta = timedelta(minutes=1)
    max_attempts: int = 5
    non_retryable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_attempts > 1000:
            raise SagaConfigurationError("max_attempts must be between 1 and 1000")
        if self.initial_interval < timedelta(0) or self.max_interval < self.initial_interval:
            raise SagaConfigurationError("need 0 <= initial_interval <= max_interval")
        if not 1.0 <= self.backoff_coefficient <= 100.0:
            raise SagaConfigurationError("backoff_coefficient must be between 1 and 100")
        for name in self.non_retryable:
            if not name.isidentifier():
                raise SagaConfigurationError(f"non_retryable names error types: {name!r}")

    def delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1-based) before the next."""
        seconds = self.initial_interval.total_seconds() * self.backoff_coefficient ** (attempt - 1)
        return min(self.max_interval, timedelta(seconds=seconds))

    def is_retryable(self, error_types: Sequence[str]) -> bool:
        """Whether an error of these types (its class and base classes, by name) may be retried."""
        return not set(error_types) & set(self.non_retryable)


@dataclass(frozen=True, slots=True)
class Step:
    """One step: the action a participant performs, and how to undo it.

    ``timeout`` bounds the wait for a reply. A step that times out may have taken
    effect: before the pivot the saga compensates it (and the steps before it); at or
    after the pivot it sends the same command again, under the same idempotency key.
    """

    name: str
    action: str
    compensation: str | None = None
    retry: StepRetry = field(default_factory=StepRetry)
    timeout: timedelta = timedelta(seconds=30)
    pivot: bool = False
    compensation_retry: StepRetry = field(default_factory=lambda: StepRetry(max_attempts=10))
    compensation_timeout: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise SagaConfigurationError(f"step names are lower_snake_case: {self.name!r}")
        for action in (self.action, self.compensation):
            if action is not None and not _ACTION.fullmatch(action):
                raise SagaConfigurationError(f"actions are dotted lower_snake_case: {action!r}")
        for timeout in (self.timeout, self.compensation_timeout):
            if not timedelta(0) < timeout <= timedelta(days=30):
                raise SagaConfigurationError("a timeout must be positive and at most 30 days")
        if self.pivot and self.compensation is not None:
            raise SagaConfigurationError(f"the pivot step {self.name!r} cannot be compensated")


@dataclass(frozen=True, slots=True)
class SagaDefinition:
    """A named, versioned sequence of steps; at most one of them is the pivot."""

    name: str
    version: int
    steps: tuple[Step, ...]
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise SagaConfigurationError(f"saga names are lower_snake_case: {self.name!r}")
        if not 1 <= self.version <= 1_000_000:
            raise SagaConfigurationError("a definition's version is a positive integer")
        if not self.steps:
            raise SagaConfigurationError(f"saga {self.name!r} has no steps")
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names):
            raise SagaConfigurationError(f"saga {self.name!r} repeats a step name")
        pivots = [i for i, step in enumerate(self.steps) if step.pivot]
        if len(pivots) > 1:
            raise SagaConfigurationError(f"saga {self.name!r} has more than one pivot")
        if pivots:
            late = [s.name for s in self.steps[pivots[0] :] if s.compensation is not None]
            if late:
                msg = f"saga {self.name!r}: steps at or after the pivot cannot compensate: {late}"
                raise SagaConfigurationError(msg)

    @property
    def key(self) -> tuple[str, int]:
        """``(name, version)``: how the registry and the saga's events name this definition."""
        return (self.name, self.version)

    @property
    def pivot_index(self) -> int | None:
        """Index of the pivot step, if there is one."""
        return next((i for i, step in enumerate(self.steps) if step.pivot), None)

    def index(self, step: str) -> int:
        """Position of the named step; ``SagaConfigurationError`` if there is none."""
        for i, candidate in enumerate(self.steps):
            if candidate.name == step:
                return i
        raise SagaConfigurationError(f"saga {self.name!r} v{self.version} has no step {step!r}")

    def actions(self) -> set[str]:
        """Every action the steps and compensations use."""
        found = {step.action for step in self.steps}
        found.update(step.compensation for step in self.steps if step.compensation is not None)
        return found

    def to_mermaid(self) -> str:
        """The definition as a Mermaid flowchart: steps forward, compensations back.

        >>> print(SagaDefinition("demo", 1, (Step("a", "x.do", "x.undo"), Step("b", "y.do",
        ...     pivot=True))).to_mermaid())
        flowchart LR
            start((start)) --> s0
            s0["a<br/>x.do"] --> s1
            s1{{"b (pivot)<br/>y.do"}} --> completed((COMPLETED))
            c0["undo a<br/>x.undo"] -.-> compensated((COMPENSATED))
            s0 -. fails .-> c0
            s1 -. fails .-> c0
        <BLANKLINE>
        """
        lines = ["flowchart LR", "    start((start)) --> s0"]
        for i, step in enumerate(self.steps):
            label = (
                f"{step.name} (pivot)<br/>{step.action}"
                if step.pivot
                else (f"{step.name}<br/>{step.action}")
            )
            node = f'{{{{"{label}"}}}}' if step.pivot else f'["{label}"]'
            following = f"s{i + 1}" if i + 1 < len(self.steps) else "completed((COMPLETED))"
            lines.append(f"    s{i}{node} --> {following}")
        compensable = [i for i, step in enumerate(self.steps) if step.compensation is not None]
        chain = list(reversed(compensable))
        for n, i in enumerate(chain):
            step = self.steps[i]
            following = f"c{chain[n + 1]}" if n + 1 < len(chain) else "compensated((COMPENSATED))"
            lines.append(f'    c{i}["undo {step.name}<br/>{step.compensation}"] -.-> {following}')
        pivot = self.pivot_index
        last = len(self.steps) - 1 if pivot is None else pivot
        for i in range(last + 1):
            # A failure at step i undoes the compensable steps up to it (step i itself when it
            # may have taken effect), the nearest first.
            nearest = [c for c in compensable if c <= i]
            target = f"c{nearest[-1]}" if nearest else "compensated((COMPENSATED))"
            lines.append(f"    s{i} -. fails .-> {target}")
        return "\n".join(lines) + "\n"


class SagaRegistry:
    """The definitions an engine knows, by name and version; several versions may coexist.

    >>> registry = SagaRegistry([SagaDefinition("demo", 1, (Step("a", "x.do"),))])
    >>> registry.latest("demo").version
    1
    """

    def __init__(self, definitions: Iterable[SagaDefinition] = ()) -> None:
        self._definitions: dict[tuple[str, int], SagaDefinition] = {}
        for definition in definitions:
            self.register(definition)

    def register(self, definition: SagaDefinition) -> None:
        """Add a definition; registering the same one twice is a no-op, another one refused."""
        existing = self._definitions.get(definition.key)
        if existing is not None and existing != definition:
            msg = f"saga {definition.name!r} v{definition.version} is registered differently"
            raise SagaConfigurationError(msg)
        self._definitions[definition.key] = definition

    def get(self, name: str, version: int) -> SagaDefinition:
        """The definition of this name and version; ``UnknownSagaDefinitionError`` if none."""
        try:
            return self._definitions[(name, version)]
        except KeyError:
            raise UnknownSagaDefinitionError(f"{name} v{version}") from None

    def latest(self, name: str) -> SagaDefinition:
        """The newest version of the named definition (what new sagas start on)."""
        versions = [v for (n, v) in self._definitions if n == name]
        if not versions:
            raise UnknownSagaDefinitionError(name)
        return self._definitions[(name, max(versions))]

    def __iter__(self) -> Iterator[SagaDefinition]:
        return iter(list(self._definitions.values()))

    def actions(self) -> set[str]:
        """Every action used by any registered definition."""
        found: set[str] = set()
        for definition in self._definitions.values():
            found |= definition.actions()
        return found
