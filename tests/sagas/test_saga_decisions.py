"""The saga aggregate's decisions, as pure functions of state, message, definition and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from suuupra_commerce.errors import IllegalTransitionError, InvalidInputError
from suuupra_commerce.sagas.definition import SagaDefinition, Step, StepRetry
from suuupra_commerce.sagas.domain import (
    Phase,
    Reply,
    Saga,
    SagaStatus,
    StepKey,
    check_json_plain,
)
from suuupra_commerce.testing import replay, state_of

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TEN = timedelta(seconds=10)
FINAL = ("ValueError",)

DEMO = SagaDefinition(
    "demo",
    1,
    (
        Step(
            "a",
            "p.a",
            "p.undo_a",
            retry=StepRetry(max_attempts=3, non_retryable=FINAL),
            timeout=TEN,
        ),
        Step(
            "b",
            "p.b",
            "p.undo_b",
            retry=StepRetry(max_attempts=3, non_retryable=FINAL),
            timeout=TEN,
        ),
        Step("n", "p.n", retry=StepRetry(max_attempts=3, non_retryable=FINAL), timeout=TEN),
        Step(
            "c",
            "p.c",
            pivot=True,
            retry=StepRetry(max_attempts=2, non_retryable=FINAL),
            timeout=TEN,
        ),
        Step("d", "p.d", retry=StepRetry(max_attempts=2), timeout=TEN),
    ),
)


class Run:
    """A saga driven by hand, keeping every event it records."""

    def __init__(self) -> None:
        self.now = NOW
        self.saga = Saga.start(
            saga_id=UUID(int=1),
            definition=DEMO,
            data={"order": "o-1"},
            subject="o-1",
            correlation_id="req-1",
            now=self.now,
        )
        self.log: list[Any] = []
        self.drain()

    def drain(self) -> list[str]:
        new = list(self.saga.collect_events())
        self.log.extend(new)
        return [type(e).__name__ for e in new]

    def status(self) -> SagaStatus:
        return self.saga.status

    @property
    def key(self) -> StepKey:
        assert self.saga.outstanding is not None
        return StepKey.parse(self.saga.outstanding)

    def ok(self, **result: Any) -> str:
        return self.reply(Reply.success(self.key, result))

    def fail(self, error: Exception) -> str:
        return self.reply(Reply.failure(self.key, error))

    def reply(self, reply: Reply) -> str:
        disposition = self.saga.receive(reply, DEMO, self.now)
        self.drain()
        return disposition

    def wait(self, by: timedelta) -> bool:
        self.now += by
        timer = self.saga.timer
        fired = timer is not None and self.saga.fire_timer(timer.token, DEMO, self.now)
        self.drain()
        return fired

    def sent(self) -> list[tuple[str, str, int, int]]:
        """(phase, step, attempt, delivery) of every command sent, in order."""
        return [
            (
                "undo" if isinstance(e, Saga.CompensationDispatched) else "do",
                e.step,
                e.attempt,
                e.delivery,
            )
            for e in self.log
            if isinstance(e, Saga.StepDispatched | Saga.CompensationDispatched)
        ]

    def check_replay(self) -> None:
        assert state_of(replay(self.log)) == state_of(self.saga)


def test_first_step_is_sent_with_its_deadline_when_a_saga_starts() -> None:
    run = Run()
    assert run.sent() == [("do", "a", 1, 1)]
    assert str(run.key) == f"{UUID(int=1)}/a/1"
    assert run.saga.timer is not None
    assert run.saga.timer.due == NOW + TEN
    run.check_replay()


def test_saga_completes_when_every_step_succeeds() -> None:
    run = Run()
    for _ in DEMO.steps:
        assert run.ok(done=True) == "applied"
    assert run.status() is SagaStatus.COMPLETED
    assert [s for _, s, _, _ in run.sent()] == ["a", "b", "n", "c", "d"]
    assert run.saga.results["c"] == {"done": True}
    assert run.saga.timer is None
    run.check_replay()


def test_retryable_failure_waits_then_sends_a_new_attempt_under_a_new_key() -> None:
    run = Run()
    run.fail(ConnectionError("down"))
    assert run.saga.timer is not None
    assert run.saga.timer.kind == "retry"
    assert not run.wait(timedelta(milliseconds=999)), "the back-off is one second"
    assert run.wait(timedelta(milliseconds=1))
    assert run.sent() == [("do", "a", 1, 1), ("do", "a", 2, 1)]
    assert run.key.attempt == 2
    run.check_replay()


def test_compensation_undoes_exactly_the_steps_that_took_effect_newest_first() -> None:
    run = Run()
    run.ok()  # a
    run.ok()  # b
    run.ok()  # n (nothing to undo)
    assert run.fail(ValueError("refused")) == "applied"  # the pivot c fails for good
    assert run.status() is SagaStatus.COMPENSATING
    run.ok()  # undo b
    run.ok()  # undo a
    assert run.status() is SagaStatus.COMPENSATED
    assert run.sent()[-2:] == [("undo", "b", 1, 1), ("undo", "a", 1, 1)]
    assert run.saga.compensated == ["b", "a"]
    run.check_replay()


def test_failed_step_and_steps_never_sent_are_not_compensated() -> None:
    run = Run()
    run.ok()  # a
    run.fail(ValueError("refused"))  # b fails for good: it did not take effect
    run.ok()  # undo a
    assert run.status() is SagaStatus.COMPENSATED
    assert [c for c in run.sent() if c[0] == "undo"] == [("undo", "a", 1, 1)]
    run.check_replay()


def test_step_that_times_out_before_the_pivot_is_compensated_as_possibly_done() -> None:
    run = Run()
    run.ok()  # a
    assert run.wait(TEN)  # b: no answer
    assert run.status() is SagaStatus.COMPENSATING
    assert [c for c in run.sent() if c[0] == "undo"] == [("undo", "b", 1, 1)]
    forward_b = f"{UUID(int=1)}/b/1"
    assert run.saga.effects["b"] == forward_b
    run.ok()
    run.ok()
    assert run.status() is SagaStatus.COMPENSATED
    run.check_replay()


def test_pivot_that_times_out_is_sent_again_under_the_same_key_then_gets_stuck() -> None:
    run = Run()
    for _ in range(3):
        run.ok()  # a, b, n
    assert run.wait(TEN)  # c times out: it may have captured
    assert run.sent()[-1] == ("do", "c", 1, 2), "same attempt, second delivery"
    assert run.wait(TEN)
    assert run.status() is SagaStatus.STUCK
    assert "timed out 2 time(s)" in run.saga.stuck_reason
    assert not [c for c in run.sent() if c[0] == "undo"], "never compensated after the pivot"
    run.check_replay()


def test_failure_after_the_pivot_is_retried_and_never_compensated() -> None:
    run = Run()
    for _ in range(4):
        run.ok()  # a, b, n, c
    run.fail(ConnectionError("carrier down"))
    assert run.wait(timedelta(seconds=1))
    run.fail(ConnectionError("carrier down"))
    assert run.status() is SagaStatus.STUCK
    assert not [c for c in run.sent() if c[0] == "undo"]
    run.check_replay()


def test_compensation_that_keeps_failing_parks_the_saga_as_stuck_with_the_reason() -> None:
    run = Run()
    run.ok()  # a
    run.fail(ValueError("refused"))  # b
    for _ in range(10):
        run.fail(ConnectionError("still down"))
        run.wait(timedelta(minutes=1))
    assert run.status() is SagaStatus.STUCK
    assert run.saga.stuck_reason.startswith("undoing a failed after 10 send(s)")
    run.check_replay()


def test_duplicate_reply_changes_nothing_and_records_nothing() -> None:
    run = Run()
    reply = Reply.success(run.key)
    run.reply(reply)
    version = run.saga.version
    assert run.reply(reply) == "duplicate"
    assert run.saga.version == version
    run.check_replay()


def test_late_reply_is_recorded_once_and_moves_nothing() -> None:
    run = Run()
    late = run.key
    run.wait(TEN)  # a times out; compensation of a is sent
    undo = run.key
    assert run.reply(Reply.success(late)) == "late"
    assert run.reply(Reply.success(late)) == "duplicate"
    assert run.key == undo
    assert run.status() is SagaStatus.COMPENSATING
    run.check_replay()


def test_early_reply_is_kept_and_applied_when_its_command_is_sent() -> None:
    run = Run()
    early = StepKey(UUID(int=1), "b", Phase.FORWARD, 1)
    assert run.reply(Reply.success(early, {"from": "webhook"})) == "early"
    assert run.saga.outstanding == str(StepKey(UUID(int=1), "a", Phase.FORWARD, 1))
    run.ok()  # a: b is sent, and its early reply applies at once
    assert run.key.step == "n"
    assert run.saga.results["b"] == {"from": "webhook"}
    # Each command carries the results as they were when it was sent: b's own result came
    # after b was sent, and the saga's later results never reach an event made before them.
    sent = {e.step: e.payload["results"] for e in run.log if isinstance(e, Saga.StepDispatched)}
    assert sent["b"] == {"a": {}}
    assert sent["n"] == {"a": {}, "b": {"from": "webhook"}}
    run.check_replay()


def test_stale_timer_does_nothing_after_its_reply_arrived() -> None:
    run = Run()
    timer = run.saga.timer
    assert timer is not None
    run.ok()
    version = run.saga.version
    assert not run.saga.fire_timer(timer.token, DEMO, NOW + timedelta(hours=1))
    assert run.saga.version == version


def test_stale_timer_does_nothing_once_the_saga_has_ended() -> None:
    run = Run()
    tokens = []
    for _ in DEMO.steps:
        assert run.saga.timer is not None
        tokens.append(run.saga.timer.token)
        run.ok()
    for token in tokens:
        assert not run.saga.fire_timer(token, DEMO, NOW + timedelta(days=1))
    assert not run.drain()


def test_timer_does_nothing_before_it_is_due() -> None:
    run = Run()
    assert not run.wait(TEN - timedelta(microseconds=1))
    assert run.wait(timedelta(microseconds=1))


def test_operator_retry_sends_a_new_attempt_with_a_fresh_budget() -> None:
    run = Run()
    for _ in range(4):
        run.ok()
    run.fail(ConnectionError("down"))
    run.wait(timedelta(seconds=1))
    run.fail(ConnectionError("down"))
    assert run.status() is SagaStatus.STUCK
    run.saga.retry_step(DEMO, "ops-ann", "carrier is back", run.now)
    run.drain()
    assert run.status() is SagaStatus.RUNNING
    assert run.key.attempt == 3
    run.ok()
    assert run.status() is SagaStatus.COMPLETED
    acted = [e for e in run.log if isinstance(e, Saga.OperatorActed)]
    assert [(e.action, e.by, e.reason) for e in acted] == [("retry", "ops-ann", "carrier is back")]
    run.check_replay()


def test_operator_skip_counts_the_stuck_step_as_done() -> None:
    run = Run()
    for _ in range(4):
        run.ok()
    run.fail(ConnectionError("no such address"))
    run.wait(timedelta(seconds=1))
    run.fail(ConnectionError("no such address"))
    assert run.status() is SagaStatus.STUCK
    run.saga.skip_step(DEMO, "ops-ann", "shipped by hand", run.now)
    run.drain()
    assert run.status() is SagaStatus.COMPLETED
    assert run.saga.results["d"] == {"skipped_by": "ops-ann"}
    run.check_replay()


def test_forced_compensation_undoes_the_awaited_step_too() -> None:
    run = Run()
    run.ok()  # a; b is out
    run.saga.force_compensation(DEMO, "customer", "changed mind", run.now)
    run.drain()
    assert [c for c in run.sent() if c[0] == "undo"] == [("undo", "b", 1, 1)]
    run.ok()
    run.ok()
    assert run.status() is SagaStatus.COMPENSATED
    run.check_replay()


@pytest.mark.parametrize("answered", [3, 4])
def test_forced_compensation_is_refused_once_the_pivot_may_have_taken_effect(
    answered: int,
) -> None:
    run = Run()
    for _ in range(answered):
        run.ok()  # 3: the pivot is out; 4: it succeeded
    with pytest.raises(IllegalTransitionError, match="pivot"):
        run.saga.force_compensation(DEMO, "customer", "changed mind", run.now)
    assert not run.drain()


def test_operator_resolves_a_stuck_saga_as_compensated() -> None:
    run = Run()
    run.ok()
    run.fail(ValueError("refused"))
    for _ in range(10):
        run.fail(ConnectionError("down"))
        run.wait(timedelta(minutes=1))
    run.saga.resolve(SagaStatus.COMPENSATED, "ops-ann", "voided at the bank by phone")
    run.drain()
    assert run.status() is SagaStatus.COMPENSATED
    run.check_replay()


@pytest.mark.parametrize("action", ["retry_step", "skip_step"])
def test_operator_actions_are_refused_unless_the_saga_is_stuck(action: str) -> None:
    run = Run()
    with pytest.raises(IllegalTransitionError):
        getattr(run.saga, action)(DEMO, "ops-ann", "why not", run.now)
    with pytest.raises(IllegalTransitionError):
        run.saga.resolve(SagaStatus.COMPLETED, "ops-ann", "why not")


def test_operator_action_is_refused_when_who_or_why_is_missing() -> None:
    run = Run()
    with pytest.raises(InvalidInputError):
        run.saga.force_compensation(DEMO, "", "reason", run.now)
    with pytest.raises(InvalidInputError):
        run.saga.force_compensation(DEMO, "ops", "\x00", run.now)


def test_saga_refuses_a_definition_it_did_not_start_on() -> None:
    run = Run()
    other = SagaDefinition("demo", 2, DEMO.steps)
    with pytest.raises(InvalidInputError, match="v1"):
        run.saga.receive(Reply.success(run.key), other, NOW)


def test_reply_for_another_saga_is_refused() -> None:
    run = Run()
    with pytest.raises(InvalidInputError):
        run.reply(Reply.success(StepKey(UUID(int=2), "a", Phase.FORWARD, 1)))


@pytest.mark.parametrize(
    "data",
    [{"amount": 9.5}, {"bad": float("nan")}, {1: "x"}, {"s": "a\x00b"}, {"deep": [[[[]]]] * 1}],
)
def test_saga_data_must_be_json_plain_without_floats(data: dict[Any, Any]) -> None:
    if data == {"deep": [[[[]]]]}:
        check_json_plain(data)  # nesting is fine within limits
        return
    with pytest.raises(InvalidInputError):
        check_json_plain(data)


@pytest.mark.parametrize(
    "text", ["", "x/y", "not-a-uuid/a/1", f"{UUID(int=1)}/a/0", f"{UUID(int=1)}/a/undo/x"]
)
def test_step_key_is_refused_when_malformed(text: str) -> None:
    with pytest.raises(InvalidInputError):
        StepKey.parse(text)


def test_stuck_saga_resumes_when_the_answer_it_lacked_finally_arrives() -> None:
    run = Run()
    for _ in range(3):
        run.ok()  # a, b, n
    lost = run.key  # the pivot c: no answer, twice
    run.wait(TEN)
    run.wait(TEN)
    assert run.status() is SagaStatus.STUCK
    assert run.reply(Reply.success(lost, {"capture": "cap-1"})) == "applied"
    assert run.status() is SagaStatus.RUNNING
    assert run.key.step == "d"
    run.ok()
    assert run.status() is SagaStatus.COMPLETED
    run.check_replay()


def test_early_replies_beyond_the_cap_are_ignored() -> None:
    run = Run()
    for attempt in range(1, 20):
        run.reply(Reply.success(StepKey(UUID(int=1), "b", Phase.FORWARD, attempt)))
    assert len(run.saga.early) == 16
    run.check_replay()
