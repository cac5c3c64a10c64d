"""Each mode starts from the model as the setup left it: a real build of the start-state root.

Every section's model or input holds state that a pass changes (a non-persistent
buffer, plain attributes, a generator, a parametrization, counting hooks, an ``eval()``
override, an input changed in place, lazy modules, running statistics). The oracle is
computed here with torch: the section's code run afresh for each mode, the model put
in the mode with ``model.train()`` / ``model.eval()``, seeded as the SPEC says, and
called once. Each panel must show exactly that output.
"""

from __future__ import annotations

import collections
import copy
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sphinx.testing.util import SphinxTestApp
from torch import nn

from sphinx_evaldemo.examples.model import ExampleRequest, ExampleResult
from sphinx_evaldemo.examples.worker import inputs, state
from sphinx_evaldemo.examples.worker.run import run_example
from tests.conftest import ROOTS, Build
from tests.helpers import flat, line_of, outputs, sections, seed_all, titles, warnings

SOURCE = ROOTS / "test-startstate" / "index.md"

_EXAMPLE = re.compile(r"^## (?P<name>\S+)\n\n```\{evaldemo\}\n(?P<body>.*?)\n```$", re.M | re.S)

#: Sections whose eval panel must equal a fresh model's eval output.
STATEFUL = [
    "nonpersistent-buffer", "plain-attribute", "generator-attribute", "parametrization",
    "spectral-norm", "counting-hook", "eval-override", "inplace-input", "uncopyable-input",
    "lazy", "batchnorm", "uncopyable-model",
]


def examples(path: Path = SOURCE) -> dict[str, tuple[str, str]]:
    """``{section: (code, :input:)}`` as the page has them."""
    found = {}
    for match in _EXAMPLE.finditer(path.read_text(encoding="utf-8")):
        lines = match["body"].splitlines()
        options = {line.split(":")[1]: line.split(":", 2)[2].strip() for line in lines if line.startswith(":")}
        code = "\n".join(line for line in lines if not line.startswith(":")).strip() + "\n"
        found[match["name"]] = (code, options.get("input", ""))
    return found


def fresh(code: str, expression: str, mode: str, seed: int = 0) -> Any:
    """The output a fresh model gives in ``mode``: setup run anew, the mode entered as a user does."""
    seed_all(seed)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(code, "<fresh>", "exec"), namespace)  # the page's own code
    net: nn.Module = namespace["net"]
    value = eval(expression, namespace)  # the page's own expression
    lazy = nn.modules.lazy.LazyModuleMixin
    if any(isinstance(m, lazy) and m.has_uninitialized_params() for m in net.modules()):
        # the SPEC's order: lazy modules get their shapes (one eval pass, no autograd) before
        # the start state is taken
        for module in net.modules():
            module.training = False
        with torch.no_grad():
            call(net, copy.deepcopy(value))
        for module in net.modules():
            module.training = True
    if mode == "train":
        net.train()
    else:
        net.eval()
    seed_all(seed)
    return call(net, value)


def call(net: nn.Module, value: Any) -> Any:
    return net(*value) if isinstance(value, tuple) else net(value)


@pytest.fixture(scope="module")
def app(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("startstate", "text")


@pytest.fixture(scope="module")
def page(app: SphinxTestApp) -> dict[str, str]:
    return sections((app.outdir / "index.txt").read_text(encoding="utf-8"))


def _panel(section: str, mode: str) -> list[str]:
    (title,) = [title for title in titles(section) if title.endswith(f".{mode}()")]
    return outputs(section, title)


@pytest.mark.parametrize("name", STATEFUL)
def test_each_panel_shows_what_a_fresh_model_gives_in_that_mode(page: dict[str, str], name: str) -> None:
    code, expression = examples()[name]
    for mode in ("train", "eval"):
        assert _panel(page[name], mode) == [repr(fresh(code, expression, mode))], (name, mode)


@pytest.mark.parametrize("name", sorted(set(STATEFUL) - {"eval-override", "lazy"}))
def test_the_oracle_tells_a_leak_from_a_fresh_start(name: str) -> None:
    """The eval output after a train pass on the same object differs: the check above can fail."""
    code, expression = examples()[name]
    seed_all(0)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(code, "<leaky>", "exec"), namespace)  # the page's own code
    net, value = namespace["net"], eval(expression, namespace)
    net.train()
    call(net, value)
    net.eval()
    seed_all(0)
    assert repr(call(net, value)) != repr(fresh(code, expression, "eval"))


