"""Requests and results cross processes and disks as JSON; a request's key is its identity."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from sphinx_evaldemo.examples.model import (
    Comparison,
    ExampleRequest,
    ExampleResult,
    Failure,
    LayerDiff,
    LeafDiff,
    ModeModule,
    ModeRun,
    Segment,
    TensorView,
    Trace,
    plain,
)

FINGERPRINT = "python=3.11 torch=2.13 numpy=2 sphinx-evaldemo=test"

FULL_REQUEST = ExampleRequest(
    code="import torch\nnet = torch.nn.Dropout()\n",
    model="net",
    input="torch.ones(2, 3)",
    modes=("eval", "train"),
    repeat=3,
    no_grad=True,
    seed=5,
    timeout=2.5,
    max_output=500,
)

FULL_RESULT = ExampleResult(
    setup_output="built\n",
    runs=(
        ModeRun(
            mode="train",
            outputs=("tensor([0., 2.])", "tensor([2., 0.])"),
            printed="forward\n",
            requires_grad=True,
            deterministic=False,
            buffers_changed=("net[1].running_mean", "net[1].num_batches_tracked"),
            seconds=0.25,
            peak_memory=1024,
            truncated=True,
            tensors=(
                TensorView("output", (2,), "torch.float32", (0.0, 2.0), 1.0, 1.4142, 0.0, 2.0, 0.5),
            ),
            varied=("net[1]",),
        ),
        ModeRun(mode="eval", outputs=("tensor([1., 1.])",), requires_grad=None),
    ),
    comparison=Comparison(
        modes=("train", "eval"),
        leaves=(
            LeafDiff("[0]", equal=False, max_abs_diff=1.0, differing=2, total=2),
            LeafDiff("['logits']", equal=True),
            LeafDiff("[1]", equal=False, note="present in one mode only"),
        ),
    ),
    segments=(Segment("train", "a\n"), Segment("eval", "b\n")),
    mode_dependent=(
        ModeModule("net[1]", "Dropout", "p=0.5", "Dropout(p=0.5, inplace=False)"),
        ModeModule("net[2]", "Dropout", "p=0.0", "Dropout(p=0.0, inplace=False)", "reads the mode, but"),
    ),
    trace=Trace(
        modes=("train", "eval"),
        layers=(
            LayerDiff("net[0]", "Linear", "in_features=2", True, True, 0.0, 0, 4),
            LayerDiff("net[1]", "Dropout", "p=0.5", True, False, 2.0, 3, 4, parts=True),
            LayerDiff("net.lstm (call 2)", "LSTM", "", False, False, None, None, None, note="x"),
        ),
        parting=("net[1]",),
        calls=40,
        differing_calls=38,
        before=2,
        after=35,
        differing_after=35,
        largest_after=1.5,
    ),
    notes=("In eval mode `net[1]` changed its buffers",),
    failure=Failure(
        kind="exception",
        message="ValueError: bad",
        traceback="Traceback ...",
        exc_type="ValueError",
        exc_mro=("ValueError", "Exception", "BaseException", "object"),
        lineno=3,
    ),
    seconds=1.5,
    truncated=("printed output",),
    extra={"note": "kept"},
)


@pytest.mark.parametrize("request_", [ExampleRequest(code="x = 1"), FULL_REQUEST])
def test_request_json_round_trip(request_: ExampleRequest) -> None:
    data = json.loads(json.dumps(request_.to_dict()))
    assert ExampleRequest.from_dict(data) == request_


@pytest.mark.parametrize("result", [ExampleResult(), FULL_RESULT])
def test_result_json_round_trip(result: ExampleResult) -> None:
    again = ExampleResult.from_json(result.to_json())
    assert again == result
    assert again.to_json() == result.to_json()


def test_result_ok_follows_failure() -> None:
    assert ExampleResult().ok
    assert not FULL_RESULT.ok


def test_comparison_differ() -> None:
    assert FULL_RESULT.comparison is not None and FULL_RESULT.comparison.differ
    same = Comparison(("train", "eval"), (LeafDiff("output", equal=True),))
    assert not same.differ


def test_key_is_stable_for_equal_requests() -> None:
    again = ExampleRequest(**{f.name: getattr(FULL_REQUEST, f.name) for f in dataclasses.fields(FULL_REQUEST)})
    assert again is not FULL_REQUEST
    assert again.key(FINGERPRINT) == FULL_REQUEST.key(FINGERPRINT)
    assert ExampleRequest.from_dict(FULL_REQUEST.to_dict()).key(FINGERPRINT) == FULL_REQUEST.key(FINGERPRINT)
    key = FULL_REQUEST.key(FINGERPRINT)
    assert len(key) == 64 and int(key, 16) >= 0


def test_key_is_the_same_in_another_process() -> None:
    """No hash randomisation or dict order gets into the key."""
    script = (
        "import json, sys\n"
        "from sphinx_evaldemo.examples.model import ExampleRequest\n"
        "data = json.loads(sys.argv[1])\n"
        "print(ExampleRequest.from_dict(data).key(sys.argv[2]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(FULL_REQUEST.to_dict()), FINGERPRINT],
        capture_output=True, text=True, env=env, check=True,
    )
    assert done.stdout.strip() == FULL_REQUEST.key(FINGERPRINT)


CHANGES = {
    "code": {"code": "import torch\nnet = torch.nn.Dropout(0.1)\n"},
    "code-whitespace": {"code": "import torch\nnet = torch.nn.Dropout() \n"},
    "model": {"model": "other"},
    "no-model": {"model": None},
    "input": {"input": "torch.ones(3, 3)"},
    "as-written": {"input": None},
    "modes": {"modes": ("train", "eval")},
    "one-mode": {"modes": ("eval",)},
    "repeat": {"repeat": 2},
    "no-grad": {"no_grad": False},
    "seed": {"seed": 6},
    "timeout": {"timeout": 60.0},
    "max-output": {"max_output": 20000},
}


@pytest.mark.parametrize("change", list(CHANGES), ids=str)
def test_key_changes_with_what_decides_the_result(change: str) -> None:
    changed = dataclasses.replace(FULL_REQUEST, **CHANGES[change])
    assert changed.key(FINGERPRINT) != FULL_REQUEST.key(FINGERPRINT)


def test_every_change_gives_its_own_key() -> None:
    keys = {dataclasses.replace(FULL_REQUEST, **c).key(FINGERPRINT) for c in CHANGES.values()}
    assert len(keys) == len(CHANGES)


def test_key_changes_with_the_environment() -> None:
    assert FULL_REQUEST.key(FINGERPRINT) != FULL_REQUEST.key(FINGERPRINT.replace("2.13", "2.14"))


@pytest.mark.parametrize("value", [ExampleResult(), FULL_RESULT, FULL_REQUEST, FULL_RESULT.trace])
def test_plain_is_asdict_as_json_writes_it(value: object) -> None:
    """``plain`` stands in for ``dataclasses.asdict`` (without its deep copies) wherever
    a result becomes JSON: the JSON must be the same, to the byte."""
    assert json.dumps(plain(value), sort_keys=True) == json.dumps(dataclasses.asdict(value), sort_keys=True)  # type: ignore[call-overload]
    assert FULL_RESULT.to_json() == json.dumps(dataclasses.asdict(FULL_RESULT), sort_keys=True)
