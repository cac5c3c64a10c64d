"""The runner logic, in this process: seeding, modes, isolation, failures (no Sphinx here)."""

from __future__ import annotations

import copy
import os
import random
import sys
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from sphinx_evaldemo.examples.model import ExampleRequest, ExampleResult, Segment
from sphinx_evaldemo.examples.worker.capture import cut_marker
from sphinx_evaldemo.examples.worker.run import run_example
from tests.helpers import seed_all

NUMPY_PRINT = np.get_printoptions()


def run(code: str, **options: Any) -> ExampleResult:
    return run_example(ExampleRequest(code=code, **options), NUMPY_PRINT)


def by_mode(result: ExampleResult) -> dict[str, Any]:
    return {r.mode: r for r in result.runs}


DROPOUT_NET = """\
import torch
import torch.nn as nn

net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.5))
"""


def test_compared_outputs_equal_direct_calls() -> None:
    result = run(DROPOUT_NET, input="torch.randn(4, 8)")
    seed_all(0)
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.5))
    x = torch.randn(4, 8)
    seed_all(0)
    train = net.train()(x)
    seed_all(0)
    ev = net.eval()(x)
    runs = by_mode(result)
    assert result.ok, result.failure
    assert runs["train"].outputs == (repr(train),)
    assert runs["eval"].outputs == (repr(ev),)
    assert runs["train"].deterministic is False
    assert runs["eval"].deterministic is True
    assert [(m.name, m.label, m.no_effect) for m in result.mode_dependent] == [("net[2]", "Dropout, p=0.5", "")]
    assert result.comparison is not None
    (leaf,) = result.comparison.leaves
    assert leaf.differing == int((train != ev).sum())
    assert leaf.total == 32


def test_all_three_generators_are_seeded_before_the_code() -> None:
    code = "import random, numpy, torch\nprint(torch.rand(1).item(), random.random(), numpy.random.rand())\n"
    result = run(code, seed=3)
    seed_all(3)
    expected = f"{torch.rand(1).item()} {random.random()} {np.random.rand()}\n"
    assert result.segments == (Segment("", expected),)


DRAWS = """\
import random
import numpy
import torch
import torch.nn as nn

class Draws(nn.Module):
    def forward(self, x):
        return torch.rand(1), random.random(), numpy.random.rand()

before = torch.rand(5)  # the setup uses up some of the stream
net = Draws()
"""


def test_each_mode_starts_from_the_seed_and_passes_continue_the_stream() -> None:
    result = run(DRAWS, input="torch.rand(3)", seed=11, repeat=2)
    seed_all(11)
    first = repr((torch.rand(1), random.random(), np.random.rand()))
    second = repr((torch.rand(1), random.random(), np.random.rand()))
    runs = by_mode(result)
    assert runs["train"].outputs == (first, second)
    assert runs["eval"].outputs == (first, second)


def test_input_is_evaluated_once_and_each_mode_gets_the_same_values() -> None:
    code = """\
import torch
import torch.nn as nn

def make():
    print("input made")
    return torch.ones(1, 3)

class Spoils(nn.Module):
    def forward(self, x):
        seen = x.clone()
        x.add_(1)  # changes its argument in place, after looking at it
        return seen

net = Spoils()
"""
    result = run(code, input="make()")
    assert result.setup_output == "input made\n"
    runs = by_mode(result)
    # the eval pass sees the input's values, not what the train pass left behind
    assert runs["train"].outputs == runs["eval"].outputs == (repr(torch.ones(1, 3)),)


def test_in_place_dropout_shows_the_output_of_one_pass() -> None:
    """The shown output is what the shown pass returned, not what a hidden check pass made of it."""
    result = run("import torch\nnet = torch.nn.Dropout(0.5, inplace=True)\n", input="torch.ones(2, 8)")
    seed_all(0)
    x = torch.ones(2, 8)
    seed_all(0)
    expected = torch.nn.functional.dropout(x, 0.5, training=True)
    assert set(expected.unique().tolist()) == {0.0, 2.0}
    assert by_mode(result)["train"].outputs == (repr(expected),)
    assert by_mode(result)["eval"].outputs == (repr(torch.ones(2, 8)),)


def test_batchnorm_statistics_do_not_leak_between_modes() -> None:
    code = "import torch\nnet = torch.nn.BatchNorm1d(3)\n"
    for modes in (("train", "eval"), ("eval", "train")):
        result = run(code, input="torch.randn(6, 3) * 5 + 2", modes=modes)
        seed_all(0)
        fresh = nn.BatchNorm1d(3)
        x = torch.randn(6, 3) * 5 + 2
        expected_eval = fresh.eval()(x)
        runs = by_mode(result)
        assert runs["eval"].outputs == (repr(expected_eval),)
        assert runs["eval"].buffers_changed == ()
        assert runs["train"].buffers_changed == ("net.running_mean", "net.running_var", "net.num_batches_tracked")
        assert [r.mode for r in result.runs] == list(modes)


