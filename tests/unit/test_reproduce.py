"""The reproduce script: what it is offered for, what it holds, and that it prints what the worker computed."""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sphinx_evaldemo.examples import reproduce
from sphinx_evaldemo.examples.model import (
    ExampleRequest,
    ExampleResult,
    Failure,
    LayerDiff,
    ModeModule,
    ModeRun,
    Trace,
)
from sphinx_evaldemo.examples.worker.run import run_example

DROPOUT = "import torch\nfrom torch import nn\n\nnet = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))\n"
COMPARED = ExampleRequest(code=DROPOUT, input="torch.randn(2, 4)")
RUN = ModeRun(mode="train", outputs=("tensor([1.])",))


@pytest.mark.parametrize(("request_", "result", "offered"), [
    (COMPARED, ExampleResult(runs=(RUN,)), True),
    (None, ExampleResult(runs=(RUN,)), False),  # the options were wrong
    (ExampleRequest(code=DROPOUT), ExampleResult(), False),  # not compared: as written
    (COMPARED, None, False),  # no result
    (COMPARED, ExampleResult(failure=Failure("exception", "boom")), False),  # no panel
    (COMPARED, ExampleResult(runs=(RUN,), failure=Failure("exception", "eval raised")), True),
    (COMPARED, ExampleResult(runs=(RUN,), notes=(
        "The model could not be copied whole (copy.deepcopy: TypeError: x), so ...",)), False),
    (COMPARED, ExampleResult(runs=(RUN,), notes=(
        "The input `x` could not be copied whole (copy.deepcopy: TypeError: x), so ...",)), False),
])
def test_offered(request_: ExampleRequest | None, result: ExampleResult | None, offered: bool) -> None:
    assert reproduce.offered(request_, result) is offered


@pytest.mark.parametrize(("request_", "result", "name"), [
    (ExampleRequest(code="", input="x", model="mine"), ExampleResult(), "mine"),
    (COMPARED, ExampleResult(mode_dependent=(ModeModule("net[1]", "Dropout"),)), "net"),
    (COMPARED, ExampleResult(runs=(ModeRun("train", (), buffers_changed=("bn.running_mean",)),)), "bn"),
    (COMPARED, ExampleResult(runs=(ModeRun("train", (), varied=("model.drop",)),)), "model"),
    (COMPARED, ExampleResult(trace=Trace(("train", "eval"), (LayerDiff("enc._modules['a b']", "Linear"),))), "enc"),
    (COMPARED, ExampleResult(), None),  # nothing names it: the script looks for it
])
def test_model_name(request_: ExampleRequest, result: ExampleResult, name: str | None) -> None:
    assert reproduce.model_name(request_, result) == name


def test_versions_leave_out_the_extension() -> None:
    fingerprint = "python=3.11.7 torch=2.13.0+cpu numpy=2.4.6 sphinx-evaldemo=0.1.0"
    assert reproduce.versions(fingerprint) == "python 3.11.7, torch 2.13.0+cpu, numpy 2.4.6"


def test_file_name_is_a_hash_of_the_text() -> None:
    assert reproduce.file_name("a") == reproduce.file_name("a") != reproduce.file_name("b")
    assert re.fullmatch(r"evaldemo-[0-9a-f]{16}\.py", reproduce.file_name("a"))


LAZY = "import torch\nfrom torch import nn\n\nnet = nn.Sequential(nn.LazyLinear(3), nn.Dropout(0.5))\n"
LOCAL = "import torch\nimport helpers\n\nnet = helpers.make()\n"


@pytest.mark.parametrize(("request_", "present", "absent"), [
    (COMPARED, ['run_mode(net, "train")\nrun_mode(net, "eval")', "torch.manual_seed(0)",
                "example_input = torch.randn(2, 4)", 'print(f"model.{mode}() output:")'],
     ["contextlib", "no_grad", "pass {number}", "lazy", "to_device", "device =", "sys.path"]),
    (ExampleRequest(code=DROPOUT, input="x", modes=("eval", "train")),
     ['run_mode(net, "eval")\nrun_mode(net, "train")'], []),
    (ExampleRequest(code=DROPOUT, input="x", modes=("eval",)), ['run_mode(net, "eval")'], ['"train")\n']),
    (ExampleRequest(code=DROPOUT, input="x", repeat=3),
     ["for number in range(1, 4):", 'output, pass {number}:"'], []),
    (ExampleRequest(code=DROPOUT, input="x", no_grad=True),
     ["import contextlib", 'with torch.no_grad() if mode == "eval" else contextlib.nullcontext():'], []),
    (ExampleRequest(code=DROPOUT, input="x", seed=2**40 + 3),
     [f"torch.manual_seed({2**40 + 3})", "np.random.seed(3)"], []),
    (ExampleRequest(code=LAZY, input="x"), ["LazyModuleMixin", "m.training = False"], []),
    (ExampleRequest(code=LOCAL, input="x"), ["sys.path.insert(0, os.getcwd())", "LazyModuleMixin"], []),
    (ExampleRequest(code=DROPOUT, input="x.to(device)"), ['device = torch.device("cpu")'], ["to_device"]),
    (ExampleRequest(code=DROPOUT, input="x", device="cuda"),
     ['device = torch.device("cuda")', "net.to(device)", "example_input = to_device(example_input)"], []),
    (ExampleRequest(code=DROPOUT, input="x", device="auto"),
     ['torch.device("cuda" if torch.cuda.is_available() else "cpu")'], []),
])
def test_script_holds_the_requests_steps(request_: ExampleRequest, present: list[str], absent: list[str]) -> None:
    text = reproduce.script(request_, "net")
    ast.parse(text)  # a script a reader can run
    for part in present:
        assert part in text
    for part in absent:
        assert part not in text


