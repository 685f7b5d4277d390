"""The message bus contract, run against every adapter: in memory, Redis Streams, PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest

from suuupra_commerce.errors import InvalidInputError
from suuupra_commerce.messaging import Consumer, DeliveryPolicy, Envelope, MessageBus

from .conftest import POLICY, BusFactory, envelope

IDLE = POLICY.redeliver_after + 0.05


def _drain(consumer: Consumer, rounds: int = 20) -> list[str]:
    """Receive and acknowledge until nothing comes; the message ids, in order."""
    ids: list[str] = []
    for _ in range(rounds):
        batch = consumer.receive(max_messages=50)
        if not batch:
            return ids
        ids.extend(d.envelope.id for d in batch)
        consumer.ack(*batch)
    return ids


def test_the_bus_is_a_message_bus_when_built(make_bus: BusFactory) -> None:
    bus = make_bus()
    assert isinstance(bus, MessageBus)
    assert isinstance(bus.consumer("orders", "billing", "c1"), Consumer)


def test_a_group_is_handed_each_message_once_when_it_acknowledges(make_bus: BusFactory) -> None:
    bus = make_bus()
    consumer = bus.consumer("orders", "billing", "c1")
    sent = [envelope(n=i) for i in range(5)]
    bus.publish("orders", *sent)

    batch = consumer.receive(max_messages=10)
    assert [d.envelope for d in batch] == sent
    assert {(d.topic, d.group, d.attempt) for d in batch} == {("orders", "billing", 1)}
    consumer.ack(*batch)
    time.sleep(IDLE)
    assert consumer.receive() == []


def test_every_group_is_handed_every_message_when_two_groups_read_a_topic(
    make_bus: BusFactory,
) -> None:
    bus = make_bus()
    billing = bus.consumer("orders", "billing", "c1")
    shipping = bus.consumer("orders", "shipping", "c1")
    sent = [envelope(n=i) for i in range(3)]
    bus.publish("orders", *sent)
    assert _drain(billing) == [e.id for e in sent]
    assert _drain(shipping) == [e.id for e in sent]


def test_members_of_a_group_share_the_messages_when_two_consumers_read(
    make_bus: BusFactory,
) -> None:
    bus = make_bus()
    one = bus.consumer("orders", "billing", "c1")
    two = bus.consumer("orders", "billing", "c2")
    sent = [envelope(n=i) for i in range(6)]
    bus.publish("orders", *sent)
    first = one.receive(max_messages=4)
    second = two.receive(max_messages=4)
    assert len(first) == 4
    assert len(second) == 2
    assert sorted(d.envelope.id for d in first + second) == sorted(e.id for e in sent)


def test_a_message_is_read_back_exactly_as_published(make_bus: BusFactory) -> None:
    bus = make_bus()
    consumer = bus.consumer("orders", "billing", "c1")
    sent = envelope(
        "order-7", total={"amount": "19.99", "currency": "USD"}, lines=[1, "two", None, True]
    ).published(envelope().occurred_at)
    bus.publish("orders", sent)
    [delivery] = consumer.receive()
    assert delivery.envelope == sent
    assert delivery.envelope.model_dump() == sent.model_dump()


def test_a_topics_messages_are_not_handed_to_another_topics_readers(make_bus: BusFactory) -> None:
    bus = make_bus()
    carts = bus.consumer("carts", "billing", "c1")
    bus.publish("orders", envelope())
    assert carts.receive() == []


def test_an_unacknowledged_message_comes_back_when_its_idle_time_has_passed(
    make_bus: BusFactory,
) -> None:
    bus = make_bus()
    consumer = bus.consumer("orders", "billing", "c1")
    sent = envelope()
    bus.publish("orders", sent)
    [first] = consumer.receive()
    assert consumer.receive() == []  # not yet idle long enough
    time.sleep(IDLE)
    [again] = consumer.receive()
    assert again.envelope == sent
    assert (first.attempt, again.attempt) == (1, 2)


def test_another_member_takes_over_when_a_consumer_dies_without_acknowledging(
    make_bus: BusFactory,
) -> None:
    bus = make_bus()
    doomed = bus.consumer("orders", "billing", "worker-1")
    survivor = bus.consumer("orders", "billing", "worker-2")
    sent = [envelope(n=i) for i in range(3)]
    bus.publish("orders", *sent)
    assert len(doomed.receive(max_messages=10)) == 3
    doomed.close()  # dies holding three deliveries

    assert survivor.receive() == []  # not idle long enough yet: the owner may still ack
    time.sleep(IDLE)
    taken = survivor.receive(max_messages=10)
    assert [d.envelope.id for d in taken] == [e.id for e in sent]
    assert {d.attempt for d in taken} == {2}
    survivor.ack(*taken)
    time.sleep(IDLE)
    assert survivor.receive() == []


def test_a_message_goes_to_the_dead_letters_when_delivered_max_times_unacknowledged(
    make_bus: BusFactory,
) -> None:
    bus = make_bus()
    consumer = bus.consumer("orders", "billing", "c1")
    poison, fine = envelope(), envelope()
    bus.publish("orders", poison)
    attempts = []
    for _ in range(POLICY.max_deliveries):
        [delivery] = consumer.receive()
        attempts.append(delivery.attempt)
        time.sleep(IDLE)
    bus.publish("orders", fine)

    assert [d.envelope.id for d in consumer.receive(max_messages=10)] == [fine.id]
    assert attempts == [1, 2]
    [dead] = bus.dead_letters("orders")
    assert (dead.group, dead.attempts, dead.reason) == ("billing", 2, "max deliveries")
    assert dead.envelope == poison
    time.sleep(IDLE)
    assert [d.envelope.id for d in consumer.receive()] == [fine.id]  # only the unacked one


def test_a_dead_letter_in_one_group_leaves_the_message_to_the_others(make_bus: BusFactory) -> None:
    bus = make_bus()
    failing = bus.consumer("orders", "billing", "c1")
    healthy = bus.consumer("orders", "shipping", "c1")
    sent = envelope()
    bus.publish("orders", sent)
    for _ in range(POLICY.max_deliveries):
        assert failing.receive()
        time.sleep(IDLE)
    assert failing.receive() == []
    assert _drain(healthy) == [sent.id]


def test_an_unreadable_message_goes_to_the_dead_letters_at_once(make_bus: BusFactory) -> None:
    bus = make_bus()
    consumer = bus.consumer("orders", "billing", "c1")
    bus.publish_raw("orders", '{"not": "an envelope"}')
    readable = envelope()
    bus.publish("orders", readable)
    assert [d.envelope.id for d in consumer.receive(max_messages=10)] == [readable.id]
    [dead] = bus.dead_letters("orders")
    assert dead.reason.startswith("unreadable")
    assert dead.body == '{"not": "an envelope"}'
    assert dead.envelope is None


def test_messages_of_one_key_arrive_in_publish_order_when_keys_interleave(
    make_bus: BusFactory,
) -> None:
    bus = make_bus()
    consumer = bus.consumer("orders", "billing", "c1")
    sent = [envelope(key=f"order-{i % 3}", seq=i) for i in range(30)]
    for start in range(0, 30, 7):  # several publishes, several batches
        bus.publish("orders", *sent[start : start + 7])
    received: list[Envelope] = []
    while batch := consumer.receive(max_messages=4):
        received.extend(d.envelope for d in batch)
        consumer.ack(*batch)
    for key in ("order-0", "order-1", "order-2"):
        seqs = [int(str(e.payload["seq"])) for e in received if e.key == key]
        assert seqs == sorted(seqs)
        assert len(seqs) == 10


def test_a_topic_keeps_its_newest_messages_when_it_outgrows_max_length(
    make_bus: BusFactory,
) -> None:
    bus = make_bus(DeliveryPolicy(redeliver_after=0.5, max_deliveries=2, max_length=20))
    sent = [envelope(n=i) for i in range(50)]
    for start in range(0, 50, 10):
        bus.publish("orders", *sent[start : start + 10])
    assert bus.length("orders") == 20
    consumer = bus.consumer("orders", "late", "c1")  # a new group starts at the oldest kept
    assert _drain(consumer) == [e.id for e in sent[-20:]]


def test_a_new_group_starts_at_the_oldest_message_still_kept(make_bus: BusFactory) -> None:
    bus = make_bus()
    early = [envelope(n=i) for i in range(3)]
    bus.publish("orders", *early)
    latecomer = bus.consumer("orders", "analytics", "c1")
    later = envelope()
    bus.publish("orders", later)
    assert _drain(latecomer) == [e.id for e in [*early, later]]


def test_receive_wakes_when_a_message_is_published_during_its_wait(make_bus: BusFactory) -> None:
    bus = make_bus()
    consumer = bus.consumer("orders", "billing", "c1")
    consumer.receive()  # connect and create the group before timing
    sent = envelope()
    publisher = threading.Timer(0.3, bus.publish, args=("orders", sent))
    started = time.monotonic()
    publisher.start()
    batch = consumer.receive(wait=4.0)
    waited = time.monotonic() - started
    publisher.join()
    assert [d.envelope.id for d in batch] == [sent.id]
    assert 0.25 <= waited < 2.0


def test_receive_gives_up_after_its_wait_when_nothing_is_published(make_bus: BusFactory) -> None:
    bus = make_bus()
    consumer = bus.consumer("orders", "billing", "c1")
    started = time.monotonic()
    assert consumer.receive(wait=0.3) == []
    assert 0.25 <= time.monotonic() - started < 2.0


def test_acknowledging_twice_is_a_no_op(make_bus: BusFactory) -> None:
    bus = make_bus()
    consumer = bus.consumer("orders", "billing", "c1")
    bus.publish("orders", envelope(), envelope())
    first, second = consumer.receive(max_messages=2)
    consumer.ack(first)
    consumer.ack(first)
    consumer.ack()
    time.sleep(IDLE)
    assert [d.envelope.id for d in consumer.receive()] == [second.envelope.id]


@pytest.mark.parametrize("name", ["", "Orders", "a b", "x" * 101, "orders:*", "ø"])
def test_a_badly_named_topic_or_group_is_refused(make_bus: BusFactory, name: str) -> None:
    bus = make_bus()
    with pytest.raises(InvalidInputError):
        bus.publish(name, envelope())
    with pytest.raises(InvalidInputError):
        bus.consumer("orders", name, "c1")


def test_only_envelopes_can_be_published(make_bus: BusFactory) -> None:
    bus = make_bus()
    with pytest.raises(InvalidInputError):
        bus.publish("orders", {"id": "m-1"})
