"""``:expect:`` claims, checked against the facts of a real run. No Sphinx, no torch."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .model import ExampleResult, LeafDiff, ModeRun, outcome


@dataclass(frozen=True, slots=True)
class Verdict:
    claim: str
    held: bool
    fact: str  # what the run measured, said so that a contradicted claim reads well


def _run(result: ExampleResult, mode: str) -> ModeRun | None:
    return next((run for run in result.runs if run.mode == mode), None)


def _outputs(result: ExampleResult, want_differ: bool, claim: str) -> Verdict:
    """``differ`` holds when the comparison's verdict is "differ"; ``same`` when it is
    "equal" or "equal up to rounding"; neither when the outputs could not be compared."""
    comparison = result.comparison
    if comparison is None:
        return Verdict(claim, False, "needs both modes (:modes: train eval) to compare outputs")
    verdict = comparison.verdict
    if verdict == "differ":
        worst = _worst([leaf for leaf in comparison.leaves if outcome(leaf.equal, leaf.verdict) == "differ"])
        if worst is None:
            amount = "beyond the leaves shown"
        elif worst.max_abs_diff is not None:
            amount = f"largest absolute difference {worst.max_abs_diff:.4g}"
        else:
            amount = worst.note or "they differ"
        fact = f"the train and eval outputs differ, {amount}"
    elif verdict == "incomparable":
        why = next(leaf.note for leaf in comparison.leaves if leaf.verdict == "incomparable")
        return Verdict(claim, False, f"the train and eval outputs cannot be compared ({why})")
    elif verdict == "rounding":
        fact = "the train and eval outputs are equal up to rounding"
    else:
        fact = "the train and eval outputs are equal"
    return Verdict(claim, (verdict == "differ") == want_differ, fact)


def _worst(leaves: list[LeafDiff]) -> LeafDiff | None:
    """The leaf with the largest difference; a NaN difference (NaN in one mode only) first."""
    def size(leaf: LeafDiff) -> float:
        value = leaf.max_abs_diff
        return -1.0 if value is None else (math.inf if math.isnan(value) else value)
    return max(leaves, key=size, default=None)


def _deterministic(mode: str, want: bool, claim: str) -> Callable[[ExampleResult], Verdict]:
    def check(result: ExampleResult) -> Verdict:
        run = _run(result, mode)
        if run is None:
            return Verdict(claim, False, f"the example has no {mode} pass (see :modes:)")
        if run.deterministic is None:
            return Verdict(claim, False, f"two {mode} passes could not be compared")
        fact = (
            f"two {mode} passes gave the same output"
            if run.deterministic else f"two {mode} passes gave different outputs"
        )
        return Verdict(claim, run.deterministic == want, fact)
    return check


def _buffers(mode: str, want_changed: bool, claim: str) -> Callable[[ExampleResult], Verdict]:
    def check(result: ExampleResult) -> Verdict:
        run = _run(result, mode)
        if run is None:
            return Verdict(claim, False, f"the example has no {mode} pass (see :modes:)")
        changed = bool(run.buffers_changed)
        fact = (
            f"the {mode} pass changed {', '.join(run.buffers_changed)}"
            if changed else f"the {mode} pass changed no buffer"
        )
        return Verdict(claim, changed == want_changed, fact)
    return check


def _grad(want: bool, claim: str) -> Callable[[ExampleResult], Verdict]:
    def check(result: ExampleResult) -> Verdict:
        run = _run(result, "eval")
        if run is None or run.requires_grad is None:
            return Verdict(claim, False, "the example has no eval pass returning a tensor")
        fact = (
            "the eval output requires grad; run it under torch.no_grad() or add :no-grad:"
            if run.requires_grad
            else "the eval output does not require grad"
        )
        return Verdict(claim, run.requires_grad == want, fact)
    return check


CLAIMS: dict[str, Callable[[ExampleResult], Verdict]] = {
    "differ": lambda result: _outputs(result, True, "differ"),
    "same": lambda result: _outputs(result, False, "same"),
    "train-random": _deterministic("train", False, "train-random"),
    "eval-deterministic": _deterministic("eval", True, "eval-deterministic"),
    "train-updates-buffers": _buffers("train", True, "train-updates-buffers"),
    "eval-keeps-buffers": _buffers("eval", False, "eval-keeps-buffers"),
    "eval-tracks-grad": _grad(True, "eval-tracks-grad"),
    "eval-no-grad": _grad(False, "eval-no-grad"),
}


def check(claims: tuple[str, ...], result: ExampleResult) -> list[Verdict]:
    """One verdict per claim, in the order the page lists them."""
    return [CLAIMS[claim](result) for claim in claims]
