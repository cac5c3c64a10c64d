"""The one codec of every value that crosses a process or disk boundary.

Requests, results and everything inside them are frozen dataclasses. :func:`encode`
turns one into what ``json`` writes (dataclasses become objects with every field,
tuples become lists); :func:`decode` reads such a value back into the dataclass, and
checks it on the way, field by field, against the dataclasses' own type hints: a value
written by another version or another tool (an unknown failure kind, a string where a
number belongs, a missing or an unknown field) is a :class:`ValueError` that says where
it went wrong, never a half-built object that breaks the build later. Adding a field,
or a failure kind, means editing the dataclass only.

Each hint becomes a decoding function once (a warm build decodes thousands of values);
where a value went wrong is spelled out only when one did.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")
Decoder = Callable[[Any], Any]


class Mismatch(ValueError):
    """A value that is not what its hint says; ``path`` locates it (``.runs[0].mode``)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message, self.path = message, path

    def under(self, step: str) -> Mismatch:
        return Mismatch(self.message, step + self.path)


def _shown(value: Any) -> str:
    """``value`` as a message shows it: its repr, cut short (a value may be a whole output)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def encode(value: Any) -> Any:
    """``value`` as ``json`` writes it: what :func:`dataclasses.asdict` gives, without its
    deep copies (the leaves, str, numbers and None, are immutable anyway)."""
    names = _FIELDS.get(type(value))
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[type(value)] = tuple(spec.name for spec in dataclasses.fields(value))
    if names is not None:
        return {name: encode(getattr(value, name)) for name in names}
    if isinstance(value, list | tuple):
        if set(map(type, value)) <= _LEAVES:  # a tensor's values: nothing inside to convert
            return list(value)
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    return value


_FIELDS: dict[type, tuple[str, ...]] = {}
_LEAVES = frozenset({str, int, float, bool, type(None)})


def decode(cls: type[T], data: Any) -> T:
    """``data`` (what :func:`encode` of a ``cls`` gives, read back by ``json``) as a ``cls``.

    Raise :class:`ValueError` naming the place (``ExampleResult.runs[0].mode: ...``)
    unless every field is there and is what its hint says.
    """
    try:
        value: T = decoder(typing.cast(Any, cls))(data)
    except Mismatch as found:
        raise ValueError(f"{cls.__name__}{found.path}: {found.message}") from None
    return value


def check(cls: type, data: Any) -> None:
    """Raise :class:`ValueError` unless ``data`` decodes as a ``cls`` (see :func:`decode`)."""
    decode(cls, data)


@functools.cache
def decoder(hint: Any) -> Decoder:
    """The function that checks a JSON value against ``hint`` and builds it (made once per hint)."""
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


def _anything(value: Any) -> Any:
    return value


def _record(cls: type) -> Decoder:
    names = frozenset(spec.name for spec in dataclasses.fields(cls))
    hints: dict[str, Any] = {}  # filled on first use: the hints of a dataclass may nest

    def decode_record(value: Any) -> Any:
        if not isinstance(value, dict):
            raise Mismatch("expected an object")
        if value.keys() != names:
            if not value.keys() <= names:
                raise Mismatch(f"unknown fields {sorted(set(value) - names)}")
            raise Mismatch(f"missing fields {sorted(names - set(value))}")
        if not hints:
            hints.update({name: decoder(hint) for name, hint in typing.get_type_hints(cls).items()
                          if name in names})
        built = {}
        for name, decode_field in hints.items():
            try:
                built[name] = decode_field(value[name])
            except Mismatch as found:
                raise found.under(f".{name}") from None
        return cls(**built)

    return decode_record


def _one_of(allowed: tuple[Any, ...]) -> Decoder:
    def decode_literal(value: Any) -> Any:
        if value not in allowed:
            raise Mismatch(f"{_shown(value)} is not one of {allowed}")
        return value

    return decode_literal


def _either(options: tuple[Any, ...]) -> Decoder:
    nullable = type(None) in options
    rest = tuple(option for option in options if option is not type(None))

    def decode_union(value: Any) -> Any:
        if value is None and nullable:
            return None
        errors = []
        for option in rest:
            try:
                return decoder(option)(value)
            except Mismatch as found:
                errors.append(found)
        if nullable:
            errors.append(Mismatch(f"{_shown(value)} is not a NoneType"))
        deeper = [found for found in errors if found.path]
        if len(deeper) == 1:  # the one option the value's shape fits: its own mismatch
            raise deeper[0]
        raise Mismatch("; ".join(found.message for found in errors))

    return decode_union


#: The exact JSON types a homogeneous list of each plain type may hold (tensor values).
_PLAIN: dict[Any, tuple[type, ...]] = {float: (int, float), int: (int,), str: (str,)}


def _sequence(origin: Any, args: tuple[Any, ...]) -> Decoder:
    build: Callable[[Any], Any] = tuple if origin is tuple else list
    homogeneous = (len(args) == 2 and args[1] is Ellipsis) or (origin is list and len(args) == 1)
    same = args[0] if homogeneous else None
    if same is not None and same in _PLAIN:
        kinds, name = _PLAIN[same], same.__name__

        def decode_plain(value: Any) -> Any:
            if not isinstance(value, list):
                raise Mismatch("expected a list")
            if not all(type(item) in kinds for item in value):  # one pass, no call per item
                raise Mismatch(f"expected a list of {name}")
            return build(value)

        return decode_plain
    fixed = same is None and bool(args)

    def decode_items(value: Any) -> Any:
        if not isinstance(value, list):
            raise Mismatch("expected a list")
        if fixed and len(args) != len(value):
            raise Mismatch(f"expected {len(args)} items")
        hints = (same,) * len(value) if same is not None else (args or (Any,) * len(value))
        items = []
        for index, (item_hint, item) in enumerate(zip(hints, value, strict=False)):
            try:
                items.append(decoder(item_hint)(item))
            except Mismatch as found:
                raise found.under(f"[{index}]") from None
        return build(items)

    return decode_items


def _object(value: Any) -> Any:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise Mismatch("expected an object")
    return value


def _scalar(hint: Any) -> Decoder:
    if hint is type(None):
        test: Callable[[Any], bool] = lambda value: value is None  # noqa: E731
    elif hint is float:
        test = lambda value: isinstance(value, int | float) and not isinstance(value, bool)  # noqa: E731
    elif hint is int:
        test = lambda value: isinstance(value, int) and not isinstance(value, bool)  # noqa: E731
    elif hint in (str, bool):
        test = lambda value: isinstance(value, hint)  # noqa: E731
    else:
        def refuse(value: Any) -> Any:
            raise Mismatch(f"cannot decode a value of type {hint!r}")

        return refuse
    label = getattr(hint, "__name__", str(hint))

    def decode_scalar(value: Any) -> Any:
        if not test(value):
            raise Mismatch(f"{_shown(value)} is not a {label}")
        return value

    return decode_scalar
