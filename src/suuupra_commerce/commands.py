"""Base class of every command: frozen, closed pydantic models with typed errors.

A command is an intention, validated completely before anything is loaded or
written. Invalid input raises :class:`~suuupra_commerce.errors.InvalidCommandError`
(a ``CommerceError`` and a ``ValueError``) rather than pydantic's own error, so a
host catches one tree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Self

import pydantic
from pydantic import BaseModel, ConfigDict

from suuupra_commerce.errors import InvalidCommandError

__all__ = ["Command"]

MAX_COMMAND_BYTES = 64 * 1024
_LONG = "too_long"


class Command(BaseModel):
    """A validated, immutable request to change something.

    Subclasses declare their fields; ``fingerprint()`` gives a stable digest of the
    payload, used to tell a genuine retry from a reused idempotency key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=4096)

    #: Fields left out of the fingerprint (the idempotency key itself, for example).
    fingerprint_exclude: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as error:
            raise _translate(type(self).__name__, error) from None

    @classmethod
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        from_attributes: bool | None = None,
        context: Any | None = None,
        **kwargs: Any,
    ) -> Self:
        """Validate ``obj`` (a mapping), raising ``InvalidCommandError`` when it is not valid."""
        try:
            return super().model_validate(
                obj, strict=strict, from_attributes=from_attributes, context=context, **kwargs
            )
        except pydantic.ValidationError as error:
            raise _translate(cls.__name__, error) from None

    @classmethod
    def model_validate_json(
        cls,
        json_data: str | bytes | bytearray,
        *,
        strict: bool | None = None,
        context: Any | None = None,
        **kwargs: Any,
    ) -> Self:
        """Validate a JSON document (at most 64 KiB), raising ``InvalidCommandError``."""
        if len(json_data) > MAX_COMMAND_BYTES:
            raise InvalidCommandError(
                cls.__name__,
                [
                    {
                        "loc": (),
                        "msg": f"payload over 64 KiB ({MAX_COMMAND_BYTES} bytes)",
                        "type": _LONG,
                    }
                ],
            )
        try:
            return super().model_validate_json(json_data, strict=strict, context=context, **kwargs)
        except pydantic.ValidationError as error:
            raise _translate(cls.__name__, error) from None

    def fingerprint(self) -> str:
        """A SHA-256 digest of the payload, stable across processes and versions of Python."""
        payload = self.model_dump(mode="json", exclude=set(self.fingerprint_exclude))
        text = json.dumps(
            {"command": type(self).__name__, "payload": payload},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )
        return hashlib.sha256(text.encode("ascii")).hexdigest()


def _translate(command: str, error: pydantic.ValidationError) -> InvalidCommandError:
    details = [
        {"loc": tuple(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    return InvalidCommandError(command, details)
