"""Each mode's start state for a compared run: a whole copy of the model and of the input.

Both modes start from the model as the setup left it (lazy modules materialised):
each runs a ``copy.deepcopy`` of it, so everything the model holds travels with it
(parameters, every buffer, plain attributes, generators, parametrizations, hooks and
what their closures hold), and nothing one mode's passes change reaches the other.
Where the model cannot be deep-copied, the one model object is reset before each mode
instead, to what could be copied, and the page says what may leak. The input gets the
same treatment per pass: a deep copy, or its tensors cloned one by one.

Taking the state is the harness's step, not the example's, so a failure here says so,
with the cause and the fix, instead of reaching the worker as a crash.
"""

from __future__ import annotations

import collections
import copy
import types
from collections.abc import Callable
from dataclasses import dataclass
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
    Eval mode keeps BatchNorm's running statistics as they are; the flags are set
    directly (not with ``eval()``), since this pass is the harness's and a model's own
    ``eval()`` may do more than set them. The caller runs the pass under
    ``torch.no_grad()``; an error in it is the example's and propagates.
    """
    lazy = nn.modules.lazy.LazyModuleMixin
    if not any(isinstance(m, lazy) and m.has_uninitialized_params() for m in model.modules()):
        return
    flags = {id(m): m.training for m in model.modules()}
    for module in model.modules():
        module.training = False
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


def why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --- the model -------------------------------------------------------------------


#: Values a function's globals share between the modes as they are: code, not state.
_CODE_LIKE = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)


def _names_read(code: types.CodeType) -> set[str]:
    names: set[str] = set()
    pending = [code]
    while pending:
        inner = pending.pop()
        names.update(inner.co_names)
        pending += [const for const in inner.co_consts if isinstance(const, types.CodeType)]
    return names


def _own_globals(function: types.FunctionType, memo: dict[int, Any],
                 spaces: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The function's globals, with the state it reads there (``calls = [0]``) copied.

    One copy of each namespace per model copy (``spaces``), so two hooks that count in
    one global list still share it, as they do in the example.
    """
    original = function.__globals__
    space = spaces.get(id(original))
    if space is None:
        space = spaces[id(original)] = dict(original)
    for name in _names_read(function.__code__):
        if name in original and space[name] is original[name] and not isinstance(
                original[name], _CODE_LIKE):
            try:
                space[name] = copy.deepcopy(original[name], memo)
            except Exception:  # noqa: BLE001, S112  # what cannot be copied stays shared
                continue
    return space


def _own_function(function: types.FunctionType, memo: dict[int, Any],
                  spaces: dict[int, dict[str, Any]]) -> types.FunctionType:
    """The function with the state it reaches (its closure, the globals it reads) copied.

    ``copy.deepcopy`` shares functions, and with them that state: a hook that counts its
    calls in a global or closed-over list would count both modes' calls. Copied with the
    model's ``memo``, a reference to the model refers to the copy. The class's own
    methods are code shared by every instance, and are left as they are.
    """
    cells = function.__closure__ or ()
    try:
        contents = [copy.deepcopy(cell.cell_contents, memo) for cell in cells]
        space = _own_globals(function, memo, spaces)
    except Exception:  # noqa: BLE001  # an empty cell, or a value that cannot be copied: shared
        return function
    copied = types.FunctionType(
        function.__code__, space, function.__name__, function.__defaults__,
        tuple(types.CellType(value) for value in contents) if cells else None,
    )
    copied.__kwdefaults__ = function.__kwdefaults__
    copied.__dict__.update(function.__dict__)
    return copied


def _own_closures(model: nn.Module, memo: dict[int, Any]) -> None:
    """Give the copy's functions (attributes and hooks) state of their own."""
    spaces: dict[int, dict[str, Any]] = {}
    for module in model.modules():
        attributes = vars(module)
        for name, value in list(attributes.items()):
            if isinstance(value, types.FunctionType):
                attributes[name] = _own_function(value, memo, spaces)
            elif isinstance(value, dict) and name.endswith("hooks"):
                for key, hook in list(value.items()):
                    if isinstance(hook, types.FunctionType):
                        value[key] = _own_function(hook, memo, spaces)


def _plain_protocol(cls: type) -> bool:
    """Whether ``copy.deepcopy`` would copy instances of this module class by nn.Module's
    own rules (``__getstate__``, ``__setstate__`` and the object's ``__dict__``), which
    :func:`_copy_module` follows without the generic machinery."""
    found = _PLAIN.get(cls)
    if found is None:
        found = _PLAIN[cls] = (
            getattr(cls, "__deepcopy__", None) is None
            and getattr(cls, "__reduce_ex__", None) is object.__reduce_ex__
            and getattr(cls, "__reduce__", None) is object.__reduce__
            and getattr(cls, "__getstate__", None) is nn.Module.__getstate__
            and getattr(cls, "__setstate__", None) is nn.Module.__setstate__
            and not any("__slots__" in vars(klass) for klass in cls.__mro__)
        )
    return found


_PLAIN: dict[type, bool] = {}

#: What ``copy.deepcopy`` itself returns as it is.
_ATOMIC = frozenset({type(None), bool, int, float, complex, str, bytes})


def _copy_value(value: Any, memo: dict[int, Any]) -> Any:
    """``copy.deepcopy(value, memo)``, with modules and their str-keyed tables copied directly.

    A module holds about a dozen tables (its parameters, buffers, children and each kind
    of hook), most of them empty; the generic copy reduces each one as an object.
    """
    kind = type(value)
    if kind in _ATOMIC:
        return value
    found = memo.get(id(value), memo)
    if found is not memo:
        return found
    if isinstance(value, nn.Module) and _plain_protocol(kind):
        return _copy_module(value, memo)
    if kind is dict or kind is collections.OrderedDict:
        if all(type(key) is str for key in value):
            table = memo[id(value)] = kind()
            for key, item in value.items():
                table[key] = _copy_value(item, memo)
            return table
    elif kind is set and all(type(item) is str for item in value):
        strings = memo[id(value)] = set(value)
        return strings
    return copy.deepcopy(value, memo)


