"""Every command turns any payload into a valid command or a typed error, nothing else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import suuupra_commerce  # noqa: F401 - imports every command module
from suuupra_commerce.commands import Command
from suuupra_commerce.errors import InvalidCommandError
from suuupra_commerce.testing import strategies as cst


def _all_commands() -> list[type[Command]]:
    found: list[type[Command]] = []
    todo = list(Command.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        found.append(cls)
    return sorted(set(found), key=lambda c: c.__name__)


COMMANDS = _all_commands()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_command_is_valid_or_raises_invalid_command_error_when_fed_any_payload(
    command: type[Command], data: st.DataObject
) -> None:
    payload = data.draw(cst.command_payloads(command))
    try:
        built = command.model_validate(payload)
    except InvalidCommandError as error:
        refusal = error
    else:
        assert isinstance(built, command)
        assert built.fingerprint() == command.model_validate(payload).fingerprint()
        return
    assert refusal.errors, "a refusal says what was wrong"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.__name__)
@settings(max_examples=30, deadline=None)
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_command_refuses_with_a_typed_error_when_fed_arbitrary_json_text(
    command: type[Command], raw: bytes | str
) -> None:
    try:
        command.model_validate_json(raw)
    except InvalidCommandError:
        return


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.__name__)
def test_command_refuses_when_the_payload_is_over_64_kib(command: type[Command]) -> None:
    with pytest.raises(InvalidCommandError, match="64 KiB"):
        command.model_validate_json(json.dumps({"padding": "x" * 70_000}))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.__name__)
def test_command_is_frozen_and_closed_when_declared(command: type[Command]) -> None:
    assert command.model_config.get("frozen") is True
    assert command.model_config.get("extra") == "forbid"
    assert command.__doc__, f"{command.__name__} needs a docstring"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.__name__)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_command_built_by_keywords_is_valid_or_raises_invalid_command_error(
    command: type[Command], data: st.DataObject
) -> None:
    # How a host builds one in code: ``PlaceOrder(lines=[OrderLineRequest(...)], ...)``.
    payload = data.draw(cst.command_payloads(command))
    try:
        built = command(**payload)
    except InvalidCommandError as error:
        refusal = error
    else:
        assert built == command.model_validate(payload)
        return
    assert refusal.errors, "a refusal says what was wrong"


def _models_inside(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in get_args(annotation):
        yield from _models_inside(argument)


def test_every_model_a_command_is_built_from_is_a_command_too() -> None:
    # A host builds the parts too (an order's lines): they must refuse bad input with the
    # same typed error, not pydantic's ValidationError.
    parts = {
        model
        for command in COMMANDS
        for field in command.model_fields.values()
        for model in _models_inside(field.annotation)
    }
    assert parts, "no command is built from other models"
    assert {part.__name__ for part in parts if not issubclass(part, Command)} == set()


def test_every_service_command_is_covered_when_collecting_subclasses() -> None:
    names = {c.__name__ for c in COMMANDS}
    assert {"PlaceOrder", "ReserveStock", "RegisterItem", "AddItem", "CheckoutCart"} <= names
    assert len(COMMANDS) >= 40
