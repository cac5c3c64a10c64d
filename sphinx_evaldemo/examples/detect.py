"""Which modules behave differently in train and eval, read from their classes' code (worker only).

A module depends on the mode when its own class code reads ``training`` or overrides
``train()`` or ``eval()``. "Its own class code" is ``forward`` and every method, property or
module-level helper it reaches by name, through every class of its MRO but ``nn.Module``
itself (torch's classes as well as the user's, and mixins that are not modules);
forward hooks and pre-hooks on the instance count too (the old hook-based
``nn.utils.spectral_norm``). The bytecode says whether ``training`` is read, so no list
of torch classes has to be kept up to date. A TorchScript module is read through the
code TorchScript compiled for it, since its Python class is torch's wrapper.

A few explicit rules then *refine* the answer for modules that read the mode but, with
their present settings, cannot change the result (dropout with ``p=0``, normalisation
without running statistics, a one-layer RNN): they are still listed, with the reason.
"""

from __future__ import annotations

import inspect
import keyword
import re
import types
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from .model import ModeModule

#: How deep the scan follows calls by name from ``forward`` (each level: one call).
MAX_DEPTH = 6

#: Characters of a module's full ``repr`` kept for the page (hover, folded text).
MAX_REPR = 2000


def _functions(value: Any) -> Iterator[types.FunctionType]:
    """The plain functions behind a class attribute (method, static/class method, property)."""
    if isinstance(value, property):
        for accessor in (value.fget, value.fset):
            if accessor is not None:
                yield from _functions(accessor)
        return
    if isinstance(value, staticmethod | classmethod | types.MethodType):
        value = value.__func__
    with_wrapped = inspect.unwrap(value) if callable(value) else value
    if isinstance(with_wrapped, types.FunctionType):
        yield with_wrapped


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """A code object and the code of every function, lambda and comprehension inside it."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _own_classes(cls: type) -> list[type]:
    """Every class in the MRO whose code may run: mixins that are not modules included.

    ``nn.Module``'s own code sets the flag and ``object`` has none; torch's TorchScript
    wrappers are read through their compiled code instead (:func:`_script_reads_mode`).
    """
    return [klass for klass in cls.__mro__ if klass not in (nn.Module, object)]


def _before_module(cls: type) -> list[type]:
    """The classes that come before ``nn.Module`` in the MRO: a method there overrides its."""
    mro = cls.__mro__
    end = mro.index(nn.Module) if nn.Module in mro else len(mro)
    return [klass for klass in mro[:end] if klass is not object]


def _reads_training(
    functions: list[types.FunctionType], classes: list[type], seen: set[types.CodeType], depth: int
) -> bool:
    """Whether these functions, or what they reach by name, read ``training``."""
    for function in functions:
        code = function.__code__
        if code in seen:
            continue
        seen.add(code)
        names: set[str] = set()
        for inner in _codes(code):
            names.update(inner.co_names)
        if "training" in names:
            return True
        if depth >= MAX_DEPTH:
            continue
        reached: list[types.FunctionType] = []
        for name in names:
            # every definition in the MRO, so ``super().forward(...)`` is followed too
            for klass in classes:
                if name in vars(klass):
                    reached.extend(_functions(vars(klass)[name]))
            helper = function.__globals__.get(name)
            if isinstance(helper, types.FunctionType) and not helper.__module__.startswith("torch"):
                reached.append(helper)  # the user's own module-level helper
        if _reads_training(reached, classes, seen, depth + 1):
            return True
    return False


#: Answers per class: a model with a thousand layers of one class reads its code once.
_ANSWERS: dict[type, bool] = {}


def class_reads_mode(cls: type) -> bool:
    """Whether a module class's code reads ``training`` or overrides ``train()`` or ``eval()``."""
    if cls not in _ANSWERS:
        classes = _own_classes(cls)
        overriding = _before_module(cls)
        starts = [function for klass in overriding if "forward" in vars(klass)
                  for function in _functions(vars(klass)["forward"])]
        # an ``eval()`` of its own runs too: the harness enters the modes as a user does
        _ANSWERS[cls] = any("train" in vars(klass) or "eval" in vars(klass)
                            for klass in overriding) or _reads_training(
            starts, classes, set(), 0)
    return _ANSWERS[cls]


