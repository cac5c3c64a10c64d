"""The divergence trace and the run's notes, from real runs in this process (no Sphinx here)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from sphinx_evaldemo.examples import trace
from sphinx_evaldemo.examples.model import ExampleRequest, ExampleResult, LayerDiff, Trace
from sphinx_evaldemo.examples.worker.run import run_example
from tests.helpers import seed_all
from tests.unit.test_equality import reference

NUMPY_PRINT = np.get_printoptions()


def run(code: str, **options: Any) -> ExampleResult:
    return run_example(ExampleRequest(code=code, **options), NUMPY_PRINT)


def traced(code: str, **options: Any) -> Trace:
    result = run(code, **options)
    assert result.ok, result.failure
    assert result.trace is not None
    return result.trace


def direct_outputs(make: str, x: str, seed: int = 0) -> dict[str, list[torch.Tensor]]:
    """Each leaf module's output in train and in eval, computed here with plain torch."""
    found: dict[str, list[torch.Tensor]] = {"train": [], "eval": []}
    seed_all(seed)
    namespace: dict[str, Any] = {"torch": torch, "nn": nn}
    exec(make, namespace)  # the same code the worker runs
    net, value = namespace["net"], eval(x, namespace)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    for mode in ("train", "eval"):
        net.load_state_dict(state)
        net.train(mode == "train")
        hooks = [m.register_forward_hook(
            lambda _m, _a, out, mode=mode: found[mode].append(out.detach().clone()))
            for m in net.modules() if not m._modules]
        seed_all(seed)
        net(value.clone())
        for hook in hooks:
            hook.remove()
    return found


MLP_BN = "net = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 2))\n"
MLP = "net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 2))\n"
IMPORTS = "import torch\nimport torch.nn as nn\n"


@pytest.mark.parametrize(("make", "parts"), [(MLP_BN, "net[1]"), (MLP, "net[2]")], ids=["with-batchnorm", "without"])
def test_the_modes_part_at_the_first_layer_that_differs_on_equal_inputs(make: str, parts: str) -> None:
    found = traced(IMPORTS + make, input="torch.randn(4, 6)")
    assert found.parting == (parts,)
    assert [row.name for row in found.layers if row.parts] == [parts]
    names = [row.name for row in found.layers]
    after = names[names.index(parts) + 1:]
    # before the parting: equal inputs and outputs; after it: inputs already differ
    assert all(row.equal and row.inputs_equal for row in found.layers[: names.index(parts)])
    assert all(not row.inputs_equal for row in found.layers if row.name in after)


@pytest.mark.parametrize("make", [MLP_BN, MLP], ids=["with-batchnorm", "without"])
def test_per_layer_figures_equal_those_computed_with_torch(make: str) -> None:
    found = traced(IMPORTS + make, input="torch.randn(4, 6)")
    direct = direct_outputs(make, "torch.randn(4, 6)")
    assert len(found.layers) == len(direct["train"]) == found.calls
    for row, a, b in zip(found.layers, direct["train"], direct["eval"], strict=True):
        exact, close = reference(a, b)
        differs = ~close  # equal up to rounding is not a difference
        assert row.total == a.numel()
        assert row.differing == int(differs.sum())
        assert row.equal == bool(close.all())
        assert (row.verdict == "rounding") == bool(close.all() and not exact.all())
        # float32, as the model computes: no widening on either side
        assert row.max_abs_diff == (float((a - b).abs()[differs].max()) if differs.any()
                                    else float((a - b).abs().max()))


def test_rrelu_spectral_norm_transformer_and_lstm_part_where_the_mode_is_read() -> None:
    cases = {
        "nn.RReLU(0.1, 0.3)": ("-torch.ones(2, 4)", ("net",)),
        "nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)": (
            "torch.randn(1, 3, 8)", ("net.self_attn",)),
        "nn.LSTM(4, 3, num_layers=2, dropout=0.5)": ("torch.randn(5, 1, 4)", ("net",)),
    }
    for make, (value, parting) in cases.items():
        assert traced(f"{IMPORTS}net = {make}\n", input=value).parting == parting, make


