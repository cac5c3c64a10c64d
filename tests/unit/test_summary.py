"""summary: the sentence, the notes, the full facts and the per-layer table, from results built here (no run)."""

from __future__ import annotations

import pytest
from docutils import nodes

from sphinx_evaldemo.examples import summary
from sphinx_evaldemo.examples.model import (
    Comparison,
    ExampleRequest,
    ExampleResult,
    LayerDiff,
    LeafDiff,
    ModeModule,
    ModeRun,
    Trace,
)
from sphinx_evaldemo.examples.nodes import evaldemo_module

RUNS = (
    ModeRun("train", ("t",), requires_grad=True, deterministic=False, varied=("net[2]",),
            buffers_changed=("net[1].running_mean",)),
    ModeRun("eval", ("e",), requires_grad=True, deterministic=True),
)
DIFFER = Comparison(("train", "eval"), (LeafDiff("output", False, 1.0897, 8, 12),))
SAME = Comparison(("train", "eval"), (LeafDiff("output", True, 0.0, 0, 12),))


def _row(name: str, *, parts: bool = False, equal: bool = False, inputs_equal: bool = True) -> LayerDiff:
    return LayerDiff(name, "Dropout", "p=0.5", inputs_equal, equal, 0.0 if equal else 1.5,
                     0 if equal else 3, 4, parts=parts)


def _result(**fields: object) -> ExampleResult:
    base: dict[str, object] = {"runs": RUNS, "comparison": DIFFER}
    return ExampleResult(**{**base, **fields})  # type: ignore[arg-type]  # a table of test fields


def _lead(result: ExampleResult) -> list[str]:
    return [" ".join(p.astext().split()) for p in summary.lead(result)]


def _notes(result: ExampleResult, request: ExampleRequest | None = None) -> list[str]:
    return [p.astext() for p in summary.notes(result, request)]


DROPOUT = ModeModule("net[1]", "Dropout", "p=0.5", "Dropout(p=0.5, inplace=False)")
WHY: list[tuple[str, dict[str, object], ModeModule, str]] = [
    ("dropout", {"family": "dropout", "p": 0.5, "zeroed": 6, "total": 12, "nonzero": 12, "scale": 2.0},
     DROPOUT,
     "net[1] (Dropout, p=0.5) zeroed 6 of its 12 inputs in train mode and scaled the "
     "rest by 1/(1 - 0.5) = 2; eval mode passes every value through."),
    ("dropout-after-relu", {"family": "dropout", "p": 0.25, "zeroed": 3, "total": 12, "nonzero": 7,
                            "scale": 1.333},
     ModeModule("net[1]", "Dropout", "p=0.25"),
     "net[1] (Dropout, p=0.25) zeroed 3 of its 7 nonzero inputs in train mode and scaled "
     "the rest by 1/(1 - 0.25) = 1.333; eval mode passes every value through."),
    ("alpha", {"family": "alpha", "p": 0.5, "replaced": 6, "total": 12, "a": 0.8864, "b": 0.7792,
               "value": -0.7792},
     ModeModule("net[1]", "AlphaDropout", "p=0.5"),
     "net[1] (AlphaDropout, p=0.5) replaced 6 of 12 values with -0.7792 in train mode and mapped "
     "the rest through 0.8864·x + 0.7792, which keeps the mean and the variance; eval mode "
     "passes every value through."),
    ("batchnorm", {"family": "norm", "channels": 3, "mean": -0.1195, "var": 0.1442,
                   "running_mean": 0.0, "running_var": 1.0, "mean_range": [-0.33, 0.3],
                   "var_range": [0.1, 0.6], "updated": True},
     ModeModule("net[1]", "BatchNorm1d", "3"),
     "net[1] (BatchNorm1d, 3) normalised with this batch's own mean and variance in train mode "
     "(channel 0: -0.1195 and 0.1442) and updated its running estimates; eval mode used the "
     "running estimates (0 and 1)."),
    ("rrelu", {"family": "rrelu", "negatives": 4, "low": 0.2207, "high": 0.3271, "lower": 0.125,
               "upper": 0.3333, "mean": 0.2292},
     ModeModule("net[1]", "RReLU", ""),
     "net[1] (RReLU) multiplied its 4 negative inputs by random slopes from 0.2207 to 0.3271 in "
     "train mode (drawn between 0.125 and 0.3333); eval mode uses the fixed mean slope 0.2292."),
    ("recurrent", {"family": "recurrent", "p": 0.3, "layers": 2}, ModeModule("net[1]", "LSTM", "4, 3"),
     "net[1] (LSTM, 4, 3) drops values (p=0.3) between its 2 layers in train mode only; eval mode "
     "passes them through."),
    ("attention", {"family": "attention", "p": 0.1}, ModeModule("net[1]", "MultiheadAttention", ""),
     "net[1] (MultiheadAttention) drops attention weights (p=0.1) in train mode only; eval mode "
     "keeps them all."),
    ("user", {"family": "user", "line": "if self.training:"}, ModeModule("net[1]", "Gate", ""),
     "net[1] (Gate) reads the mode in if self.training:: train mode took that branch, eval mode the other."),
]


