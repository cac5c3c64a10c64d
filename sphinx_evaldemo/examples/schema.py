"""Checking JSON read back from disk against the dataclass it claims to be, field by field.

A stored result written by another version (or another tool) must be a cache miss, not
a value that breaks the build later (an unknown failure kind, a string where a number
belongs). The check is derived from the dataclasses' own type hints, so a new field or a
new failure kind is covered without a line here.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Literal, Union


def check(cls: type, data: Any) -> None:
    """Raise :class:`ValueError` unless ``data`` is what ``dataclasses.asdict`` of ``cls`` gives."""
    _check(cls, data, cls.__name__)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check(hint: Any, value: Any, where: str) -> None:
    origin = typing.get_origin(hint)
    if hint is Any:
        return
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object")
        names = {spec.name for spec in dataclasses.fields(hint)}
        if not set(value) <= names:
            raise ValueError(f"{where}: unknown fields {sorted(set(value) - names)}")
        for name, field_hint in _hints(hint).items():
            if name in value:
                _check(field_hint, value[name], f"{where}.{name}")
        return
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ValueError(f"{where}: {value!r} is not one of {typing.get_args(hint)}")
        return
    if origin in (Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            try:
                _check(option, value, where)
            except ValueError as error:
                errors.append(str(error))
            else:
                return
        raise ValueError("; ".join(errors))
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis and args[0] in _PLAIN:
            if not all(type(item) in _PLAIN[args[0]] for item in value):  # one pass, no recursion
                raise ValueError(f"{where}: expected a list of {args[0].__name__}")
            return
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif origin is tuple and len(args) != len(value):
            raise ValueError(f"{where}: expected {len(args)} items")
        for index, (item_hint, item) in enumerate(zip(args or (Any,) * len(value), value, strict=False)):
            _check(item_hint, item, f"{where}[{index}]")
        return
    if origin is dict or hint is dict:
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise ValueError(f"{where}: expected an object")
        return
    _scalar(hint, value, where)


#: The exact JSON types a homogeneous list of each plain type may hold (tensor values).
_PLAIN: dict[Any, tuple[type, ...]] = {float: (int, float), int: (int,), str: (str,)}


def _scalar(hint: Any, value: Any, where: str) -> None:
    if hint is type(None):
        ok = value is None
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint in (str, bool):
        ok = isinstance(value, hint)
    else:
        raise ValueError(f"{where}: cannot check a value of type {hint!r}")
    if not ok:
        raise ValueError(f"{where}: {value!r} is not a {getattr(hint, '__name__', hint)}")