#: ``self.training`` in the code TorchScript compiled (``training = self.training``).
_SCRIPT_TRAINING = re.compile(r"\bself\.training\b")


def _script_reads_mode(module: torch.jit.ScriptModule) -> bool:
    """Whether a TorchScript module's own compiled methods read ``training``.

    Its Python class is torch's wrapper, whose code says nothing about the model: the
    methods TorchScript compiled are read instead. A traced module records the mode it
    was traced in as a constant, so its code does not read the flag, and it is rightly
    not listed.
    """
    compiled = module._c
    return any(_SCRIPT_TRAINING.search(compiled._get_method(method).code)
               for method in compiled._method_names())


def is_script(module: nn.Module) -> bool:
    return isinstance(module, torch.jit.ScriptModule)


def _hooks_read_mode(module: nn.Module) -> bool:
    """Forward (pre-)hooks on this instance whose code reads ``training``."""
    hooks: list[Callable[..., Any]] = [
        *module._forward_pre_hooks.values(), *module._forward_hooks.values()
    ]
    for hook in hooks:
        plain = isinstance(hook, types.FunctionType | types.MethodType)
        target = hook if plain else vars(type(hook)).get("__call__")  # a callable object's method
        functions = list(_functions(target)) if target is not None else []
        classes = [klass for klass in type(hook).__mro__ if klass is not object]
        if _reads_training(functions, classes, set(), 0):
            return True
    return False


def reads_mode(module: nn.Module) -> bool:
    """Whether this module (not its children) reads the mode."""
    if is_script(module):
        return _script_reads_mode(module) or _hooks_read_mode(module)  # type: ignore[arg-type]
    return class_reads_mode(type(module)) or _hooks_read_mode(module)


def broken(model: nn.Module, name: str) -> str:
    """Why the model cannot run as a module ("" when it can): a module whose ``__init__``
    never called ``super().__init__()`` lacks the tables every module method reads."""
    pending: list[tuple[str, nn.Module]] = [("", model)]
    seen: set[int] = set()
    while pending:
        qualname, module = pending.pop(0)
        if id(module) in seen:
            continue
        seen.add(id(module))
        children = vars(module).get("_modules")
        if children is None or "_parameters" not in vars(module):
            kind = type(module).__name__
            where = access_path(name, qualname, model) if qualname else name
            return (f"`{where}` ({kind}) was never set up as a torch.nn.Module: {kind}.__init__ "
                    "does not call super().__init__(); call super().__init__() first in "
                    f"{kind}.__init__, before assigning anything to self")
        pending += [(f"{qualname}.{key}" if qualname else key, child)
                    for key, child in children.items() if child is not None]
    return ""


def _code_class(module: nn.Module) -> type:
    """The class whose code the module runs: for a TorchScript module, the ``torch.nn``
    class it was compiled from where it is one (its own Python class is torch's wrapper)."""
    if is_script(module):
        original = getattr(nn, str(getattr(module, "original_name", "")), None)
        if isinstance(original, type) and issubclass(original, nn.Module):
            return original
    return type(module)


def kind_of(module: nn.Module) -> str:
    """The type a reader knows the module by: ``Dropout`` for a scripted dropout too."""
    if is_script(module):
        return str(getattr(module, "original_name", "") or type(module).__name__)
    return type(module).__name__


def no_effect(module: nn.Module) -> str:
    """Why a module that reads the mode cannot change the result with its settings ("" if it can)."""
    try:
        return _no_effect(module, _code_class(module))
    except Exception:  # noqa: BLE001  # a scripted module without the attribute: no reason given
        return ""