@pytest.mark.parametrize(("case", "fact", "module", "text"), WHY, ids=[w[0] for w in WHY])
def test_the_sentence_per_family(case: str, fact: dict[str, object], module: ModeModule, text: str) -> None:
    result = _result(mode_dependent=(module,), extra={"why": [{"name": "net[1]", "type": module.type, **fact}]})
    assert _lead(result)[0] == text


def test_a_layer_that_cannot_change_the_result_gets_no_sentence() -> None:
    off = ModeModule("net[1]", "Dropout", "p=0.0", "", "reads the mode, but with p=0 it changes nothing")
    result = _result(mode_dependent=(off,), extra={"why": [{"name": "net[1]", "type": "Dropout",
                                                            "family": "dropout", "p": 0.0, "zeroed": 0,
                                                            "total": 4, "nonzero": 4, "scale": 1.0}]})
    assert _lead(result) == ["The train and eval outputs differ in 8 of 12 values (largest difference 1.09)."]


PARTINGS: list[tuple[str, Trace, str]] = [
    (
        "one-that-others-inherit",
        Trace(("train", "eval"), (_row("net[0]", equal=True), _row("net[1]", parts=True),
                                  _row("net[2]", inputs_equal=False)), ("net[1]",), 3, 2),
        "Train and eval first differ at net[1] (Dropout).",
    ),
    (
        "the-last-layer",
        Trace(("train", "eval"), (_row("net[0]", equal=True), _row("net[1]", parts=True)),
              ("net[1]",), 2, 1),
        "Train and eval first differ at net[1] (Dropout).",
    ),
    (
        "two-branches",
        Trace(("train", "eval"), (_row("a", parts=True), _row("b", parts=True), _row("c", inputs_equal=False)),
              ("a", "b"), 3, 3),
        "Train and eval first differ at a (Dropout) and b (Dropout).",
    ),
    (
        "many-partings-past-the-table",
        Trace(("train", "eval"), (), tuple(f"m{i}" for i in range(7)), 7, 7),
        "Train and eval first differ at m0, m1, m2, m3 and m4 (and 2 more).",
    ),
    (
        "outside-the-traced-modules",
        Trace(("train", "eval"), (_row("net[0]", equal=True), _row("net[1]", equal=True)), (), 2, 0),
        "Train and eval differ outside the traced layers: no layer's output differs while its inputs were equal.",
    ),
]


@pytest.mark.parametrize(("case", "trace", "text"), PARTINGS, ids=[p[0] for p in PARTINGS])
def test_where_train_and_eval_first_differ(case: str, trace: Trace, text: str) -> None:
    (lead,) = _lead(_result(trace=trace))
    assert lead.startswith(text + " ")
    assert lead.endswith("The train and eval outputs differ in 8 of 12 values (largest difference 1.09).")


