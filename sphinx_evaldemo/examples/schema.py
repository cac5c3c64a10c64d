"""Checking JSON read back from disk against the dataclass it claims to be, field by field.

A stored result written by another version (or another tool) must be a cache miss, not
a value that breaks the build later (an unknown failure kind, a string where a number
belongs). The check is derived from the dataclasses' own type hints, so a new field or a
new failure kind is covered without a line here. Each hint becomes a checking function
once (a warm build checks thousands of values); where a value went wrong is spelled out
only when one did.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union

Checker = Callable[[Any], None]


class Mismatch(ValueError):
    """A value that is not what its hint says; ``path`` locates it (``.runs[0].mode``)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message, self.path = message, path

    def under(self, step: str) -> Mismatch:
        return Mismatch(self.message, step + self.path)


def check(cls: type, data: Any) -> None:
    """Raise :class:`ValueError` unless ``data`` is what ``dataclasses.asdict`` of ``cls`` gives."""
    try:
        checker(cls)(data)
    except Mismatch as found:
        raise ValueError(f"{cls.__name__}{found.path}: {found.message}") from None


@functools.cache
def checker(hint: Any) -> Checker:
    """The function that checks a JSON value against ``hint`` (made once per hint)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return _anything
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _record(hint)
    if origin is Literal:
        return _one_of(typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return _either(typing.get_args(hint))
    if origin in (tuple, list):
        return _sequence(origin, typing.get_args(hint))
    if origin is dict or hint is dict:
        return _object
    return _scalar(hint)


def _anything(value: Any) -> None:
    return None


def _record(cls: type) -> Checker:
    hints = typing.get_type_hints(cls)
    names = frozenset(spec.name for spec in dataclasses.fields(cls))

    def check_record(value: Any) -> None:
        if not isinstance(value, dict):
            raise Mismatch("expected an object")
        if not value.keys() <= names:
            raise Mismatch(f"unknown fields {sorted(set(value) - names)}")
        for name, field_hint in hints.items():  # looked up at call time: hints may nest
            if name in value:
                try:
                    checker(field_hint)(value[name])
                except Mismatch as found:
                    raise found.under(f".{name}") from None

    return check_record


def _one_of(allowed: tuple[Any, ...]) -> Checker:
    def check_literal(value: Any) -> None:
        if value not in allowed:
            raise Mismatch(f"{value!r} is not one of {allowed}")

    return check_literal


def _either(options: tuple[Any, ...]) -> Checker:
    def check_union(value: Any) -> None:
        errors = []
        for option in options:
            try:
                checker(option)(value)
            except Mismatch as found:
                errors.append(found)
            else:
                return
        deeper = [found for found in errors if found.path]
        if len(deeper) == 1:  # the one option the value's shape fits: its own mismatch
            raise deeper[0]
        raise Mismatch("; ".join(found.message for found in errors))

    return check_union


#: The exact JSON types a homogeneous list of each plain type may hold (tensor values).
_PLAIN: dict[Any, tuple[type, ...]] = {float: (int, float), int: (int,), str: (str,)}


def _sequence(origin: Any, args: tuple[Any, ...]) -> Checker:
    homogeneous = (len(args) == 2 and args[1] is Ellipsis) or (origin is list and len(args) == 1)
    same = args[0] if homogeneous else None
    if same is not None and same in _PLAIN:
        kinds, name = _PLAIN[same], same.__name__

        def check_plain(value: Any) -> None:
            if not isinstance(value, list):
                raise Mismatch("expected a list")
            if not all(type(item) in kinds for item in value):  # one pass, no call per item
                raise Mismatch(f"expected a list of {name}")

        return check_plain
    fixed = same is None and bool(args)

    def check_items(value: Any) -> None:
        if not isinstance(value, list):
            raise Mismatch("expected a list")
        if fixed and len(args) != len(value):
            raise Mismatch(f"expected {len(args)} items")
        hints = (same,) * len(value) if same is not None else (args or (Any,) * len(value))
        for index, (item_hint, item) in enumerate(zip(hints, value, strict=False)):
            try:
                checker(item_hint)(item)
            except Mismatch as found:
                raise found.under(f"[{index}]") from None

    return check_items


def _object(value: Any) -> None:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise Mismatch("expected an object")


def _scalar(hint: Any) -> Checker:
    if hint is type(None):
        test: Callable[[Any], bool] = lambda value: value is None  # noqa: E731
    elif hint is float:
        test = lambda value: isinstance(value, int | float) and not isinstance(value, bool)  # noqa: E731
    elif hint is int:
        test = lambda value: isinstance(value, int) and not isinstance(value, bool)  # noqa: E731
    elif hint in (str, bool):
        test = lambda value: isinstance(value, hint)  # noqa: E731
    else:
        def refuse(value: Any) -> None:
            raise Mismatch(f"cannot check a value of type {hint!r}")

        return refuse
    label = getattr(hint, "__name__", str(hint))

    def check_scalar(value: Any) -> None:
        if not test(value):
            raise Mismatch(f"{value!r} is not a {label}")

    return check_scalar
