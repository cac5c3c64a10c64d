"""claims.check on results built by hand: each claim holding and failing, and the fact it
states; execution.diagnose turning a contradicted claim into one warning."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sphinx_evaldemo.examples.claims import CLAIMS, check
from sphinx_evaldemo.examples.diagnose import diagnose
from sphinx_evaldemo.examples.model import (
    Comparison,
    ExampleRequest,
    ExampleResult,
    Failure,
    LeafDiff,
    Mode,
    ModeRun,
)
from sphinx_evaldemo.examples.records import ExampleRecord

EQUAL = (LeafDiff("output", equal=True, max_abs_diff=0.0, differing=0, total=4),)
DIFFERENT = (LeafDiff("output", equal=False, max_abs_diff=0.5, differing=3, total=4),)
ROUNDING = (LeafDiff("output", equal=True, verdict="rounding", max_abs_diff=1.2e-7, differing=0, total=4),)
INCOMPARABLE = (LeafDiff("output", equal=False, verdict="incomparable",
                         note="not comparable: meta tensors hold no values"),)


def run(
    mode: Mode,
    *,
    deterministic: bool | None = True,
    requires_grad: bool | None = True,
    buffers: tuple[str, ...] = (),
) -> ModeRun:
    return ModeRun(
        mode=mode,
        outputs=("tensor([0.])",),
        deterministic=deterministic,
        requires_grad=requires_grad,
        buffers_changed=buffers,
    )


def result(
    train: ModeRun | None = None,
    eval_: ModeRun | None = None,
    leaves: tuple[LeafDiff, ...] | None = EQUAL,
) -> ExampleResult:
    train = run("train") if train is None else train
    eval_ = run("eval") if eval_ is None else eval_
    comparison = None if leaves is None else Comparison(("train", "eval"), leaves)
    return ExampleResult(runs=(train, eval_), comparison=comparison)


EVAL_ONLY = ExampleResult(runs=(run("eval"),))
TRAIN_ONLY = ExampleResult(runs=(run("train"),))


@dataclass(frozen=True)
class Case:
    id: str
    claim: str
    result: ExampleResult
    held: bool
    fact: str


CASES = [
    # differ / same
    Case("differ-holds", "differ", result(leaves=DIFFERENT), True,
         "the train and eval outputs differ, largest absolute difference 0.5"),
    Case("differ-fails", "differ", result(), False, "the train and eval outputs are equal"),
    Case("same-holds", "same", result(), True, "the train and eval outputs are equal"),
    Case("same-fails", "same", result(leaves=DIFFERENT), False,
         "the train and eval outputs differ, largest absolute difference 0.5"),
    Case("differ-worst-leaf", "differ",
         result(leaves=(
             LeafDiff("[0]", equal=False, max_abs_diff=0.25, differing=1, total=2),
             LeafDiff("[1]", equal=True, max_abs_diff=0.0, differing=0, total=2),
             LeafDiff("[2]", equal=False, max_abs_diff=2.0, differing=2, total=2),
         )),
         True, "the train and eval outputs differ, largest absolute difference 2"),
    Case("differ-shapes", "differ",
         result(leaves=(LeafDiff("output", equal=False, note="shapes differ: (2,) vs (3,)"),)),
         True, "the train and eval outputs differ, shapes differ: (2,) vs (3,)"),
    # the equality's other verdicts: rounding is "same", a NaN difference is the largest,
    # and outputs that cannot be compared bear out neither claim
    Case("same-holds-up-to-rounding", "same", result(leaves=ROUNDING), True,
         "the train and eval outputs are equal up to rounding"),
    Case("differ-fails-up-to-rounding", "differ", result(leaves=ROUNDING), False,
         "the train and eval outputs are equal up to rounding"),
    Case("differ-nan-is-the-largest", "differ",
         result(leaves=(
             LeafDiff("[0]", equal=False, max_abs_diff=2.0, differing=1, total=2),
             LeafDiff("[1]", equal=False, max_abs_diff=float("nan"), differing=2, total=2),
         )),
         True, "the train and eval outputs differ, largest absolute difference nan"),
    Case("same-fails-not-comparable", "same", result(leaves=INCOMPARABLE), False,
         "the train and eval outputs cannot be compared (not comparable: meta tensors hold no values)"),
    Case("differ-fails-not-comparable", "differ", result(leaves=INCOMPARABLE), False,
         "the train and eval outputs cannot be compared (not comparable: meta tensors hold no values)"),
    Case("differ-holds-past-the-leaves-shown", "differ",
         ExampleResult(runs=(run("train"), run("eval")),
                       comparison=Comparison(("train", "eval"), EQUAL, more=100, more_differing=1)),
         True, "the train and eval outputs differ, beyond the leaves shown"),
    Case("eval-deterministic-not-comparable", "eval-deterministic",
         result(eval_=run("eval", deterministic=None)), False, "two eval passes could not be compared"),
    Case("same-one-mode", "same", EVAL_ONLY, False,
         "needs both modes (:modes: train eval) to compare outputs"),
    Case("differ-one-mode", "differ", TRAIN_ONLY, False,
         "needs both modes (:modes: train eval) to compare outputs"),
    # train-random / eval-deterministic
    Case("train-random-holds", "train-random", result(run("train", deterministic=False)), True,
         "two train passes gave different outputs"),
    Case("train-random-fails", "train-random", result(), False,
         "two train passes gave the same output"),
    Case("train-random-no-train", "train-random", EVAL_ONLY, False,
         "the example has no train pass (see :modes:)"),
    Case("eval-deterministic-holds", "eval-deterministic", result(), True,
         "two eval passes gave the same output"),
    Case("eval-deterministic-fails", "eval-deterministic",
         result(eval_=run("eval", deterministic=False)), False,
         "two eval passes gave different outputs"),
    Case("eval-deterministic-no-eval", "eval-deterministic", TRAIN_ONLY, False,
         "the example has no eval pass (see :modes:)"),
    # buffers
    Case("train-updates-buffers-holds", "train-updates-buffers",
         result(run("train", buffers=("running_mean", "running_var"))), True,
         "the train pass changed running_mean, running_var"),
    Case("train-updates-buffers-fails", "train-updates-buffers", result(), False,
         "the train pass changed no buffer"),
    Case("train-updates-buffers-no-train", "train-updates-buffers", EVAL_ONLY, False,
         "the example has no train pass (see :modes:)"),
    Case("eval-keeps-buffers-holds", "eval-keeps-buffers", result(), True,
         "the eval pass changed no buffer"),
    Case("eval-keeps-buffers-fails", "eval-keeps-buffers",
         result(eval_=run("eval", buffers=("calls",))), False, "the eval pass changed calls"),
    Case("eval-keeps-buffers-no-eval", "eval-keeps-buffers", TRAIN_ONLY, False,
         "the example has no eval pass (see :modes:)"),
    # gradients
    Case("eval-tracks-grad-holds", "eval-tracks-grad", result(), True,
         "the eval output requires grad; run it under torch.no_grad() or add :no-grad:"),
    Case("eval-tracks-grad-fails", "eval-tracks-grad",
         result(eval_=run("eval", requires_grad=False)), False,
         "the eval output does not require grad"),
    Case("eval-no-grad-holds", "eval-no-grad", result(eval_=run("eval", requires_grad=False)),
         True, "the eval output does not require grad"),
    Case("eval-no-grad-fails", "eval-no-grad", result(), False,
         "the eval output requires grad; run it under torch.no_grad() or add :no-grad:"),
    Case("eval-no-grad-not-a-tensor", "eval-no-grad",
         result(eval_=run("eval", requires_grad=None)), False,
         "the example has no eval pass returning a tensor"),
    Case("eval-tracks-grad-no-eval", "eval-tracks-grad", TRAIN_ONLY, False,
         "the example has no eval pass returning a tensor"),
]


def test_vocabulary_is_the_specs() -> None:
    assert tuple(CLAIMS) == (
        "differ", "same", "train-random", "eval-deterministic",
        "train-updates-buffers", "eval-keeps-buffers", "eval-tracks-grad", "eval-no-grad",
    )


def test_every_claim_is_in_the_table_holding_and_failing() -> None:
    assert {c.claim for c in CASES if c.held} == set(CLAIMS)
    assert {c.claim for c in CASES if not c.held} == set(CLAIMS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_claim(case: Case) -> None:
    (verdict,) = check((case.claim,), case.result)
    assert (verdict.claim, verdict.held, verdict.fact) == (case.claim, case.held, case.fact)


def test_verdicts_keep_the_order_of_the_claims() -> None:
    claims = ("eval-no-grad", "differ", "train-random")
    assert [v.claim for v in check(claims, result())] == list(claims)
    assert check((), result()) == []


REQUEST = ExampleRequest(code="net = ...", input="x")


def job(expect: tuple[str, ...], raises: str | None = None) -> ExampleRecord:
    return ExampleRecord("page", 12, 14, REQUEST, "key", raises, tuple(expect))


def test_diagnose_warns_once_per_contradicted_claim_at_the_directive() -> None:
    found = diagnose(job(("differ", "eval-no-grad", "eval-keeps-buffers")), result())
    assert found == [
        (":expect: differ: the train and eval outputs are equal", 12, "claim"),
        (":expect: eval-no-grad: the eval output requires grad; run it under torch.no_grad() "
         "or add :no-grad:", 12, "claim"),
    ]


def test_diagnose_is_silent_when_every_claim_holds() -> None:
    assert diagnose(job(("same", "eval-keeps-buffers")), result()) == []


def test_claims_on_an_expected_exception_are_one_warning() -> None:
    failure = Failure("exception", "ValueError: no", exc_type="ValueError",
                      exc_mro=("ValueError", "Exception", "BaseException", "object"), lineno=2)
    found = diagnose(job(("differ",), raises="ValueError"), ExampleResult(failure=failure))
    assert len(found) == 1
    message, line, kind = found[0]
    assert (line, kind) == (12, "claim")
    assert "raised ValueError" in message
    assert "remove :expect:" in message


def test_claims_on_a_failed_run_give_only_the_failure() -> None:
    failure = Failure("exception", "RuntimeError: boom", exc_type="RuntimeError",
                      exc_mro=("RuntimeError", "Exception", "BaseException", "object"), lineno=2)
    found = diagnose(job(("differ",)), ExampleResult(failure=failure))
    assert [(line, kind) for _, line, kind in found] == [(15, "exception")]
