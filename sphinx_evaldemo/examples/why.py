"""Why the modes differ, in numbers: what each mode-dependent layer did in train mode (worker only).

The page's first sentence needs figures the outputs do not hold: how many values a
dropout layer zeroed, a normalisation layer's batch statistics against its running
estimates, the slopes RReLU drew. They are read from the trace's reference passes
(the copies of each call's inputs and output, :mod:`.trace`) and from the running
statistics as the setup left them (:func:`before`), and stored as plain dicts in
``result.extra["why"]``; :mod:`.summary` writes the sentence.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from . import detect

#: SELU's constants, as ``torch.nn.functional.alpha_dropout`` uses them.
_ALPHA = 1.7580993408473766
#: Facts kept per example (the sentence names the first few).
MAX_FACTS = 6


def _running(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    mean, var = getattr(module, "running_mean", None), getattr(module, "running_var", None)
    if isinstance(mean, torch.Tensor) and isinstance(var, torch.Tensor):
        return mean.detach().clone().double(), var.detach().clone().double()
    return None


def before(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The running estimates of each normalisation layer as the setup left them
    (what eval mode normalises with), before either mode's pass."""
    found = {}
    for qualname, module in model.named_modules():
        stats = _running(module)
        if stats is not None:
            found[qualname] = stats
    return found


def _tensor(kept: list[tuple[str, Any]]) -> torch.Tensor | None:
    """The first leaf of a call's inputs or output, when a copy of it was kept."""
    if kept and isinstance(kept[0][1], torch.Tensor) and kept[0][1].is_floating_point():
        return kept[0][1].detach().to("cpu").double()
    return None


def _round(value: float) -> float:
    return float(f"{value:.4g}") if math.isfinite(value) else value


def _dropout(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any] | None:
    p = float(getattr(module, "p", 0.0))
    if x.shape != y.shape or not 0 < p < 1:
        return None
    if isinstance(module, nn.AlphaDropout | nn.FeatureAlphaDropout):
        a = 1 / math.sqrt((_ALPHA**2 * p + 1) * (1 - p))
        b = _ALPHA * a * p
        kept = torch.isclose(y, a * x + b, rtol=1e-4, atol=1e-5)
        return {"family": "alpha", "p": p, "replaced": int((~kept).sum()), "total": x.numel(),
                "a": _round(a), "b": _round(b), "value": _round(a * -_ALPHA + b)}
    zeroed = int(((y == 0) & (x != 0)).sum())
    return {"family": "dropout", "p": p, "zeroed": zeroed, "total": x.numel(),
            "nonzero": int((x != 0).sum()),
            "scale": _round(1 / (1 - p))}


def _norm(module: nn.Module, x: torch.Tensor, start: tuple[torch.Tensor, torch.Tensor] | None,
          changed: bool) -> dict[str, Any] | None:
    if start is None or x.dim() < 2 or x.shape[1] != start[0].numel():
        return None
    dims = [d for d in range(x.dim()) if d != 1]
    mean = x.mean(dim=dims)
    var = x.var(dim=dims, unbiased=False)
    run_mean, run_var = start
    return {
        "family": "norm", "channels": int(mean.numel()),
        "mean": _round(float(mean[0])), "var": _round(float(var[0])),
        "running_mean": _round(float(run_mean[0])), "running_var": _round(float(run_var[0])),
        "mean_range": [_round(float(mean.min())), _round(float(mean.max()))],
        "var_range": [_round(float(var.min())), _round(float(var.max()))],
        "updated": changed,
    }


def _rrelu(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any] | None:
    negative = x < 0
    if x.shape != y.shape or not bool(negative.any()):
        return None
    slopes = (y[negative] / x[negative])
    lower, upper = float(getattr(module, "lower", 0.125)), float(getattr(module, "upper", 1 / 3))
    return {"family": "rrelu", "negatives": int(negative.sum()),
            "low": _round(float(slopes.min())), "high": _round(float(slopes.max())),
            "lower": _round(lower), "upper": _round(upper), "mean": _round((lower + upper) / 2)}


def _branch(module: nn.Module) -> str:
    """The first line of the module's own code that reads ``self.training``."""
    for klass in type(module).__mro__:
        if klass.__module__.startswith("torch.") or klass is nn.Module:
            continue
        for function in vars(klass).values():  # a class's own source may not be findable; its methods' is
            if not inspect.isfunction(function):
                continue
            try:
                lines = inspect.getsourcelines(function)[0]
            except (OSError, TypeError):
                continue
            for line in lines:
                if "self.training" in line:
                    return line.strip()
    return ""


def _fact(module: nn.Module, call: Any, start: tuple[torch.Tensor, torch.Tensor] | None,
          changed: bool) -> dict[str, Any] | None:
    x, y = _tensor(call.inputs), _tensor(call.output)
    if isinstance(module, nn.modules.batchnorm._BatchNorm | nn.modules.instancenorm._InstanceNorm):
        return _norm(module, x, start, changed) if x is not None else None
    if isinstance(module, nn.RReLU):
        return _rrelu(module, x, y) if x is not None and y is not None else None
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return _dropout(module, x, y) if x is not None and y is not None else None
    if isinstance(module, nn.RNNBase):
        p = float(module.dropout)
        return {"family": "recurrent", "p": p, "layers": int(module.num_layers)} if p else None
    if isinstance(module, nn.MultiheadAttention):
        p = float(module.dropout)
        return {"family": "attention", "p": p} if p else None
    if not type(module).__module__.startswith("torch."):
        return {"family": "user", "line": _branch(module)}
    return None


def explain(model: nn.Module, name: str, calls: Sequence[Any],
            start: dict[str, tuple[torch.Tensor, torch.Tensor]],
            changed: Sequence[str]) -> list[dict[str, Any]]:
    """One fact per mode-dependent module called in the train reference pass, in call order.

    ``calls``: the train mode's reference pass (:class:`trace.Call`); ``changed``: the
    buffers the train pass changed, as access paths.
    """
    modules = dict(model.named_modules())
    facts: list[dict[str, Any]] = []
    for call in calls:
        module = modules.get(call.qualname)
        if call.number != 1 or module is None or not detect.reads_mode(module):
            continue
        path = detect.access_path(name, call.qualname, model)
        fact = _fact(module, call, start.get(call.qualname),
                     any(buffer.startswith(f"{path}.running_") for buffer in changed))
        if fact is not None:
            facts.append({"name": path, "type": type(module).__name__, **fact})
        if len(facts) == MAX_FACTS:
            break
    return facts