def test_spectral_norm_weights_equal_up_to_rounding_do_not_part() -> None:
    code = f"{IMPORTS}net = nn.utils.parametrizations.spectral_norm(nn.Linear(4, 3))\n"
    found = traced(code, input="torch.randn(2, 4)")
    (row,) = found.layers
    # train's power iteration moves the weight by a few units in the last place only
    assert (row.name, row.equal, row.verdict, row.differing) == (
        "net.parametrizations.weight[0]", True, "rounding", 0)
    assert 0 < (row.max_abs_diff or 0) < 1e-6
    assert found.parting == ()
    assert found.differing_calls == 0


def test_structured_outputs_are_compared_leaf_by_leaf() -> None:
    code = IMPORTS + "net = nn.Sequential(nn.Dropout(0.5), nn.LSTM(4, 3))\n"
    found = traced(code, input="torch.ones(5, 1, 4)")
    lstm = next(row for row in found.layers if row.name == "net[1]")
    # output (5, 1, 3) plus h and c (1, 1, 3) each: every leaf is counted
    assert lstm.total == 15 + 3 + 3
    assert found.parting == ("net[0]",)


def test_a_module_called_twice_gets_a_row_per_call() -> None:
    code = IMPORTS + """\
class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.lin(self.drop(self.lin(x)))

net = Twice()
"""
    found = traced(code, input="torch.randn(4, 3)")
    assert [row.name for row in found.layers] == ["net.lin (call 1)", "net.drop", "net.lin (call 2)"]
    assert found.parting == ("net.drop",)
    assert [row.inputs_equal for row in found.layers] == [True, True, False]


def test_a_mode_dependent_container_is_not_the_parting_when_its_child_is() -> None:
    code = IMPORTS + """\
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(x) * (2 if self.training else 1)

net = nn.Sequential(nn.Linear(3, 3), Block())
"""
    assert traced(code, input="torch.randn(4, 3)").parting == ("net[1].drop",)


def test_thousands_of_layers_give_the_parting_and_a_capped_table() -> None:
    code = IMPORTS + "net = nn.Sequential(*[nn.Tanh() for _ in range(600)], nn.Dropout(0.5), *[nn.Tanh() for _ in range(600)])\n"
    found = traced(code, input="torch.randn(2, 4)")
    assert found.calls == 1201
    assert found.parting == ("net[600]",)
    assert len(found.layers) == trace.MAX_ROWS
    assert found.before == 600 - trace.CONTEXT
    assert found.layers[trace.CONTEXT].name == "net[600]"
    assert found.after == 1201 - found.before - trace.MAX_ROWS
    assert found.differing_after == found.after
    assert found.largest_after is not None


def test_past_the_element_budget_only_checksums_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "ELEMENT_BUDGET", 4)  # smaller than any output
    found = traced(IMPORTS + MLP, input="torch.randn(4, 6)")
    assert found.parting == ("net[2]",)
    # equal checksums are exact: 0; a difference past the budget cannot be sized
    assert [(row.equal, row.max_abs_diff, row.differing) for row in found.layers] == [
        (True, 0.0, 0), (True, 0.0, 0), (False, None, None), (False, None, None)]


def test_lazy_modules_are_materialised_before_the_start_state() -> None:
    code = IMPORTS + "net = nn.Sequential(nn.LazyLinear(3), nn.LazyBatchNorm1d())\n"
    result = run(code, input="torch.randn(4, 5)")
    assert result.ok, result.failure
    assert result.trace is not None and result.trace.parting == ("net[1]",)
    assert [m.name for m in result.mode_dependent] == ["net[1]"]
    # both modes started from the same materialised weights: the Linear agrees
    assert result.trace.layers[0] == LayerDiff(
        "net[0]", "Linear", "in_features=5, out_features=3", True, True, 0.0, 0, 12)
    assert {run.mode: run.buffers_changed for run in result.runs} == {
        "train": ("net[1].running_mean", "net[1].running_var", "net[1].num_batches_tracked"),
        "eval": (),
    }


def test_lazy_modules_with_a_wrong_input_fail_with_the_cause() -> None:
    code = IMPORTS + "net = nn.Sequential(nn.LazyLinear(3), nn.Linear(4, 2))\n"
    result = run(code, input="torch.randn(4, 5)")
    assert result.failure is not None
    assert result.failure.message.startswith("could not materialise the lazy modules")
    assert "mat1 and mat2 shapes cannot be multiplied" in result.failure.message


