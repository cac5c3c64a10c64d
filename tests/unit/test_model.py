"""Requests and results cross processes and disks as JSON; a request's key is its identity."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import typing

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
    decode,
    dumps,
    encode,
    loads,
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


#: One value of every type that crosses a process or disk boundary, empty and full.
VALUES: list[object] = [
    ExampleRequest(code="x = 1"),
    FULL_REQUEST,
    dataclasses.replace(FULL_REQUEST, depends=(("data/a.csv", "ab" * 32),), device="auto",
                        memory_limit=512, modes=("eval",)),
    ExampleResult(),
    FULL_RESULT,
    *FULL_RESULT.runs,
    *FULL_RESULT.runs[0].tensors,
    TensorView("x", (), "torch.int64", None, None, None, None, None, 0.0),
    FULL_RESULT.comparison,
    *(FULL_RESULT.comparison.leaves if FULL_RESULT.comparison else ()),
    *FULL_RESULT.segments,
    *FULL_RESULT.mode_dependent,
    FULL_RESULT.trace,
    Trace(modes=("eval", "train")),
    *(FULL_RESULT.trace.layers if FULL_RESULT.trace else ()),
    FULL_RESULT.failure,
    Failure("timeout", "timed out after 1 s"),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_every_type_round_trips_through_the_codec(value: object) -> None:
    text = dumps(value)
    again = loads(type(value), text)
    assert again == value
    assert type(again) is type(value)
    assert dumps(again) == text
    assert decode(type(value), json.loads(text)) == value


def _dataclasses_under(cls: type) -> set[type]:
    found = {cls}
    for hint in typing.get_type_hints(cls).values():
        for inner in [hint, *_args(hint)]:
            if dataclasses.is_dataclass(inner) and isinstance(inner, type) and inner not in found:
                found |= _dataclasses_under(inner)
    return found


def _args(hint: object) -> list[object]:
    args = list(typing.get_args(hint))
    return args + [deeper for arg in args for deeper in _args(arg)]


def test_the_table_holds_every_type_that_crosses() -> None:
    """A new dataclass inside a request or a result is round-tripped by the test above."""
    crossing = _dataclasses_under(ExampleRequest) | _dataclasses_under(ExampleResult)
    assert crossing <= {type(value) for value in VALUES}


MALFORMED = [
    (ExampleRequest, "", "ExampleRequest: not JSON"),
    (ExampleRequest, b"\xff", "ExampleRequest: not UTF-8"),
    (ExampleRequest, "[]", "ExampleRequest: expected an object"),
    (ExampleRequest, '{"code": "x"}', "ExampleRequest: missing fields ['depends', 'device'"),
    (ExampleRequest, ("modes", ["train", "predict"]), "ExampleRequest.modes[1]: 'predict' is not one of ('train', 'eval')"),
    (ExampleRequest, ("repeat", True), "ExampleRequest.repeat: True is not a int"),
    (ExampleRequest, ("depends", [["a"]]), "ExampleRequest.depends[0]: expected 2 items"),
    (ExampleRequest, ("device", "tpu"), "ExampleRequest.device: 'tpu' is not one of"),
    (ExampleRequest, ("memory_limit", "1G"), "ExampleRequest.memory_limit: '1G' is not a int; '1G' is not a NoneType"),
    (ExampleResult, ("failure", {"kind": "bogus", "message": "m", "traceback": "", "exc_type": "",
                                 "exc_mro": [], "lineno": None}), "ExampleResult.failure.kind: 'bogus' is not one of"),
    (ExampleResult, ("runs", [{"mode": "eval"}]), "ExampleResult.runs[0]: missing fields"),
    (ExampleResult, ("seconds", "1.5"), "ExampleResult.seconds: '1.5' is not a float"),
    (ExampleResult, ("extra", []), "ExampleResult.extra: expected an object"),
    (ExampleResult, ("surprise", 1), "ExampleResult: unknown fields ['surprise']"),
    (ExampleResult, ("comparison", {"modes": ["train"], "leaves": [], "more": 0, "more_differing": 0}), "ExampleResult.comparison.modes: expected 2 items"),
]


@pytest.mark.parametrize(("cls", "change", "message"), MALFORMED, ids=lambda v: v if isinstance(v, str) else None)
def test_malformed_input_is_refused_with_where_and_why(cls: type, change: object, message: str) -> None:
    if isinstance(change, tuple):
        data = encode(FULL_REQUEST if cls is ExampleRequest else FULL_RESULT)
        data[change[0]] = change[1]
        text: str | bytes = json.dumps(data)
    else:
        assert isinstance(change, str | bytes)
        text = change
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        loads(cls, text)


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
    assert decode(ExampleRequest, encode(FULL_REQUEST)).key(FINGERPRINT) == FULL_REQUEST.key(FINGERPRINT)
    key = FULL_REQUEST.key(FINGERPRINT)
    assert len(key) == 64 and int(key, 16) >= 0


def test_key_is_the_same_in_another_process() -> None:
    """No hash randomisation or dict order gets into the key."""
    script = (
        "import json, sys\n"
        "from sphinx_evaldemo.examples.model import ExampleRequest, loads\n"
        "print(loads(ExampleRequest, sys.argv[1]).key(sys.argv[2]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", script, dumps(FULL_REQUEST), FINGERPRINT],
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
def test_encode_is_asdict_as_json_writes_it(value: object) -> None:
    """``encode`` stands in for ``dataclasses.asdict`` (without its deep copies): the JSON
    must be the same, to the byte, so results stored before the codec stay readable."""
    assert dumps(value) == json.dumps(dataclasses.asdict(value), sort_keys=True)  # type: ignore[call-overload]


def test_a_mismatch_shows_a_long_value_cut_short() -> None:
    data = encode(FULL_RESULT)
    data["seconds"] = "x" * 10000
    with pytest.raises(ValueError, match=r"^ExampleResult\.seconds: 'x{56}\.\.\. is not a float$"):
        loads(ExampleResult, json.dumps(data))