def test_an_eval_override_runs(page: dict[str, str]) -> None:
    # the model's own eval() halves the temperature: 1 / 0.5; train(False) would not
    assert _panel(page["eval-override"], "eval") == ["tensor([2., 2.])"]
    assert _panel(page["eval-override"], "train") == ["tensor([1., 1.])"]
    code, _ = examples()["eval-override"]
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(code, "<flag-only>", "exec"), namespace)  # the page's own code
    assert repr(namespace["net"].train(False)(torch.ones(2))) == "tensor([1., 1.])"


def test_what_may_leak_is_said_on_the_page(page: dict[str, str]) -> None:
    model = flat(page["uncopyable-model"])
    assert ("Note: The model could not be copied whole (copy.deepcopy: TypeError: cannot pickle "
            "'_thread.lock' object), so both modes ran the one model object") in model
    assert 'Not reset: "net.lock" (lock)' in model
    given = flat(page["uncopyable-input"])
    assert ('Note: The input "(torch.ones(2), lock)" could not be copied whole (copy.deepcopy: '
            "TypeError: cannot pickle '_thread.lock' object), so each pass got a copy with its "
            "tensors cloned one by one; the item [1] (lock) could not be copied") in given
    for name in set(STATEFUL) - {"uncopyable-model", "uncopyable-input"}:
        assert "could not be copied" not in page[name], name


def test_a_generator_input_is_a_warning_that_says_what_to_pass(app: SphinxTestApp, page: dict[str, str]) -> None:
    source = SOURCE.read_text(encoding="utf-8")
    found = [w for w in warnings(app.warning.getvalue()) if w.type == "evaldemo.input"]
    assert [(w.file, w.line) for w in found] == [
        ("index.md", line_of(source, "```{evaldemo}", after="## generator-input"))]
    (warned,) = found
    assert warned.message.startswith(
        ":input: '(torch.ones(2) * i for i in range(3))' is a generator: an iterator is used up by "
        "the first mode")
    assert "pass a tensor or a tuple instead" in warned.message
    assert "model.eval()" not in page["generator-input"] and "net.eval()" not in page["generator-input"]


def test_a_module_without_super_init_is_named_as_such(app: SphinxTestApp) -> None:
    source = SOURCE.read_text(encoding="utf-8")
    found = [w for w in warnings(app.warning.getvalue()) if w.type == "evaldemo.model"]
    assert [(w.file, w.line) for w in found] == [
        ("index.md", line_of(source, "```{evaldemo}", after="## broken-module"))]
    assert found[0].message.startswith(
        "`net` (Forgetful) was never set up as a torch.nn.Module: Forgetful.__init__ does not "
        "call super().__init__()")
    assert "lazy" not in found[0].message


def test_no_other_warnings(app: SphinxTestApp) -> None:
    assert sorted(w.type for w in warnings(app.warning.getvalue())) == ["evaldemo.input", "evaldemo.model"]


def test_detection_reads_torchscript_and_mixins(page: dict[str, str]) -> None:
    assert "Mode-dependent layers: \"net._modules['1']\" (Dropout, p=0.5)" in flat(page["scripted"])
    assert 'Mode-dependent layers: "net" (Halving)' in flat(page["mixin"])
    code, expression = examples()["mixin"]
    assert _panel(page["mixin"], "eval") == [repr(fresh(code, expression, "eval"))]


# --- the worker's side, in this process ---------------------------------------------


def _run(code: str, **options: Any) -> ExampleResult:
    return run_example(ExampleRequest(code=code, **options), np.get_printoptions())


def _outputs(result: ExampleResult) -> dict[str, tuple[str, ...]]:
    assert result.failure is None, result.failure
    return {run.mode: run.outputs for run in result.runs}