def test_no_grad_applies_to_eval_only() -> None:
    code = "import torch\nnet = torch.nn.Linear(3, 2)\n"
    plain = by_mode(run(code, input="torch.ones(1, 3)"))
    guarded = by_mode(run(code, input="torch.ones(1, 3)", no_grad=True))
    assert (plain["train"].requires_grad, plain["eval"].requires_grad) == (True, True)
    assert (guarded["train"].requires_grad, guarded["eval"].requires_grad) == (True, False)


def test_tuple_input_means_several_arguments() -> None:
    code = """\
import torch.nn as nn

class Add(nn.Module):
    def forward(self, a, b):
        return a + b

net = Add()
"""
    result = run(code, input="(torch.ones(2), torch.full((2,), 3.0))".replace("torch", "__import__('torch')"))
    assert by_mode(result)["eval"].outputs == (repr(torch.full((2,), 4.0)),)


def test_as_written_segments_follow_the_models_mode() -> None:
    code = """\
print("before any model")
import torch
a = torch.nn.Dropout()
print("a in train")
b = torch.nn.Dropout().eval()
print("mixed")
a.eval()
print("both in eval")
"""
    result = run(code)
    assert result.segments == (
        Segment("", "before any model\n"),
        Segment("train", "a in train\n"),
        Segment("mixed", "mixed\n"),
        Segment("eval", "both in eval\n"),
    )
    assert result.runs == ()
    assert result.comparison is None


AS_PYTHON = """\
import io, os, pickle, subprocess, sys
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(2, 2), nn.Dropout())

def main():
    net = Net()
    print("made in main:", __name__, sys.argv)
    net.eval()
    os.write(1, b"fd 1 after eval()\\n")
    subprocess.run(["echo", "a subprocess"], check=True)
    print(type(pickle.loads(pickle.dumps(net))).__qualname__, file=sys.stderr)

main()
print("no model left")
"""


def test_as_written_runs_as_python_runs_it_in_this_process_too() -> None:
    """Run in this process (not the worker's child): the same script semantics, and
    everything is put back afterwards (streams, fd 1 and 2, ``__main__``, ``sys.argv``)."""
    before = (sys.stdout, sys.stderr, sys.modules["__main__"], sys.argv, os.fstat(1).st_ino, nn.Module.__init__)
    result = run(AS_PYTHON)
    assert result.ok, result.failure
    assert result.segments == (
        Segment("train", "made in main: __main__ ['example.py']\n"),
        Segment("eval", "fd 1 after eval()\na subprocess\nNet\n"),
        Segment("", "no model left\n"),
    )
    assert (sys.stdout, sys.stderr, sys.modules["__main__"], sys.argv, os.fstat(1).st_ino, nn.Module.__init__) == before


def test_a_loss_module_does_not_make_the_segments_mixed() -> None:
    code = "import torch.nn as nn\nnet = nn.Linear(2, 2)\ncriterion = nn.MSELoss()\nprint('train')\nnet.eval()\nprint('eval')\n"
    assert [segment.mode for segment in run(code).segments] == ["train", "eval"]


def test_threads_the_script_started_are_joined_before_the_output_is_taken() -> None:
    code = "import threading, time\nthreading.Thread(target=lambda: (time.sleep(0.2), print('late'))).start()\n"
    assert run(code).segments == (Segment("", "late\n"),)


def test_printed_during_passes_is_kept_per_mode() -> None:
    code = """\
import torch.nn as nn

class Talks(nn.Module):
    def forward(self, x):
        print("training" if self.training else "evaluating")
        return x

net = Talks()
"""
    runs = by_mode(run(code, input="1"))
    assert runs["train"].printed.startswith("training\n")
    assert runs["eval"].printed.startswith("evaluating\n")