def test_script_without_a_name_looks_for_the_model() -> None:
    text = reproduce.script(COMPARED, None)
    assert 'run_mode(found_model, "train")' in text
    assert "isinstance(value, torch.nn.Module)" in text


def test_the_scripts_names_make_way_for_the_codes() -> None:
    text = reproduce.script(ExampleRequest(code=CLASHING, input="torch.ones(2)"), "run_mode")
    assert 'run_mode_(run_mode, "train")' in text
    assert "def forward_(model, x):" in text
    assert "example_input_ = torch.ones(2)" in text


def test_script_says_where_it_comes_from() -> None:
    text = reproduce.script(COMPARED, "net", where="at index.md, line 7", versions="torch 2.13.0")
    docstring = ast.get_docstring(ast.parse(text)) or ""
    assert docstring.startswith("Reproduces the evaldemo example at index.md, line 7, as the docs build ran it.")
    assert "The build used torch 2.13.0" in docstring


def _exec(text: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(text, "<script>", "exec"), {"__name__": "__main__"})  # the script under test
    return out.getvalue()


_HEADER = re.compile(r"^model\.(?:train|eval)\(\) output(?:, pass \d+)?:$", re.M)

STRUCTURED = """\
import torch
from torch import nn

class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x, y):
        return self.drop(x) + y, {"y": self.drop(y)}

pair = Pair()
"""

#: Binds names the script uses for itself: the script's become ``forward_``, ...
CLASHING = """\
import torch
from torch import nn

def forward(x):
    return x * 2

class Twice(nn.Module):
    def forward(self, x):
        return forward(x) if self.training else x

example_input = 3.0
run_mode = Twice()
"""

BATCHNORM = "import torch\nfrom torch import nn\n\nprint('setup')\nbn = nn.BatchNorm1d(3)\n"


@pytest.mark.parametrize("request_", [
    COMPARED,
    ExampleRequest(code=STRUCTURED, input="(torch.randn(2, 3), torch.ones(2, 3))", repeat=2),
    ExampleRequest(code=BATCHNORM, input="torch.randn(5, 3) * 2", modes=("eval", "train"), seed=11),
    ExampleRequest(code=LAZY, input="torch.randn(2, 5)", no_grad=True),
    ExampleRequest(code=DROPOUT, input="torch.randn(2, 4, device=device)", device="auto"),
    ExampleRequest(code="import torch\nnet = torch.nn.RReLU()\n", input="torch.randn(6)"),
    ExampleRequest(code=CLASHING, input="torch.ones(2) * example_input"),
], ids=["dropout", "tuple-input-repeat", "batchnorm-eval-first", "lazy-no-grad", "device-auto", "rrelu",
        "names-taken"])
def test_script_prints_what_the_worker_computed(request_: ExampleRequest) -> None:
    """The worker's own run, in this process, against the script's printout."""
    result = run_example(request_, dict(np.get_printoptions()))
    assert result.ok, result.failure
    text = reproduce.script(request_, reproduce.model_name(request_, result))
    printed = _exec(text)
    setup, *panels = _HEADER.split(printed)
    assert setup == result.setup_output
    assert [panel.strip("\n") for panel in panels] == [out for run in result.runs for out in run.outputs]
    assert "sphinx_evaldemo" not in text


def test_the_module_imports_neither_torch_nor_sphinx() -> None:
    tree = ast.parse(Path(reproduce.__file__).read_text(encoding="utf-8"))
    imported: set[Any] = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name and name.split(".")[0] in ("torch", "sphinx", "docutils")}


def test_the_docs_show_the_script_as_it_is_written() -> None:
    """docs/directive.md quotes the end of its first example's script: it must be that end."""
    docs = (Path(__file__).parents[2] / "docs" / "directive.md").read_text(encoding="utf-8")
    first = re.search(r"```\{evaldemo\}\n(?P<options>(?::[^\n]*\n)+)\n(?P<code>.*?)\n```", docs, re.S)
    quoted = re.search(r"ends with:\n\n```python\n(.*?)```", docs, re.S)
    assert first is not None and quoted is not None
    options = dict(line[1:].split(": ", 1) for line in first["options"].splitlines())
    request = ExampleRequest(code=first["code"], model=options["model"], input=options["input"])
    assert reproduce.script(request, options["model"]).endswith(quoted.group(1))
