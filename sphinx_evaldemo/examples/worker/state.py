"""The model's start state for a compared run: lazy modules materialised, the state copied and restored.

Both modes start from the same state. Taking it is the harness's step, not the
example's, so a failure here says so, with the cause and the fix, instead of
reaching the worker as a crash.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..model import Failure, Mode


class StateFailed(Exception):
    """The start state could not be taken or restored; ``failure`` says why."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def materialise(model: nn.Module, call: Callable[[], Any]) -> None:
    """Give lazy modules their shapes with ``call()`` (one pass), in eval mode, before the state is taken.

    Their parameters are drawn from the generators as the setup left them; each mode is
    then re-seeded as usual, so both modes still start from the same state and seed.
    Eval mode keeps BatchNorm's running statistics as they are. The caller runs the
    pass under ``torch.no_grad()``; an error in it is the example's and propagates.
    """
    lazy = nn.modules.lazy.LazyModuleMixin
    if not any(isinstance(m, lazy) and m.has_uninitialized_params() for m in model.modules()):
        return
    flags = {id(m): m.training for m in model.modules()}
    model.eval()
    try:
        call()
    finally:
        for module in model.modules():
            module.training = flags.get(id(module), module.training)


def _failure(what: str, exc: Exception, fix: str) -> StateFailed:
    return StateFailed(Failure(
        "model", f"{what}: {type(exc).__name__}: {exc}; {fix}", exc_type=type(exc).__name__,
        exc_mro=tuple(klass.__name__ for klass in type(exc).__mro__),
    ))


def take(model: nn.Module) -> dict[str, Any]:
    """A copy of the model's state that each mode starts from."""
    try:
        return {
            key: value.detach().clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)
            for key, value in model.state_dict().items()
        }
    except Exception as exc:  # noqa: BLE001  # reported as the harness step it is
        raise _failure(
            "could not take the model's start state", exc,
            "model.state_dict() must work on the model as the code leaves it "
            "(an uninitialised parameter, for instance, needs one forward pass first)",
        ) from None


def restore(model: nn.Module, state: dict[str, Any], mode: Mode) -> None:
    """Put the start state back before a mode's passes."""
    try:
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001  # as above
        raise _failure(
            f"could not restore the model's start state before the {mode} pass", exc,
            "a pass must not add or remove parameters or buffers",
        ) from None


def guarded(step: str, notes: list[str], work: Callable[[], Any], default: Any) -> Any:
    """Run one of the comparison's own steps; a failure becomes a note, not a lost example."""
    try:
        return work()
    except Exception as exc:  # noqa: BLE001  # our own step must not cost the example
        notes.append(f"the {step} could not be made: {type(exc).__name__}: {exc}")
        return default