def _copy_module(module: nn.Module, memo: dict[int, Any]) -> nn.Module:
    cls = type(module)
    copied = cls.__new__(cls)
    memo[id(module)] = copied
    state: dict[str, Any] = nn.Module.__getstate__(module)  # type: ignore[no-untyped-call]
    nn.Module.__setstate__(copied, {key: _copy_value(value, memo) for key, value in state.items()})  # type: ignore[no-untyped-call]
    return copied


def _deep_copy(model: nn.Module) -> nn.Module:
    memo: dict[int, Any] = {}
    copied = _copy_value(model, memo)
    _own_closures(copied, memo)
    return copied  # type: ignore[no-any-return]


#: Module attributes the fallback resets in their own way, or leaves to the mode.
_OWN_WAY = frozenset({"_parameters", "_buffers", "_modules", "training"})


@dataclass
class _Saved:
    """The fallback's copy: per module, its tensors and the plain attributes that could be copied."""

    tensors: list[tuple[dict[str, Any], str, torch.Tensor | None, torch.Tensor | None]]
    attributes: list[tuple[nn.Module, str, Any]]
    shared: list[str]


def _save(model: nn.Module, name: str) -> _Saved:
    saved = _Saved([], [], [])
    for qualname, module in model.named_modules(remove_duplicate=True):
        for table in (module._parameters, module._buffers):
            for key, tensor in table.items():
                kept = None if tensor is None else tensor.detach().clone()
                saved.tensors.append((table, key, tensor, kept))
        for key, value in vars(module).items():
            if key in _OWN_WAY or key.endswith("hooks"):
                continue
            try:
                saved.attributes.append((module, key, copy.deepcopy(value)))
            except Exception:  # noqa: BLE001  # what cannot be copied is named on the page
                where = f"{name}.{qualname}" if qualname else name
                saved.shared.append(f"`{where}.{key}` ({type(value).__name__})")
    return saved


def _reset(saved: _Saved) -> None:
    with torch.no_grad():
        for table, key, tensor, kept in saved.tensors:
            if tensor is None or kept is None:
                table[key] = tensor
                continue
            table[key] = tensor
            if tensor.shape == kept.shape and tensor.dtype == kept.dtype:
                tensor.copy_(kept)
            else:  # a pass resized it: the saved values, as a new tensor
                table[key] = nn.Parameter(kept.clone(), tensor.requires_grad) if isinstance(
                    tensor, nn.Parameter) else kept.clone()
            if isinstance(tensor, nn.Parameter):
                tensor.grad = None
    for module, key, value in saved.attributes:
        vars(module)[key] = copy.deepcopy(value)


@dataclass
class Start:
    """What each mode starts from; :meth:`model_for` gives a mode its model."""

    model: nn.Module
    #: a copy made while the start was taken, handed to the first mode
    ready: nn.Module | None = None
    #: the fallback's saved state (the model could not be deep-copied)
    saved: _Saved | None = None
    #: for the page: what may leak between the modes (empty when nothing can)
    note: str = ""

    def model_for(self, mode: Mode) -> nn.Module:
        """The model this mode runs, in the state the setup left it."""
        if self.saved is not None:
            try:
                _reset(self.saved)
            except Exception as exc:  # noqa: BLE001  # reported as the harness step it is
                raise _failure(
                    f"could not reset the model's start state before the {mode} pass", exc,
                    "a pass must not replace the model's parameters or buffers",
                ) from None
            return self.model
        if self.ready is not None:
            ready, self.ready = self.ready, None
            return ready
        try:
            return _deep_copy(self.model)
        except Exception as exc:  # noqa: BLE001  # it was copied once: a setup-made state changed
            raise _failure(f"could not copy the model before the {mode} pass", exc,
                           "the model must be copyable with copy.deepcopy") from None


def take(model: nn.Module, name: str) -> Start:
    """Each mode's start: a deep copy, or (where that fails) a reset of the one model."""
    try:
        return Start(model, ready=_deep_copy(model))
    except Exception as exc:  # noqa: BLE001  # the fallback below, said on the page
        cause = why(exc)
    try:
        saved = _save(model, name)
    except Exception as exc:  # noqa: BLE001  # reported as the harness step it is
        raise _failure(
            "could not take the model's start state", exc,
            "the model's parameters and buffers must be readable as the code leaves it",
        ) from None
    held = ", ".join(saved.shared[:4]) + (f" and {len(saved.shared) - 4} more" if len(saved.shared) > 4 else "")
    return Start(model, saved=saved, note=(
        f"The model could not be copied whole (copy.deepcopy: {cause}), so both modes ran the "
        "one model object, reset before each mode to its parameters, buffers and the "
        "attributes that could be copied. "
        + (f"Not reset: {held}, " if held else "Not reset: its hooks, ")
        + "and anything outside the model: what one mode's passes change there may reach the next."
    ))


def guarded(step: str, notes: list[str], work: Callable[[], Any], default: Any) -> Any:
    """Run one of the comparison's own steps; a failure becomes a note, not a lost example."""
    try:
        return work()
    except Exception as exc:  # noqa: BLE001  # our own step must not cost the example
        notes.append(f"the {step} could not be made: {type(exc).__name__}: {exc}")
        return default
