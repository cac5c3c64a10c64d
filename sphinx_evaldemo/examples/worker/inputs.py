"""Each pass's own copy of the compared example's input: a deep copy, or its tensors
cloned one by one where a deep copy fails; an iterator input found before it is consumed."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from .state import why


def iterator_in(value: Any, path: str = "") -> tuple[str, str] | None:
    """Where the input holds a generator or iterator, and its type (path ``""``: the input itself)."""
    if isinstance(value, Iterator) and not isinstance(value, torch.Tensor):
        return path, type(value).__name__
    items: Iterator[tuple[str, Any]] = iter(())
    if isinstance(value, tuple | list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    elif isinstance(value, Mapping):
        items = ((f"{path}[{key!r}]", item) for key, item in value.items())
    for where, item in items:
        found = iterator_in(item, where)
        if found is not None:
            return found
    return None


def _leafwise(value: Any, shared: list[str], path: str) -> Any:
    """A copy of the containers with every tensor cloned; other leaves copied where they can be."""
    if isinstance(value, torch.Tensor):
        if value.is_leaf:
            return value.detach().clone().requires_grad_(value.requires_grad)
        return value.clone()
    if isinstance(value, tuple | list):
        items = [_leafwise(item, shared, f"{path}[{index}]") for index, item in enumerate(value)]
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*items)
        try:
            return type(value)(items)
        except Exception:  # noqa: BLE001  # a subclass with its own constructor
            return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        copied = {key: _leafwise(item, shared, f"{path}[{key!r}]") for key, item in value.items()}
        try:
            return type(value)(copied)
        except Exception:  # noqa: BLE001  # as above
            return copied
    for attempt in (copy.deepcopy, copy.copy):
        try:
            return attempt(value)
        except Exception:  # noqa: BLE001, S112  # the next, or shared (and named)
            continue
    shared.append(f"the item {path} ({type(value).__name__})" if path else f"the input itself ({type(value).__name__})")
    return value


@dataclass
class InputCopies:
    """Fresh copies of the input, one per pass; ``note`` says what could not be copied."""

    value: Any
    deep: bool = True
    note: str = ""
    #: the copy made to find out whether a deep copy works: the first pass's
    ready: list[Any] = field(default_factory=list)

    def fresh(self) -> Any:
        if self.ready:
            return self.ready.pop()
        if self.deep:
            return copy.deepcopy(self.value)
        return _leafwise(self.value, [], "")


def input_copies(value: Any, expression: str) -> InputCopies:
    """How each pass gets its own input: a deep copy, or leaf-wise clones where that fails."""
    try:
        first = copy.deepcopy(value)
    except Exception as exc:  # noqa: BLE001  # the leaf-wise copy below, said on the page
        shared: list[str] = []
        first = _leafwise(value, shared, "")
        note = (f"The input {expression} could not be copied whole (copy.deepcopy: {why(exc)}), "
                "so each pass got a copy with its tensors cloned one by one")
        if shared:
            note += (f"; {', '.join(shared)} could not be copied and was shared by the passes: "
                     "what one pass changes in it reaches the next")
        return InputCopies(value, deep=False, note=note + ".", ready=[first])
    return InputCopies(value, ready=[first])
