"""``:expect:`` claims, checked against the facts of a real run. No Sphinx, no torch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .model import ExampleResult, ModeRun


@dataclass(frozen=True, slots=True)
class Verdict:
    claim: str
    held: bool
    fact: str  # what the run measured, said so that a contradicted claim reads well


def _run(result: ExampleResult, mode: str) -> ModeRun | None:
    return next((run for run in result.runs if run.mode == mode), None)


def _outputs(result: ExampleResult, want_differ: bool, claim: str) -> Verdict:
    comparison = result.comparison
    if comparison is None:
        return Verdict(claim, False, "needs both modes (:modes: train eval) to compare outputs")
    if comparison.differ:
        worst = max(
            (leaf for leaf in comparison.leaves if not leaf.equal),
            key=lambda leaf: leaf.max_abs_diff or 0.0,
        )
        amount = (
            f"largest absolute difference {worst.max_abs_diff:.4g}"
            if worst.max_abs_diff is not None else worst.note or "they differ"
        )
        fact = f"the train and eval outputs differ, {amount}"
    else:
        fact = "the train and eval outputs are equal"
    return Verdict(claim, comparison.differ == want_differ, fact)


def _deterministic(mode: str, want: bool, claim: str) -> Callable[[ExampleResult], Verdict]:
    def check(result: ExampleResult) -> Verdict:
        run = _run(result, mode)
        if run is None or run.deterministic is None:
            return Verdict(claim, False, f"the example has no {mode} pass (see :modes:)")
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