def test_passes_within_a_mode_continue_from_that_modes_state() -> None:
    code, expression = examples()["plain-attribute"]
    found = _outputs(_run(code, input=expression, repeat=2))
    # two passes of a fresh model, in each mode: calls 1 then 2 (x * calls + len(history))
    assert found == {"train": ("tensor([2., 2.])", "tensor([4., 4.])"),
                     "eval": ("tensor([2., 2.])", "tensor([4., 4.])")}


HOOK_ON_THE_MODEL = """\
import torch
import torch.nn as nn

net = nn.Linear(2, 2, bias=False)
nn.init.ones_(net.weight)
seen = []

def remember(module, args, output):
    seen.append(module is net)  # the global name: the model as the code bound it
    return output * sum(seen)

net.register_forward_hook(remember)
"""


def test_a_hooks_globals_are_the_modes_own() -> None:
    result = _run(HOOK_ON_THE_MODEL, input="torch.ones(1, 2)", repeat=2)
    # as a fresh model: each mode's first pass is the hook's first call (output * 1), and
    # the hook's `net` is the model that mode runs (else `seen` would hold False)
    passes = ("tensor([[2., 2.]], grad_fn=<MulBackward0>)", "tensor([[4., 4.]], grad_fn=<MulBackward0>)")
    assert _outputs(result) == {"train": passes, "eval": passes}


def test_a_closure_over_the_model_refers_to_the_copy() -> None:
    model = nn.Linear(2, 2)
    calls: list[bool] = []

    def check(module: nn.Module, args: Any, output: Any) -> None:
        calls.append(module is model)

    model.register_forward_hook(check)
    start = state.take(model, "net")
    copied = start.model_for("train")
    copied(torch.ones(1, 2))
    assert copied is not model and calls == []  # the copy's hook appends to its own list
    hook = next(iter(copied._forward_hooks.values()))
    assert hook.__closure__ is not None
    cells = {type(cell.cell_contents).__name__: cell.cell_contents for cell in hook.__closure__}
    assert cells["list"] == [True] and cells["Linear"] is copied


class _Locked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.weight = nn.Parameter(torch.ones(2))
        self.register_buffer("seen", torch.zeros(2), persistent=False)
        self.calls = 0
        self.log: list[int] = []


def test_the_fallback_resets_parameters_every_buffer_and_copyable_attributes() -> None:
    model = _Locked()
    start = state.take(model, "net")
    assert start.ready is None and start.note.startswith("The model could not be copied whole")
    assert 'Not reset: `net.lock` (lock)' in start.note
    first = start.model_for("train")
    assert first is model
    weight = model.weight
    with torch.no_grad():
        model.weight.mul_(5)
    model.seen += 3
    model.calls, model.log = 7, [1, 2]
    second = start.model_for("eval")
    assert second is model and model.weight is weight  # the same parameter object, reset
    assert torch.equal(model.weight, torch.ones(2)) and torch.equal(model.seen, torch.zeros(2))
    assert (model.calls, model.log) == (0, [])


Point = collections.namedtuple("Point", "x y")


@pytest.mark.parametrize(("value", "found"), [
    (torch.ones(2), None),
    ((torch.ones(2), torch.zeros(1)), None),
    (iter([torch.ones(2)]), ("", "list_iterator")),
    ((torch.ones(1) for _ in range(2)), ("", "generator")),
    ((torch.ones(2), map(abs, [1])), ("[1]", "map")),
    ({"a": [torch.ones(1), zip([1], [2], strict=True)]}, ("['a'][1]", "zip")),
    ([1, 2, 3], None),
    (range(3), None),  # a range is re-iterable: not consumed
])
def test_iterators_in_the_input_are_found(value: Any, found: tuple[str, str] | None) -> None:
    assert inputs.iterator_in(value) == found


def test_an_input_that_cannot_be_deep_copied_is_cloned_leaf_by_leaf() -> None:
    lock = threading.Lock()
    grad = torch.ones(2, requires_grad=True)
    value = (Point(torch.ones(2), [grad, {"k": torch.zeros(1)}]), lock)
    copies = inputs.input_copies(value, "`x`")
    assert not copies.deep
    assert copies.note.endswith("the item [1] (lock) could not be copied and was shared by the "
                                "passes: what one pass changes in it reaches the next.")
    fresh_value = copies.fresh()
    point, shared = fresh_value
    assert isinstance(point, Point) and shared is lock
    assert point.x is not value[0].x and torch.equal(point.x, value[0].x)
    copied_grad = point.y[0]
    assert copied_grad is not grad and copied_grad.is_leaf and copied_grad.requires_grad
    point.y[1]["k"].add_(1)
    assert torch.equal(value[0].y[1]["k"], torch.zeros(1))