def test_one_layer_named_by_its_sentence_says_no_parting() -> None:
    trace = Trace(("train", "eval"), (_row("net", parts=True),), ("net",), 1, 1)
    fact = {"name": "net", "type": "Dropout", "family": "dropout", "p": 0.5, "zeroed": 6, "total": 12,
            "nonzero": 12, "scale": 2.0}
    lead = _lead(_result(trace=trace, extra={"why": [fact]}))
    assert lead[1:] == ["The train and eval outputs differ in 8 of 12 values (largest difference 1.09)."]
    # without a sentence of its own (a parametrization, say), the parting says where
    assert _lead(_result(trace=trace))[0].startswith("Train and eval first differ at net (Dropout).")


@pytest.mark.parametrize(
    ("leaf", "text"),
    [
        pytest.param(LeafDiff("output", False, 0.5, 1, 4), "differ in 1 of 4 values (largest difference 0.5)", id="one"),
        pytest.param(LeafDiff("output", False, 2.0, 4, 4), "differ in all 4 values (largest difference 2)", id="all"),
        pytest.param(LeafDiff("output", True, 0.0, 0, 4), "are equal", id="equal"),
        pytest.param(LeafDiff("output", True, 1e-07, 0, 4, verdict="rounding"),
                     "are equal up to rounding (largest difference 1e-07)", id="rounding"),
    ],
)
def test_how_much_the_outputs_differ(leaf: LeafDiff, text: str) -> None:
    comparison = Comparison(("train", "eval"), (leaf,))
    assert _lead(_result(comparison=comparison)) == [f"The train and eval outputs {text}."]


def test_several_outputs_in_one_sentence() -> None:
    comparison = Comparison(("train", "eval"), (LeafDiff("[0]", False, 1.0, 2, 4), LeafDiff("[1]", True, 0.0, 0, 4)))
    assert _lead(_result(comparison=comparison)) == [
        "The train and eval outputs differ, part by part: [0] differ in 2 of 4 values (largest difference 1); [1] equal."]


@pytest.mark.parametrize(
    ("grads", "no_grad", "note"),
    [
        pytest.param((True, True), False, None, id="both-track"),
        pytest.param((True, False), True, None, id="no-grad-stops-eval"),
        pytest.param((False, False), False, None, id="nothing-to-track"),
        pytest.param((True, False), False,
                     "Note: The train output tracks gradients and the eval output does not (requires_grad).",
                     id="eval-stops-by-itself"),
    ],
)
def test_gradient_line_only_when_surprising(grads: tuple[bool, bool], no_grad: bool, note: str | None) -> None:
    runs = (ModeRun("train", ("t",), requires_grad=grads[0], deterministic=True),
            ModeRun("eval", ("e",), requires_grad=grads[1], deterministic=True))
    request = ExampleRequest(code="", input="x", no_grad=no_grad)
    assert _notes(_result(runs=runs), request) == ([note] if note else [])


def test_compact_has_no_empty_lines() -> None:
    """A model without buffers, whose modes track gradients as expected: no facts box at all."""
    runs = (ModeRun("train", ("t",), requires_grad=True, deterministic=False),
            ModeRun("eval", ("e",), requires_grad=True, deterministic=True))
    assert summary.facts(_result(runs=runs), "compact") is None


def test_full_lists_every_fact() -> None:
    found = (ModeModule("net[1]", "BatchNorm1d", "5", "BatchNorm1d(5, eps=1e-05)"),
             ModeModule("net[2]", "Dropout", "p=0.0", "Dropout(p=0.0)", "reads the mode, but with p=0 it changes nothing"),
             ModeModule("net[3]", "Dropout", "p=0.5", "Dropout(p=0.5)"))
    box = summary.facts(_result(mode_dependent=found), "full")
    assert box is not None
    (listing,) = box.findall(nodes.bullet_list)
    assert [" ".join(item.astext().split()) for item in listing.children] == [
        "Mode-dependent layers: net[1] (BatchNorm1d, 5); net[2] (Dropout, p=0.0): reads the mode, "
        "but with p=0 it changes nothing; net[3] (Dropout, p=0.5).",
        "Repeatable: train: a second pass gave different values, first at net[2]; "
        "eval: a second pass gave the same values.",
        "Output tracks gradients (requires_grad): train yes, eval yes.",
        "Buffers the pass changed: train: net[1].running_mean; eval: none.",
    ]
    names = list(box.findall(evaldemo_module))
    assert ("net[1]", "BatchNorm1d(5, eps=1e-05)") in [(n.astext(), n.get("full")) for n in names]


