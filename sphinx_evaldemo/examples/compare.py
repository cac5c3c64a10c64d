"""Train-versus-eval facts drawn from a real run: outputs leaf by leaf, notes (worker only)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from . import detect
from .model import LeafDiff, ModeRun, TensorView

#: Tensors up to this many elements carry every value (for marks and charts).
MAX_VALUES = 256

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
        count, largest = figures(x.detach(), y.detach())
    return LeafDiff(
        path, equal=count == 0, max_abs_diff=largest, differing=count, total=x.numel()
    )


#: Dtypes whose differences are taken as they are; others are widened first.
_NATIVE = (torch.float32, torch.float64)


def figures(x: torch.Tensor, y: torch.Tensor) -> tuple[int, float]:
    """How many elements differ (NaN in both counts as equal), and the largest difference.

    float32 and float64 pairs are compared in their own dtype, with no widened copy;
    the rest (integers, halves, complex, mixed dtypes) as float64 or complex128.
    """
    if not (x.dtype == y.dtype and x.dtype in _NATIVE and x.device == y.device):
        wide = torch.complex128 if x.is_complex() or y.is_complex() else torch.float64
        x, y = x.to("cpu", wide), y.to("cpu", wide)
    delta = (x - y).abs()
    largest = float(delta.max()) if delta.numel() else 0.0
    if largest == largest:  # no NaN anywhere: the quick way
        count = int((x != y).sum())
        return count, largest if count else 0.0
    differs = (x != y) & ~(x.isnan() & y.isnan())
    count = int(differs.sum())
    return count, float(delta[differs].max()) if count else 0.0


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
