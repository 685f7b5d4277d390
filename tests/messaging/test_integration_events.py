"""Integration events: a schema for every published event, exact money, JSON round trips."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.adapters.memory_messaging import InMemoryMessageBus, InMemoryRelayPositions
from suuupra_commerce.carts.commands import AddItem, CheckoutCart, CreateCart
from suuupra_commerce.carts.domain import Cart
from suuupra_commerce.errors import InvalidMessageError
from suuupra_commerce.inventory.commands import RegisterItem
from suuupra_commerce.inventory.domain import InventoryItem
from suuupra_commerce.messaging import (
    DEFAULT_MAPPING,
    INTEGRATION_EVENTS,
    Envelope,
    MoneyAmount,
    OutboxRelay,
    decode,
    envelope_for,
)
from suuupra_commerce.messaging.events import (
    CART_TOPIC,
    INVENTORY_TOPIC,
    ORDER_TOPIC,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
)
from suuupra_commerce.messaging.mapping import INTERNAL_EVENTS
from suuupra_commerce.money import Money
from suuupra_commerce.orders.commands import (
    AuthorizePayment,
    CancelOrder,
    CapturePayment,
    CompleteOrder,
    ConfirmOrder,
    DeliverOrder,
    FailPayment,
    OrderLineRequest,
    PlaceOrder,
    ShipOrder,
    StartFulfilment,
)
from suuupra_commerce.orders.domain import Order
from suuupra_commerce.system import Commerce, Settings
from suuupra_commerce.testing import FakeClock
from suuupra_commerce.testing.strategies import identifiers, money

MOMENT = datetime(2025, 1, 1, tzinfo=UTC)


def _event_classes(aggregate: type[Aggregate]) -> set[type]:
    """The event classes written in the aggregate's body (not those eventsourcing adds)."""
    source = inspect.getsource(aggregate)
    return {
        value
        for name, value in vars(aggregate).items()
        if inspect.isclass(value)
        and issubclass(value, Aggregate.Event)
        and f"class {name}(" in source
    }


def test_every_internal_event_is_published_or_kept_internal_on_purpose() -> None:
    every = _event_classes(Order) | _event_classes(InventoryItem) | _event_classes(Cart)
    published = set(DEFAULT_MAPPING)
    assert published & INTERNAL_EVENTS == set()
    assert every == published | INTERNAL_EVENTS


def test_integration_schemas_are_registered_once_and_name_their_topic() -> None:
    assert len(INTEGRATION_EVENTS) == len({cls.event_type for cls in INTEGRATION_EVENTS.values()})
    for (event_type, version), cls in INTEGRATION_EVENTS.items():
        assert event_type.startswith("commerce.")
        assert version == cls.schema_version >= 1
        assert cls.topic in {ORDER_TOPIC, INVENTORY_TOPIC, CART_TOPIC}
        assert cls.__doc__, f"{cls.__name__} is not documented"
        assert cls.key_field in cls.model_fields


