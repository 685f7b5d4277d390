"""The curated public surface: exactly the names in ``__all__``, each documented."""

from __future__ import annotations

import inspect
import types

import suuupra_commerce
from suuupra_commerce import errors


def test_public_names_are_exactly_all_when_importing_the_package() -> None:
    public = {
        name
        for name, value in vars(suuupra_commerce).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(suuupra_commerce.__all__) - {"__version__"}


def test_all_is_sorted_and_unique_when_read() -> None:
    names = [n for n in suuupra_commerce.__all__ if n != "__version__"]
    assert len(names) == len(set(names))
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))


def test_every_error_is_exported_when_it_is_in_the_error_tree() -> None:
    assert set(errors.__all__) <= set(suuupra_commerce.__all__)


def test_every_error_descends_from_commerce_error_and_ends_in_error() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.CommerceError), name
        assert name.endswith("Error"), name


def test_every_error_is_drawn_in_the_tree_when_reading_the_module_docstring() -> None:
    tree = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in tree, f"{name} is missing from the tree in errors.py"


def test_bad_input_errors_are_value_errors_so_hosts_can_catch_either() -> None:
    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.InvalidCommandError, errors.InvalidInputError)


def test_every_exported_class_and_function_has_a_docstring() -> None:
    for name in suuupra_commerce.__all__:
        value = getattr(suuupra_commerce, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"
