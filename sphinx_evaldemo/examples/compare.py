"""Train-versus-eval facts drawn from a real run (imported by the worker only)."""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from .model import LeafDiff, TensorView

#: Tensors up to this many elements carry every value (for marks and charts).
MAX_VALUES = 256

_DROPOUT = (nn.modules.dropout._DropoutNd,)
_BATCHNORM = (nn.modules.batchnorm._BatchNorm,)
_INSTANCENORM = (nn.modules.instancenorm._InstanceNorm,)


def describe(module: nn.Module) -> str:
    """``Dropout(p=0.5)``: the type and its own settings, never its children."""
    extra = module.extra_repr().replace("inplace=False", "").strip(" ,")
    return f"{type(module).__name__}({extra})"


def _reads_training(cls: type) -> bool:
    """Whether a user class's own code reads ``self.training`` or overrides ``train()``."""
    for klass in cls.__mro__:
        if klass.__module__.startswith("torch.") or klass is nn.Module:
            break
        if "train" in vars(klass):
            return True
        for value in vars(klass).values():
            func = inspect.unwrap(value) if callable(value) else None
            code = getattr(func, "__code__", None)
            if isinstance(code, types.CodeType) and _code_mentions(code, "training"):
                return True
    return False


def _code_mentions(code: types.CodeType, name: str) -> bool:
    if name in code.co_names:
        return True
    return any(
        isinstance(const, types.CodeType) and _code_mentions(const, name)
        for const in code.co_consts
    )


def depends_on_mode(module: nn.Module) -> bool:
    """Whether this module (not its children) behaves differently in train and eval."""
    if isinstance(module, _DROPOUT):
        return True
    if isinstance(module, _BATCHNORM):
        return True
    if isinstance(module, _INSTANCENORM):
        return bool(module.track_running_stats)
    if isinstance(module, nn.RNNBase | nn.MultiheadAttention):
        return float(module.dropout) > 0
    return _reads_training(type(module))


def mode_dependent(model: nn.Module, name: str) -> tuple[str, ...]:
    """``"1.dropout: Dropout(p=0.5)"`` for every mode-dependent submodule."""
    found = []
    for qualname, module in model.named_modules():
        if depends_on_mode(module):
            found.append(f"{qualname or name}: {describe(module)}")
    return tuple(found)


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Flatten tuples, lists and dicts into ``(path, leaf)`` pairs."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from leaves(item, f"{path}[{key!r}]")
    elif isinstance(value, tuple | list):
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]")
    else:
        yield path or "output", value


def snapshot(value: Any) -> Any:
    """A detached copy of every tensor leaf, in the same containers (for later comparison)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, Mapping):
        return {key: snapshot(item) for key, item in value.items()}
    if isinstance(value, list):
        return [snapshot(item) for item in value]
    if isinstance(value, tuple):
        items = [snapshot(item) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return value


def requires_grad(value: Any) -> bool | None:
    """True when any tensor leaf tracks gradients; None when there is no tensor."""
    tensors = [leaf for _, leaf in leaves(value) if isinstance(leaf, torch.Tensor)]
    if not tensors:
        return None
    return any(t.requires_grad for t in tensors)


def equal(a: Any, b: Any) -> bool:
    return all(diff.equal for diff in diff_leaves(a, b))


def diff_leaves(a: Any, b: Any) -> tuple[LeafDiff, ...]:
    """Compare two outputs leaf by leaf."""
    left, right = dict(leaves(a)), dict(leaves(b))
    paths = list(left) + [path for path in right if path not in left]
    return tuple(
        _diff_leaf(path, left[path], right[path])
        if path in left and path in right
        else LeafDiff(path, equal=False, note="present in one mode only")
        for path in paths
    )


def _diff_leaf(path: str, x: Any, y: Any) -> LeafDiff:
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        try:
            same = bool(x == y)
        except Exception:  # noqa: BLE001  # arbitrary user objects may refuse ==
            same = repr(x) == repr(y)
        return LeafDiff(path, equal=same)
    if x.shape != y.shape:
        note = f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}"
        return LeafDiff(path, equal=False, note=note)
    with torch.no_grad():
        xd, yd = x.detach(), y.detach()
        if xd.is_complex() or yd.is_complex():
            xd, yd = xd.to(torch.complex128), yd.to(torch.complex128)
        else:
            xd, yd = xd.to(torch.float64), yd.to(torch.float64)
        both_nan = xd.isnan() & yd.isnan()
        differs = (xd != yd) & ~both_nan
        count = int(differs.sum())
        delta = (xd - yd).abs()[differs]
        largest = float(delta.max()) if count else 0.0
    return LeafDiff(
        path, equal=count == 0, max_abs_diff=largest, differing=count, total=x.numel()
    )


def views(value: Any) -> tuple[TensorView, ...]:
    """Numbers and statistics of every real-valued tensor leaf."""
    found = []
    for path, leaf in leaves(value):
        if not isinstance(leaf, torch.Tensor) or leaf.is_complex() or leaf.numel() == 0:
            continue
        with torch.no_grad():
            data = leaf.detach().to("cpu", torch.float64)
            count = data.numel()
            found.append(
                TensorView(
                    path=path,
                    shape=tuple(leaf.shape),
                    dtype=str(leaf.dtype).removeprefix("torch."),
                    values=tuple(data.flatten().tolist()) if count <= MAX_VALUES else None,
                    mean=float(data.mean()),
                    std=float(data.std()) if count > 1 else None,
                    min=float(data.min()),
                    max=float(data.max()),
                    zeros=float((data == 0).sum()) / count,
                )
            )
    return tuple(found)
