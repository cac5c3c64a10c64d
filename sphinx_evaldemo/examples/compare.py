"""Train-versus-eval facts drawn from a real run: outputs leaf by leaf, notes (worker only)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from . import detect, equality
from .model import Comparison, LeafDiff, Mode, ModeRun, TensorView

#: Tensors up to this many elements carry every value (for marks and charts).
MAX_VALUES = 256

#: Leaves of an output listed one by one; past it, the rest are counted.
MAX_LEAVES = 64


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, leaf)`` pairs of an output, with the paths the comparison gives."""
    return equality.leaves(value, path)


def snapshot(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """A copy of every tensor and array leaf, in the same containers (for later comparison).

    ``memo`` maps what is already copied to its copy, so a list that holds itself is
    copied once (as :func:`copy.deepcopy` does).
    """
    if type(value) in equality.PLAIN:
        return value  # immutable
    memo = {} if memo is None else memo
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        items: list[Any] = []
        memo[id(value)] = items
        items.extend(snapshot(item, memo) for item in value)
        return items
    if isinstance(value, Mapping):
        memo[id(value)] = value  # a mapping that holds itself keeps itself there
        pairs = {key: snapshot(item, memo) for key, item in value.items()}
        try:
            return type(value)(pairs)  # type: ignore[call-arg]  # a Mapping subclass's constructor
        except Exception:  # noqa: BLE001  # a mapping type that cannot be built from a dict
            return pairs
    if isinstance(value, tuple):
        copies = [snapshot(item, memo) for item in value]
        if hasattr(value, "_fields"):
            return type(value)(*copies)
        try:
            return type(value)(copies)  # torch.return_types are built from a sequence
        except Exception:  # noqa: BLE001  # a tuple subclass with another constructor
            return tuple(copies)
    found = equality.children(value)
    if found is None:
        return value
    try:
        kept = memo[id(value)] = copy.copy(value)
        for step, item in found:
            object.__setattr__(kept, step[1:], snapshot(item, memo))
    except Exception:  # noqa: BLE001  # an object that refuses copies: kept as it is
        return value
    return kept


def requires_grad(value: Any) -> bool | None:
    """True when any tensor leaf tracks gradients; None when there is no tensor."""
    tensors = [leaf for _, leaf in leaves(value) if isinstance(leaf, torch.Tensor)]
    if not tensors:
        return None
    return any(t.requires_grad for t in tensors)


def equal(a: Any, b: Any) -> bool | None:
    """The one equality's answer: True (equal, up to rounding too), False, None (not comparable)."""
    with torch.no_grad():
        return equality.same(a, b)


def diff_leaves(a: Any, b: Any) -> tuple[LeafDiff, ...]:
    """Compare two outputs leaf by leaf (every leaf: see :func:`comparison` for the page's)."""
    with torch.no_grad():
        return tuple(equality.compare(a, b))


def comparison(modes: tuple[Mode, Mode], a: Any, b: Any) -> Comparison:
    """The two modes' outputs compared; an output of many leaves keeps the first ones and counts."""
    found = diff_leaves(a, b)
    rest = found[MAX_LEAVES:]
    return Comparison(modes, found[:MAX_LEAVES], more=len(rest),
                      more_differing=sum(equality.kind(leaf) == "differ" for leaf in rest))


def views(value: Any) -> tuple[TensorView, ...]:
    """Numbers and statistics of every real-valued tensor leaf."""
    found = []
    for path, leaf in leaves(value):
        if not _viewable(leaf):
            continue
        with torch.no_grad():
            data = leaf.detach().to("cpu", torch.float64)
            count = data.numel()
            found.append(
                TensorView(
                    path=path,
                    shape=tuple(leaf.shape),
                    dtype=str(leaf.dtype).removeprefix("torch."),
                    values=_values(leaf) if count <= MAX_VALUES else None,
                    mean=float(data.mean()),
                    std=float(data.std()) if count > 1 else None,
                    min=float(data.min()),
                    max=float(data.max()),
                    zeros=float((data == 0).sum()) / count,
                )
            )
    return tuple(found)


def _values(leaf: torch.Tensor) -> tuple[float, ...]:
    """Every element; integers as Python ints, so the page shows 2**53 + 1 as it is."""
    if leaf.is_floating_point():
        return tuple(leaf.detach().to("cpu", torch.float64).flatten().tolist())
    return tuple(leaf.detach().to("cpu", torch.int64).flatten().tolist())  # bools as 0 and 1


def _viewable(leaf: Any) -> bool:
    """A real-valued strided tensor with values (not meta, sparse, quantized or nested)."""
    return (
        isinstance(leaf, torch.Tensor) and leaf.layout == torch.strided and not leaf.is_meta
        and not leaf.is_quantized and not leaf.is_nested and not leaf.is_complex() and leaf.numel() > 0
    )


def _named(path: str, module: nn.Module | None) -> str:
    if module is None:
        return f"`{path}`"
    kind, settings = detect.short(module)
    return f"`{path}` ({kind}, {settings})" if settings else f"`{path}` ({kind})"


def notes(runs: Sequence[ModeRun], model: nn.Module, name: str) -> list[str]:
    """Plain words for what a reader would not expect: eval not repeatable, eval changing buffers."""
    modules = {detect.access_path(name, q, model): m for q, m in model.named_modules()}
    found = []
    for run in runs:
        if run.mode != "eval":
            continue
        if run.deterministic is False:
            found.append(_eval_random(run.varied, modules))
        owners: dict[str, list[str]] = {}
        for buffer in run.buffers_changed:
            owner, _, short = buffer.rpartition(".")
            owners.setdefault(owner, []).append(short)
        for owner, shorts in owners.items():
            found.append(
                f"In eval mode {_named(owner, modules.get(owner))} changed its buffers "
                f"({', '.join(shorts)}): each eval pass starts from a different state, "
                "which eval mode usually promises not to do."
            )
    return found


def _eval_random(varied: Sequence[str], modules: Mapping[str, nn.Module]) -> str:
    lead = "In eval mode a second pass gave different values"
    if not varied:
        return (f"{lead}, yet no module's output changed on equal inputs: the randomness "
                "comes from outside the model's modules (a global state, a hook).")
    path = varied[0]
    module = modules.get(path)
    where = f"{lead}; the first module whose output varied is {_named(path, module)}"
    if module is not None and not detect.reads_mode(module):
        return (f"{where}. Its code does not read the mode, so it draws random numbers in eval "
                "too: a likely cause is a call such as F.dropout(x, 0.5) without "
                "training=self.training (or an nn.Dropout submodule instead).")
    return (f"{where}. It reads the mode but still draws random numbers in eval: check what "
            "its forward does when self.training is False.")