def _no_effect(module: Any, cls: type) -> str:
    # ``Any``: a scripted module's settings are attributes of the wrapper
    if issubclass(cls, nn.modules.dropout._DropoutNd) and float(module.p) == 0:
        return "reads the mode, but with p=0 it changes nothing"
    if issubclass(cls, nn.modules.instancenorm._InstanceNorm) and not module.track_running_stats:
        return "reads the mode, but without running statistics it normalises the same way in both"
    if issubclass(cls, nn.modules.batchnorm._BatchNorm) and not module.track_running_stats:
        return "reads the mode, but without running statistics it uses batch statistics in both"
    if issubclass(cls, nn.RNNBase) and (float(module.dropout) == 0 or module.num_layers == 1):
        return "reads the mode, but dropout between layers needs dropout > 0 and num_layers > 1"
    if issubclass(cls, nn.MultiheadAttention) and float(module.dropout) == 0:
        return "reads the mode, but with dropout=0 only the choice of kernel can change"
    return ""


def access_path(root: str, qualname: str, model: nn.Module) -> str:
    """``net[2]``, ``net.encoder.dropout``, ``net.blocks["a b"]``: how the code reaches a submodule."""
    path, module = root, model
    for part in qualname.split(".") if qualname else ():
        indexable = isinstance(module, nn.Sequential | nn.ModuleList)
        if part.isdigit() and indexable:
            path += f"[{part}]"
        elif part.isidentifier() and not keyword.iskeyword(part):
            path += f".{part}"
        else:
            path += f"._modules[{part!r}]"
        module = module._modules[part] or module
    return path


def _top_level(text: str) -> list[str]:
    """Split at the commas outside brackets: ``(8,), eps=1e-05`` is two items."""
    items, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            items.append(text[start:index])
            start = index + 1
    return [*items, text[start:]]


#: ``__init__`` defaults per class, as ``repr`` text: read once per class.
_DEFAULTS: dict[type, dict[str, str]] = {}


def _defaults(cls: type) -> dict[str, str]:
    if cls not in _DEFAULTS:
        try:
            parameters = inspect.signature(cls).parameters.items()
            _DEFAULTS[cls] = {name: repr(parameter.default) for name, parameter in parameters
                              if parameter.default is not inspect.Parameter.empty}
        except (TypeError, ValueError):  # a signature Python cannot read
            _DEFAULTS[cls] = {}
    return _DEFAULTS[cls]


def _settings(module: nn.Module) -> str:
    """The module's own settings, short: its first one, then those not at their defaults."""
    cls = _code_class(module)
    if is_script(module) and cls is type(module):
        return ""  # a scripted module of the user's class: its settings are not known
    text: str = cls.extra_repr(module) if issubclass(cls, nn.Module) else module.extra_repr()
    items = [item.strip() for item in _top_level(text) if item.strip()]
    items = [item for item in items if item != "inplace=False"]
    defaults = _defaults(cls)
    kept = items[:1] + [
        item for item in items[1:]
        if "=" not in item or defaults.get(item.split("=", 1)[0]) != item.split("=", 1)[1]
    ]
    text = ", ".join(kept)
    return text if len(text) <= 48 else text[:47] + "…"


def short(module: nn.Module) -> tuple[str, str]:
    """``("Dropout", "p=0.5")``: a module's type and short settings."""
    try:
        return kind_of(module), _settings(module)
    except Exception:  # noqa: BLE001  # a user's extra_repr may raise
        return kind_of(module), ""


def describe(module: nn.Module) -> tuple[str, str, str]:
    """``("Dropout", "p=0.5", full repr)``: a module's type, short settings and full ``repr``."""
    try:
        full = repr(module)
    except Exception as exc:  # noqa: BLE001  # a user's extra_repr may raise
        full = f"{kind_of(module)}(<repr failed: {type(exc).__name__}>)"
    kind, settings = short(module)
    return kind, settings, full[:MAX_REPR]


def mode_dependent(model: nn.Module, name: str) -> tuple[ModeModule, ...]:
    """Every submodule (the model included) whose own code reads the mode, in model order."""
    found = []
    for qualname, module in model.named_modules():
        if reads_mode(module):
            kind, settings, full = describe(module)
            found.append(ModeModule(
                name=access_path(name, qualname, model), type=kind, settings=settings,
                full=full, no_effect=no_effect(module),
            ))
    return tuple(found)