def test_notes_name_modules_as_literals() -> None:
    (note,) = summary.notes(_result(notes=("In eval mode `net[1]` (Counts) changed its buffers (seen).",)), None)
    assert note.astext() == "Note: In eval mode net[1] (Counts) changed its buffers (seen)."
    assert [n.astext() for n in note.findall(evaldemo_module)] == ["net[1]"]


def test_equal_outputs_with_mode_dependent_modules_get_the_note() -> None:
    found = (DROPOUT,)
    assert _notes(_result(comparison=SAME, mode_dependent=found)) == ["Note: " + summary.SAME_OUTPUT_NOTE]
    off = (ModeModule("net[1]", "Dropout", "p=0.0", "", "reads the mode, but with p=0 it changes nothing"),)
    assert _notes(_result(comparison=SAME, mode_dependent=off)) == [
        "Note: " + summary.SAME_OUTPUT_NOTE,
        "Note: net[1] (Dropout, p=0.0): reads the mode, but with p=0 it changes nothing."]
    assert _notes(_result(comparison=SAME, mode_dependent=())) == []


def _table(trace: Trace, details: str = "compact") -> tuple[str, list[list[str]]]:
    box = summary.table(trace, details)
    (body,) = box.findall(nodes.tbody)
    title = next(p for p in box.findall(nodes.paragraph) if "evaldemo-trace-title" in p["classes"])
    return title.astext(), [[entry.astext() for entry in row.children] for row in body.children]


TRACE = Trace(
    ("train", "eval"),
    (_row("net[7]", equal=True), _row("net[8]", parts=True),
     LayerDiff("net[9]", "Linear", "", False, False, None, None, None)),
    ("net[8]",), calls=100, differing_calls=92, before=7, after=90, differing_after=90,
    largest_after=2.25,
)


def test_full_table_counts_what_it_leaves_out() -> None:
    title, rows = _table(TRACE, "full")
    assert rows == [
        ["… 7 earlier calls", "", "", "", ""],
        ["net[7]", "Dropout, p=0.5", "0", "none", ""],
        ["net[8]", "Dropout, p=0.5", "1.5", "3 of 4 (75%)", "first differs here"],
        ["net[9]", "Linear", "n/a", "differ", "inputs differ"],
        ["… 90 more calls", "", "", "90 of them differ, largest difference 2.25", ""],
    ]
    assert title == "Layer by layer: 100 layer calls, 92 with different outputs in train and eval"


def test_compact_table_has_three_columns() -> None:
    _, rows = _table(TRACE)
    assert rows[2] == ["net[8]", "Dropout", "3 of 4 (75%)"]
    assert rows[-1] == ["… 90 more calls", "", "90 of them differ, largest difference 2.25"]


@pytest.mark.parametrize("details", summary.DETAILS)
def test_table_fits_80_columns_in_text(details: str) -> None:
    widths = summary.WIDTHS[details]
    assert sum(widths) + 3 * len(widths) + 1 <= 80


@pytest.mark.parametrize(
    ("trace", "shown"),
    [
        pytest.param(Trace(("train", "eval"), (_row("net", parts=True),), ("net",), 1, 1), False, id="one-row"),
        pytest.param(TRACE, True, id="several-layers-that-differ"),
        pytest.param(Trace(("train", "eval"), (_row("a", equal=True), _row("b", equal=True)), (), 2, 0),
                     False, id="several-equal"),
    ],
)
def test_compact_shows_the_table_for_several_layers_that_differ(trace: Trace, shown: bool) -> None:
    comparison = DIFFER if shown else SAME
    box = summary.facts(_result(trace=trace, comparison=comparison, mode_dependent=()), "compact")
    assert (box is not None and any(box.findall(nodes.table))) == shown