FAILURES: list[tuple[str, str, dict[str, Any], str, int | None, tuple[str, ...]]] = [
    ("raise", "x = 1\nraise ValueError('bad value')\n", {}, "exception", 2, ("ValueError: bad value",)),
    (
        "raise-in-function",
        "def check():\n    raise KeyError('k')\n\ncheck()\n", {}, "exception", 2, ("KeyError",),
    ),
    ("syntax", "x = 1\ny = (x +\n", {}, "syntax", 2, ("SyntaxError",)),
    ("sys-exit-0", "import sys\nsys.exit(0)\n", {}, "exit", 2, ("sys.exit(0)",)),
    ("sys-exit-bare", "import sys\n\nsys.exit()\n", {}, "exit", 3, ("sys.exit(None)",)),
    (
        "unknown-model",
        "import torch\nnet = torch.nn.Linear(2, 2)\n", {"model": "nett", "input": "1"},
        "model", None, ("'nett'", "net"),
    ),
    (
        "several-models",
        "import torch\nencoder = torch.nn.Linear(2, 2)\ndecoder = torch.nn.Linear(2, 2)\n",
        {"input": "1"}, "model", None, ("encoder", "decoder", ":model:"),
    ),
    ("no-model", "x = 1\n", {"input": "x"}, "model", None, ("nn.Module",)),
    (
        "not-a-module",
        "import torch\nweights = torch.ones(2)\n", {"model": "weights", "input": "1"},
        "model", None, ("'weights'", "Tensor"),
    ),
    (
        "bad-input",
        "import torch\nnet = torch.nn.Linear(2, 2)\n", {"input": "undefined_name"},
        "input", None, (":input:", "NameError"),
    ),
    (
        "forward-fails",
        "import torch\nnet = torch.nn.Linear(2, 2)\n", {"input": "torch.ones(1, 3)"},
        "exception", None, ("model.train() pass:", "RuntimeError"),
    ),
]


@pytest.mark.parametrize(
    ("case", "code", "options", "kind", "lineno", "says"), FAILURES, ids=[f[0] for f in FAILURES]
)
def test_failures(
    case: str, code: str, options: dict[str, Any], kind: str, lineno: int | None, says: tuple[str, ...]
) -> None:
    result = run(code, **options)
    assert result.failure is not None
    assert result.failure.kind == kind
    assert result.failure.lineno == lineno
    for fragment in says:
        assert fragment in result.failure.message


def test_same_module_under_two_names_is_one_model() -> None:
    result = run("import torch\nnet = model = torch.nn.Linear(2, 2)\n", input="torch.ones(1, 2)")
    assert result.ok, result.failure


def test_failure_in_eval_keeps_the_train_run() -> None:
    code = """\
import torch.nn as nn

class TrainOnly(nn.Module):
    def forward(self, x):
        if not self.training:
            raise RuntimeError("no eval for me")
        return x

net = TrainOnly()
"""
    result = run(code, input="1")
    assert [r.mode for r in result.runs] == ["train"]
    assert result.failure is not None
    assert result.failure.message.startswith("model.eval() pass: ")
    assert result.failure.lineno == 6
    assert result.failure.exc_type == "RuntimeError"
    assert "RuntimeError" in result.failure.exc_mro and "Exception" in result.failure.exc_mro


def test_traceback_starts_at_the_example() -> None:
    result = run("x = 1\nraise ValueError('bad value')\n")
    assert result.failure is not None
    text = result.failure.traceback
    assert 'File "<example>", line 2' in text
    assert "sphinx_evaldemo" not in text


def test_outputs_over_the_limit_are_cut_and_flagged() -> None:
    printed = run("print('x' * 500)\n", max_output=100)
    (segment,) = printed.segments
    assert cut_marker(401) in segment.text
    assert printed.truncated

    code = "import torch.nn as nn\n\nclass Long(nn.Module):\n    def forward(self, x):\n        return 'y' * 500\n\nnet = Long()\n"
    result = run(code, input="1", max_output=100)
    train = by_mode(result)["train"]
    assert train.outputs[0] == "'" + "y" * 49 + cut_marker(402) + "y" * 49 + "'"
    assert train.truncated
    assert result.truncated


def test_examples_do_not_change_the_next_ones() -> None:
    here = os.getcwd()
    path = list(sys.path)
    run(
        "import os, sys, torch\n"
        "torch.set_default_dtype(torch.float64)\n"
        "torch.set_printoptions(precision=1)\n"
        "sys.path.append('/nowhere')\n"
        "os.chdir('/')\n"
    )
    assert os.getcwd() == here
    assert sys.path == path
    result = run("import torch\nprint(torch.get_default_dtype(), torch.tensor([1/3]))\n")
    assert result.segments == (Segment("", "torch.float32 tensor([0.3333])\n"),)


def test_same_request_gives_the_same_result() -> None:
    first = run(DROPOUT_NET, input="torch.randn(4, 8)", repeat=2)
    second = run(DROPOUT_NET, input="torch.randn(4, 8)", repeat=2)
    assert [r.outputs for r in first.runs] == [r.outputs for r in second.runs]
    assert first.comparison == second.comparison
    assert copy.deepcopy(first.mode_dependent) == second.mode_dependent
