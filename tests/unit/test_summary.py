"""summary: the comparison and the trace as doctree nodes, from results built here (no run)."""

from __future__ import annotations

import pytest
from docutils import nodes

from sphinx_evaldemo.examples import summary
from sphinx_evaldemo.examples.model import (
    Comparison,
    ExampleResult,
    LayerDiff,
    LeafDiff,
    ModeModule,
    ModeRun,
    Trace,
)

RUNS = (
    ModeRun("train", ("t",), requires_grad=True, deterministic=False, varied=("net[2]",),
            buffers_changed=("net[1].running_mean",)),
    ModeRun("eval", ("e",), requires_grad=False, deterministic=True),
)
DIFFER = Comparison(("train", "eval"), (LeafDiff("output", False, 1.0897, 8, 12),))
SAME = Comparison(("train", "eval"), (LeafDiff("output", True, 0.0, 0, 12),))


def _row(name: str, *, parts: bool = False, equal: bool = False, inputs_equal: bool = True) -> LayerDiff:
    return LayerDiff(name, "Dropout", "p=0.5", inputs_equal, equal, 0.0 if equal else 1.5,
                     0 if equal else 3, 4, parts=parts)


def _items(result: ExampleResult) -> list[str]:
    box = summary.facts(result)
    (listing,) = box.findall(nodes.bullet_list)
    return [" ".join(item.astext().split()) for item in listing.children]


def _result(**fields: object) -> ExampleResult:
    base: dict[str, object] = {"runs": RUNS, "comparison": DIFFER}
    return ExampleResult(**{**base, **fields})  # type: ignore[arg-type]  # a table of test fields


PARTINGS: list[tuple[str, Trace, str]] = [
    (
        "one-that-others-inherit",
        Trace(("train", "eval"), (_row("net[0]", equal=True), _row("net[1]", parts=True),
                                  _row("net[2]", inputs_equal=False)), ("net[1]",), 3, 2),
        "The modes part at net[1] (Dropout, p=0.5); the layers after it inherit the difference",
    ),
    (
        "the-last-layer",
        Trace(("train", "eval"), (_row("net[0]", equal=True), _row("net[1]", parts=True)),
              ("net[1]",), 2, 1),
        "The modes part at net[1] (Dropout, p=0.5)",
    ),
    (
        "two-branches",
        Trace(("train", "eval"), (_row("a", parts=True), _row("b", parts=True), _row("c", inputs_equal=False)),
              ("a", "b"), 3, 3),
        "The modes part at a (Dropout, p=0.5) and b (Dropout, p=0.5); the layers after them inherit the difference",
    ),
    (
        "many-partings-past-the-table",
        Trace(("train", "eval"), (), tuple(f"m{i}" for i in range(7)), 7, 7),
        "The modes part at m0, m1, m2, m3 and m4 (and 2 more)",
    ),
    (
        "nowhere",
        Trace(("train", "eval"), (_row("net", equal=True),), (), 1, 0),
        "The modes do not part: the one traced module call gave the same output in both modes.",
    ),
    (
        "outside-the-traced-modules",
        Trace(("train", "eval"), (_row("net[0]", equal=True), _row("net[1]", equal=True)), (), 2, 0),
        "The modes part outside the traced modules: no module's output differs while its inputs were equal.",
    ),
]


@pytest.mark.parametrize(("case", "trace", "text"), PARTINGS, ids=[p[0] for p in PARTINGS])
def test_where_the_modes_part(case: str, trace: Trace, text: str) -> None:
    comparison = SAME if case == "nowhere" else DIFFER
    assert _items(_result(trace=trace, comparison=comparison))[1] == text


