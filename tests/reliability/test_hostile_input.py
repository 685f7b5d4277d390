"""Hostile payloads through the services: a typed error, and not one event written.

Every payload comes from the test kit's hostile strategies (NUL bytes, oversized text,
look-alike letters, SQL, path tricks, extreme and non-finite numbers, wrong types). A
payload the command accepts is sent to the service: it either succeeds or is refused with
a ``CommerceError``, and a refusal leaves every service's log exactly as it was."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import POSTGRES, _postgres_connect
from suuupra_commerce import (
    AddItem,
    CommerceError,
    CreateCart,
    Money,
    PlaceOrder,
    RegisterItem,
    ReserveStock,
    Settings,
)
from suuupra_commerce.adapters.memory import InMemoryPriceBook
from suuupra_commerce.commands import Command
from suuupra_commerce.system import Commerce
from suuupra_commerce.testing.strategies import (
    command_payloads,
    hostile_text,
    invalid_amounts,
    invalid_quantities,
)

from .conftest import DEEP, figures

TARGETS: dict[type[Command], Callable[[Commerce], Callable[[Any], Any]]] = {
    RegisterItem: lambda c: c.inventory.register,
    ReserveStock: lambda c: c.inventory.reserve,
    PlaceOrder: lambda c: c.orders.place,
    CreateCart: lambda c: c.carts.create,
    AddItem: lambda c: c.carts.add_item,
}
#: A valid payload of each command, one field of which each example replaces.
BASES: dict[type[Command], dict[str, Any]] = {
    RegisterItem: {
        "sku": "NEW-1",
        "product_id": "p-1",
        "name": "New",
        "unit_price": {"amount": "1.00", "currency": "USD"},
        "initial_quantity": 1,
    },
    ReserveStock: {"order_id": "o-1", "lines": [{"sku": "MUG-1", "quantity": 1}]},
    PlaceOrder: {
        "idempotency_key": "k-1",
        "customer_id": "c-1",
        "currency": "USD",
        "lines": [{"sku": "MUG-1", "quantity": 1}],
    },
    CreateCart: {"customer_id": "c-1", "currency": "USD"},
    AddItem: {"cart_id": "00000000-0000-4000-8000-000000000000", "sku": "MUG-1", "quantity": 1},
}
HOSTILE_VALUES = st.one_of(
    hostile_text(),
    invalid_quantities(),
    invalid_amounts(),
    st.sampled_from([10**6, 10**6 + 1, 2**63, -(2**63), "MUG-2", "USD ", "XXX", "JPY"]),
    st.sampled_from([[{"sku": "NOPE-1", "quantity": 1}], [{"sku": "MUG-1", "quantity": 6}]]),
)


def hostile_payloads(command: type[Command]) -> st.SearchStrategy[dict[str, Any]]:
    """Arbitrary payloads, and valid ones with one field made hostile."""
    base = BASES[command]
    mutated = st.tuples(st.sampled_from(sorted(base)), HOSTILE_VALUES).map(
        lambda change: {**base, change[0]: change[1]}
    )
    return st.one_of(command_payloads(command), mutated)


SEEN: dict[str, int] = {"refused by the command": 0, "refused by the service": 0, "accepted": 0}


@pytest.fixture(
    scope="module", params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def shop(request: pytest.FixtureRequest) -> Iterator[Commerce]:
    env = {"COMMERCE_PERSISTENCE": request.param}
    schema = None
    if request.param == "postgres":
        request.getfixturevalue("postgres_available")
        schema = f"hostile_{uuid.uuid4().hex[:12]}"
        admin: Any = _postgres_connect()
        admin.execute(f'CREATE SCHEMA "{schema}"')
        admin.close()
        env.update({**POSTGRES, "POSTGRES_SCHEMA": schema})
    book = InMemoryPriceBook()
    book.set_price("MUG-1", "Mug", Money("9.50", "USD"))
    with Commerce(Settings.from_env(env), price_book=book) as built:
        built.inventory.register(
            RegisterItem(
                sku="MUG-1",
                product_id="mug",
                name="Mug",
                unit_price=Money("9.50", "USD"),
                initial_quantity=5,
            )
        )
        yield built
    if schema is not None:
        admin = _postgres_connect()
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def _heads(commerce: Commerce) -> list[int]:
    apps = (commerce.inventory, commerce.orders, commerce.carts, commerce.sagas)
    return [app.recorder.max_notification_id() or 0 for app in apps]


@pytest.mark.parametrize("command", list(TARGETS), ids=lambda c: c.__name__)
def test_a_hostile_payload_is_refused_with_a_typed_error_and_writes_nothing(
    shop: Commerce, command: type[Command]
) -> None:
    call = TARGETS[command](shop)

    @settings(
        max_examples=100 * DEEP,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(payload=hostile_payloads(command))
    def run(payload: dict[str, Any]) -> None:
        try:
            valid = command.model_validate(payload)
        except CommerceError:
            SEEN["refused by the command"] += 1
            return
        before = _heads(shop)
        try:
            call(valid)
        except CommerceError:
            SEEN["refused by the service"] += 1
            assert _heads(shop) == before, "a refused command wrote something"
        else:
            SEEN["accepted"] += 1

    run()


def test_figures_of_the_hostile_payloads() -> None:
    figures("hostile payloads through the services", **SEEN, server_errors=0)