def test_an_input_that_can_be_deep_copied_has_no_note() -> None:
    copies = inputs.input_copies((torch.ones(2), {"a": [1]}), "`x`")
    assert copies.deep and copies.note == ""


def _spectral() -> nn.Module:
    return nn.Sequential(nn.utils.parametrizations.spectral_norm(nn.Linear(4, 4)),
                         nn.utils.spectral_norm(nn.Linear(4, 4)))


def _lazy() -> nn.Module:
    model = nn.Sequential(nn.LazyLinear(4), nn.LazyBatchNorm1d())
    model(torch.randn(3, 4))
    return model


class _Everything(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 4, num_layers=2, dropout=0.5)
        self.norm = nn.BatchNorm1d(4)
        self.shared = nn.Linear(4, 4)
        self.again = self.shared  # one module under two names
        self.register_buffer("extra", torch.arange(4.0), persistent=False)
        self.gen = torch.Generator().manual_seed(3)
        self.table = {"k": [1, 2]}
        self.register_forward_hook(lambda module, args, output: output + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x.unsqueeze(0))
        noise = torch.rand(x.shape, generator=self.gen)
        return self.again(self.norm(out[0])) + self.extra + noise


COPIED: dict[str, Any] = {
    "sequential": lambda: nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.5)),
    "spectral-norms": _spectral,
    "lazy-materialised": _lazy,
    "everything": _Everything,
    "transformer": lambda: nn.TransformerEncoderLayer(4, 2, 8, batch_first=True),
}


@pytest.mark.parametrize("name", COPIED)
def test_a_mode_copy_is_a_deep_copy_that_runs_as_the_original(name: str) -> None:
    model = COPIED[name]()
    copied = state.take(model, "net").model_for("train")
    reference = copy.deepcopy(model)
    for mine, theirs, original in zip(copied.modules(), reference.modules(), model.modules(), strict=True):
        assert type(mine) is type(theirs) and sorted(vars(mine)) == sorted(vars(theirs))
        for (key, a), (_, b), (_, c) in zip(
                [*mine.named_parameters(recurse=False), *mine.named_buffers(recurse=False)],
                [*theirs.named_parameters(recurse=False), *theirs.named_buffers(recurse=False)],
                [*original.named_parameters(recurse=False), *original.named_buffers(recurse=False)],
                strict=True):
            assert torch.equal(a, b), key
            assert a.data_ptr() != c.data_ptr() and type(a) is type(c), key
    # aliasing inside the model is kept: the same module under two names, LSTM's flat weights
    if name == "everything":
        assert copied.again is copied.shared
        assert copied.lstm._flat_weights[0] is copied.lstm.weight_ih_l0
    x = torch.randn(3, 4)
    for mode in ("train", "eval"):
        outs = []
        for which in (copy.deepcopy(copied), copy.deepcopy(reference)):  # each from the start
            which.train(mode == "train")
            seed_all(0)
            outs.append(which(x))
        assert torch.equal(outs[0], outs[1]), mode


def test_what_a_models_own_eval_prints_and_raises_is_the_modes() -> None:
    code = """\
import torch
import torch.nn as nn

class Loud(nn.Module):
    def eval(self):
        print("entering eval")
        return super().eval()

    def forward(self, x):
        return x

net = Loud()
"""
    result = _run(code, input="torch.ones(1)")
    assert {run.mode: run.printed for run in result.runs} == {"train": "", "eval": "entering eval\n"}
    failing = _run(code.replace('print("entering eval")', 'raise ValueError("frozen")'),
                   input="torch.ones(1)")
    assert failing.failure is not None and failing.failure.kind == "exception"
    assert failing.failure.message == "model.eval(): ValueError: frozen"
    assert [run.mode for run in failing.runs] == ["train"]