def test_items_in_plain_words() -> None:
    found = (ModeModule("net[1]", "BatchNorm1d", "5", "BatchNorm1d(5, eps=1e-05)"),
             ModeModule("net[2]", "Dropout", "p=0.0", "Dropout(p=0.0)", "reads the mode, but with p=0 it changes nothing"),
             ModeModule("net[3]", "Dropout", "p=0.5", "Dropout(p=0.5)"))
    assert _items(_result(mode_dependent=found)) == [
        "Outputs (train vs eval): 8 of 12 values differ (largest difference 1.09)",
        "Mode-dependent modules: net[1] (BatchNorm1d, 5), net[2] (Dropout, p=0.0): reads the mode, "
        "but with p=0 it changes nothing; net[3] (Dropout, p=0.5)",
        "Repeatability: train: a second pass gave different values, first at net[2]; "
        "eval: a second pass gave the same values",
        "Output tracks gradients (requires_grad): train yes, eval no",
        "Buffers changed by the pass: train: net[1].running_mean; eval: none",
    ]


def test_module_names_carry_their_full_repr() -> None:
    found = (ModeModule("net[1]", "BatchNorm1d", "5", "BatchNorm1d(5, eps=1e-05)"),)
    names = list(summary.facts(_result(mode_dependent=found)).findall(summary.evaldemo_module))
    assert [(n.astext(), n.get("full")) for n in names] == [
        ("net[1]", "BatchNorm1d(5, eps=1e-05)"), ("net[2]", None), ("net[1].running_mean", None)]


def test_one_differing_value_is_singular() -> None:
    one = Comparison(("eval", "train"), (LeafDiff("output", False, 0.5, 1, 4),))
    assert _items(_result(comparison=one))[0] == "Outputs (eval vs train): 1 of 4 value differs (largest difference 0.5)"


def test_notes_name_modules_as_literals() -> None:
    box = summary.facts(_result(notes=("In eval mode `net[1]` (Counts) changed its buffers (seen).",)))
    (note,) = [p for p in box.findall(nodes.paragraph) if "evaldemo-note" in p["classes"]]
    assert note.astext() == "Note: In eval mode net[1] (Counts) changed its buffers (seen)."
    assert [n.astext() for n in note.findall(summary.evaldemo_module)] == ["net[1]"]


def test_equal_outputs_with_mode_dependent_modules_get_the_note() -> None:
    found = (ModeModule("net[1]", "Dropout", "p=0.0", "", "reads the mode, but with p=0 it changes nothing"),)
    box = summary.facts(_result(comparison=SAME, mode_dependent=found))
    notes = [p.astext() for p in box.findall(nodes.paragraph) if "evaldemo-note" in p["classes"]]
    assert notes == [summary.SAME_OUTPUT_NOTE]


def _table_rows(trace: Trace) -> list[list[str]]:
    box = summary.table(trace)
    (body,) = box.findall(nodes.tbody)
    return [[entry.astext() for entry in row.children] for row in body.children]


def test_table_counts_what_it_leaves_out() -> None:
    trace = Trace(
        ("train", "eval"),
        (_row("net[7]", equal=True), _row("net[8]", parts=True),
         LayerDiff("net[9]", "Linear", "", False, False, None, None, None)),
        ("net[8]",), calls=100, differing_calls=92, before=7, after=90, differing_after=90,
        largest_after=2.25,
    )
    assert _table_rows(trace) == [
        ["… 7 earlier calls", "", "", "", ""],
        ["net[7]", "Dropout, p=0.5", "0", "0 of 4 (0%)", ""],
        ["net[8]", "Dropout, p=0.5", "1.5", "3 of 4 (75%)", "the modes part here"],
        ["net[9]", "Linear", "n/a", "differ", "inputs already differ"],
        ["… 90 more calls", "", "", "90 of them differ, largest difference 2.25", ""],
    ]
    box = summary.table(trace)
    assert box["title"] == "Layer by layer: 100 module calls, 92 with different outputs in train and eval"
    (title,) = box.findall(summary.evaldemo_trace_title)
    assert title.astext() == box["title"]
    rows = list(box.findall(nodes.row))
    assert ["evaldemo-parts" in row["classes"] for row in rows] == [False, False, False, True, False, False]
