"""Lifecycles as explicit tables, checked by the ``transitions`` library.

``transitions`` attaches trigger methods to a model at run time, where a type
checker cannot see them, and an event-sourced aggregate is rebuilt from its events
rather than driven by a machine. So the machine is kept as a table behind one small
typed function: the aggregate asks :meth:`StateTable.next_state` before it records
an event, and the event, not the machine, changes the state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Generic, TypeVar

from transitions import Machine

from suuupra_commerce.errors import IllegalTransitionError

__all__ = ["StateTable"]

S = TypeVar("S", bound=StrEnum)


class StateTable(Generic[S]):
    """One lifecycle: its states, its initial state and its allowed moves.

    A move is ``(trigger, sources, target)``; a target of ``None`` allows the trigger
    from its sources without changing the state (an internal transition).

    >>> from enum import StrEnum
    >>> class Light(StrEnum):
    ...     OFF = "off"
    ...     ON = "on"
    >>> table = StateTable("light", Light, Light.OFF, [("switch_on", [Light.OFF], Light.ON)])
    >>> table.next_state(Light.OFF, "switch_on")
    <Light.ON: 'on'>
    """

    def __init__(
        self,
        entity: str,
        states: type[S],
        initial: S,
        moves: Iterable[tuple[str, Sequence[S], S | None]],
    ) -> None:
        self.entity = entity
        self.states = states
        self.initial = initial
        self.moves = tuple((trigger, tuple(sources), dest) for trigger, sources, dest in moves)
        self._machine = Machine(
            model=None,
            states=[s.value for s in states],
            transitions=[
                {
                    "trigger": t,
                    "source": [s.value for s in sources],
                    "dest": None if d is None else d.value,
                }
                for t, sources, d in self.moves
            ],
            initial=initial.value,
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )
        for trigger, sources, _ in self.moves:
            for source in sources:
                if len(self._machine.get_transitions(trigger, source.value)) != 1:
                    msg = f"{entity}: {trigger!r} from {source!r} must have exactly one target"
                    raise ValueError(msg)

    def next_state(self, current: S, trigger: str) -> S:
        """The state ``trigger`` leads to from ``current``; ``IllegalTransitionError`` if none."""
        found = self._machine.get_transitions(trigger, current.value)
        if not found:
            raise IllegalTransitionError(self.entity, current.value, trigger.replace("_", " "))
        dest = found[0].dest
        return current if dest is None else self.states(dest)

    def can(self, current: S, trigger: str) -> bool:
        """Whether ``trigger`` is allowed from ``current``."""
        return bool(self._machine.get_transitions(trigger, current.value))

    def triggers(self, current: S) -> list[str]:
        """The triggers allowed from ``current``, in table order."""
        allowed = set(self._machine.get_triggers(current.value))
        return [t for t, sources, _ in self.moves if t in allowed and current in sources]

    def to_mermaid(self) -> str:
        """The table as a Mermaid state diagram."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial.value}"]
        for trigger, sources, dest in self.moves:
            lines.extend(
                f"    {s.value} --> {(s if dest is None else dest).value}: {trigger}"
                for s in sources
            )
        return "\n".join(lines) + "\n"
