"""The test kit's hypothesis strategies draw exactly what they promise."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from suuupra_commerce.errors import InvalidInputError
from suuupra_commerce.money import Money
from suuupra_commerce.orders.commands import PlaceOrder
from suuupra_commerce.testing import strategies as cst
from suuupra_commerce.values import check_identifier, check_quantity, check_sku


@given(cst.money())
def test_money_is_exact_and_in_its_currencys_minor_units(amount: Money) -> None:
    assert Money(format(amount.amount, "f"), amount.currency) == amount
    assert Money.from_minor_units(amount.minor_units, amount.currency) == amount


@given(cst.invalid_amounts())
def test_invalid_amounts_are_refused_with_a_typed_error(value: Any) -> None:
    with pytest.raises(InvalidInputError):
        Money(value, "USD")


@given(cst.skus(), cst.identifiers(), cst.quantities())
def test_valid_values_are_accepted(sku: str, identifier: str, quantity: int) -> None:
    assert check_sku(sku) == sku
    assert check_identifier(identifier) == identifier
    assert check_quantity(quantity) == quantity


@given(cst.invalid_quantities())
def test_invalid_quantities_are_refused_with_a_typed_error(value: Any) -> None:
    with pytest.raises(InvalidInputError):
        check_quantity(value)


@given(cst.place_order_commands())
def test_place_order_commands_are_valid_and_round_trip_through_json(cmd: PlaceOrder) -> None:
    assert PlaceOrder.model_validate_json(cmd.model_dump_json()) == cmd