def _no_floats(schema: object) -> Iterator[object]:
    if isinstance(schema, dict):
        if schema.get("type") == "number":
            yield schema
        for value in schema.values():
            yield from _no_floats(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _no_floats(value)


@pytest.mark.parametrize("cls", INTEGRATION_EVENTS.values(), ids=lambda c: c.event_type)
def test_no_schema_has_a_float_field(cls: type) -> None:
    assert list(_no_floats(cls.model_json_schema())) == []  # type: ignore[attr-defined]


@pytest.fixture
def shop() -> Iterator[Commerce]:
    prices = InMemoryPriceBook()
    prices.set_price("MUG-1", "Mug", Money("9.50", "USD"))
    with Commerce(
        Settings.from_env({"COMMERCE_PERSISTENCE": "memory"}),
        price_book=prices,
        clock=FakeClock(MOMENT),
    ) as commerce:
        yield commerce


def _run_every_published_event(shop: Commerce) -> None:
    """Commands that, together, record every internal event that is published."""
    shop.inventory.register(
        RegisterItem(
            sku="MUG-1",
            product_id="mug",
            name="Mug",
            unit_price=Money("9.50", "USD"),
            initial_quantity=6,
            low_stock_threshold=4,
            reorder_point=2,
            reorder_quantity=20,
        )
    )
    cart = shop.carts.create(CreateCart(customer_id="alice", currency="USD"))
    shop.carts.add_item(AddItem(cart_id=cart, sku="MUG-1", quantity=2))
    shipped = shop.carts.checkout(CheckoutCart(cart_id=cart))
    shop.orders.authorize_payment(AuthorizePayment(order_id=shipped, reference="auth-1"))
    shop.orders.confirm(ConfirmOrder(order_id=shipped))
    shop.orders.capture_payment(CapturePayment(order_id=shipped))
    shop.orders.start_fulfilment(StartFulfilment(order_id=shipped))
    shop.orders.ship(ShipOrder(order_id=shipped, shipment_id="s-1", carrier="ups"))
    shop.orders.deliver(DeliverOrder(order_id=shipped))
    shop.orders.complete(CompleteOrder(order_id=shipped))

    def place(key: str) -> UUID:
        return shop.orders.place(
            PlaceOrder(
                idempotency_key=key,
                customer_id="bob",
                currency="USD",
                lines=[OrderLineRequest(sku="MUG-1", quantity=1)],
            )
        )

    cancelled = place("k-cancel")
    shop.orders.cancel(CancelOrder(order_id=cancelled))
    held = place("k-held")
    shop.orders.fail_payment(FailPayment(order_id=held, reason="card declined"))
    shop.orders.confirm(ConfirmOrder(order_id=held))
    shop.orders.start_fulfilment(StartFulfilment(order_id=held))
    shop.orders.cancel(CancelOrder(order_id=held))  # being fulfilled: needs approval
    place("k-expire")
    place("k-reorder")  # takes available to 2: the reorder point
    clock = shop.clock
    assert isinstance(clock, FakeClock)
    clock.advance(timedelta(hours=1))
    assert shop.inventory.expire_reservations() == 2  # k-expire's and k-reorder's


def _published(shop: Commerce) -> list[Envelope]:
    bus = InMemoryMessageBus()
    readers = {t: bus.consumer(t, "audit", "a") for t in (ORDER_TOPIC, INVENTORY_TOPIC, CART_TOPIC)}
    positions = InMemoryRelayPositions()
    for app in (shop.inventory, shop.orders, shop.carts):
        OutboxRelay(app, bus, positions).run_until_caught_up()
    return [d.envelope for r in readers.values() for d in r.receive(max_messages=1000)]


def test_every_published_internal_event_maps_to_a_registered_schema(shop: Commerce) -> None:
    _run_every_published_event(shop)
    envelopes = _published(shop)
    seen = {(e.type, e.schema_version) for e in envelopes}
    assert seen == set(INTEGRATION_EVENTS)
    for envelope in envelopes:
        event = decode(envelope)
        assert envelope.key == event.key
        assert envelope.payload == event.payload()


def test_every_published_event_survives_a_json_round_trip(shop: Commerce) -> None:
    _run_every_published_event(shop)
    for envelope in _published(shop):
        copy = Envelope.from_json(envelope.to_json())
        assert copy == envelope
        assert decode(copy) == decode(envelope)


def test_a_placed_order_carries_exact_prices_and_a_total_with_shipping(shop: Commerce) -> None:
    _run_every_published_event(shop)
    placed = [decode(e) for e in _published(shop) if e.type == OrderPlaced.event_type]
    first = placed[0]
    assert isinstance(first, OrderPlaced)
    assert first.customer_id == "alice"
    assert first.lines[0].unit_price == MoneyAmount(amount="9.50", currency="USD")
    assert first.total == MoneyAmount(amount="19.00", currency="USD")
    assert '"amount":"19.00"' in first.model_dump_json()


def test_an_envelope_of_unknown_type_or_version_is_refused() -> None:
    known = envelope_for(OrderConfirmed(order_id="o-1"), id="m-1", source="s", occurred_at=MOMENT)
    with pytest.raises(InvalidMessageError, match="no schema"):
        decode(known.model_copy(update={"schema_version": 2}))
    with pytest.raises(InvalidMessageError, match="no schema"):
        decode(known.model_copy(update={"type": "commerce.order.teleported"}))
    with pytest.raises(InvalidMessageError, match="does not fit"):
        decode(known.model_copy(update={"payload": {"order_id": "o-1", "extra": 1}}))


@given(money())
def test_money_survives_the_integration_form_exactly(amount: Money) -> None:
    integration = MoneyAmount.of(amount)
    assert isinstance(integration.amount, str)
    assert MoneyAmount.model_validate_json(integration.model_dump_json()).to_money() == amount


@given(st.floats(allow_nan=True, allow_infinity=True) | st.decimals() | st.integers())
def test_money_that_is_not_a_string_is_refused(amount: object) -> None:
    with pytest.raises(ValidationError):
        MoneyAmount.model_validate({"amount": amount, "currency": "USD"})


@pytest.mark.parametrize("amount", ["9.505", "9.5", "1e3", "NaN", "-0.00", " 1.00", "1,00", ""])
def test_money_not_in_its_currencys_exact_form_is_refused(amount: str) -> None:
    with pytest.raises(ValidationError):
        MoneyAmount(amount=amount, currency="USD")


@given(identifiers(), money(), money())
def test_an_event_with_any_valid_ids_and_amounts_round_trips_through_json(
    order_id: str, fee: Money, refund: Money
) -> None:
    event = OrderCancelled(
        order_id=order_id,
        reason="customer request",
        fee=MoneyAmount.of(fee),
        refund=MoneyAmount.of(refund),
    )
    envelope = envelope_for(event, id=order_id, source="orders", occurred_at=MOMENT)
    assert decode(Envelope.from_json(envelope.to_json())) == event
    assert envelope.key == order_id


@given(st.text(max_size=300))
def test_an_identifier_a_command_would_refuse_is_refused_in_an_event(text: str) -> None:
    from suuupra_commerce.errors import InvalidIdentifierError
    from suuupra_commerce.values import check_identifier

    try:
        check_identifier(text)
    except InvalidIdentifierError:
        with pytest.raises(ValidationError):
            OrderConfirmed(order_id=text)
    else:
        assert OrderConfirmed(order_id=text).order_id == text


def test_a_decimal_amount_is_written_with_the_currencys_minor_units() -> None:
    assert MoneyAmount.of(Money(Decimal("5"), "JPY")).amount == "5"
    assert MoneyAmount.of(Money(Decimal("5"), "KWD")).amount == "5.000"