def test_a_model_that_cannot_be_copied_runs_from_the_fallback_with_a_note() -> None:
    code = IMPORTS + """\
class NoCopy(nn.Linear):
    def __deepcopy__(self, memo):
        raise TypeError("cannot pickle 'Lock' object")

net = NoCopy(2, 2)
"""
    result = run(code, input="torch.ones(1, 2)")
    assert result.ok, result.failure
    (note,) = result.notes
    assert note.startswith(
        "The model could not be copied whole (copy.deepcopy: TypeError: cannot pickle 'Lock' object)")


def test_eval_randomness_is_explained_and_located() -> None:
    code = IMPORTS + """\
import torch.nn.functional as F

class Head(nn.Module):
    def forward(self, x):
        return F.dropout(x, 0.5)  # forgets training=self.training

net = nn.Sequential(nn.Linear(4, 4), Head())
"""
    result = run(code, input="torch.randn(3, 4)")
    runs = {r.mode: r for r in result.runs}
    assert runs["eval"].deterministic is False
    assert runs["eval"].varied == ("net[1]",)
    (note,) = result.notes
    assert note.startswith("In eval mode a second pass gave different values; "
                           "the first module whose output varied is `net[1]` (Head).")
    assert "F.dropout(x, 0.5) without training=self.training" in note


def test_a_module_changing_buffers_in_eval_is_named() -> None:
    code = IMPORTS + """\
class Counts(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("seen", torch.zeros(()))

    def forward(self, x):
        self.seen += 1
        return x

net = nn.Sequential(nn.Linear(2, 2), Counts())
"""
    result = run(code, input="torch.ones(1, 2)")
    assert {r.mode: r.buffers_changed for r in result.runs}["eval"] == ("net[1].seen",)
    assert result.notes == (
        "In eval mode `net[1]` (Counts) changed its buffers (seen): each eval pass starts "
        "from a different state, which eval mode usually promises not to do.",
    )


def test_hooks_are_removed_and_leave_the_users_own_hooks_alone() -> None:
    code = IMPORTS + """\
net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
net[0].register_forward_hook(lambda m, a, out: print("user hook saw", tuple(out.shape)))
"""
    result = run(code, input="torch.ones(1, 2)")
    assert [r.printed for r in result.runs] == ["user hook saw (1, 2)\n"] * 2
    assert result.trace is not None and result.trace.parting == ("net[1]",)
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    recorder = trace.Recorder(model)
    recorder.attach()
    calls = recorder.reference()
    model(torch.ones(1, 2))
    recorder.detach()
    assert [(call.qualname, call.number, call.leaf) for call in calls] == [
        ("", 1, False), ("0", 1, True), ("1", 1, True)]
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_a_single_mode_has_no_trace() -> None:
    result = run(IMPORTS + MLP, input="torch.randn(4, 6)", modes=("eval",))
    assert result.ok and result.trace is None


def test_a_module_called_in_one_mode_only_is_said_so() -> None:
    code = IMPORTS + """\
class Extra(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.extra = nn.Linear(4, 4)

    def forward(self, x):
        x = self.a(x)
        return self.extra(x) if self.training else x

net = Extra()
"""
    found = traced(code, input="torch.randn(2, 4)")
    assert [(row.name, row.equal, row.note) for row in found.layers] == [
        ("net", False, ""), ("net.a", True, ""), ("net.extra", False, "called in train only")]
    assert found.parting == ("net",)


def test_in_place_modules_leave_the_kept_outputs_alone() -> None:
    make = "net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(inplace=True), nn.Dropout(0.5, inplace=True))\n"
    found = traced(IMPORTS + make, input="torch.randn(3, 4)")
    direct = direct_outputs(make.replace("inplace=True", "inplace=False"), "torch.randn(3, 4)")
    assert found.parting == ("net[1]",)
    for row, a, b in zip(found.layers, direct["train"], direct["eval"], strict=True):
        assert row.differing == int((a != b).sum()), row.name


def test_a_script_module_runs_and_says_why_it_has_no_trace() -> None:
    # torch deprecates TorchScript (the example silences that), yet such models reach pages
    code = IMPORTS + """\
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    net = torch.jit.script(nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5)))
"""
    result = run(code, input="torch.randn(2, 4)")
    assert result.ok and result.trace is None
    assert result.comparison is not None and result.comparison.differ
    (note,) = result.notes
    assert note.startswith("the trace could not be made: RuntimeError: ")
