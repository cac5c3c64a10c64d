"""What the run shows, in words: the sentence that says why the modes differ, the notes, the table.

The compact form (the default) says each fact once and leaves out what carries no
information for this model: first the sentence (what each mode-dependent layer did in
train mode, from ``result.extra["why"]``; then, for several layers, where train and
eval first differ; then how much the outputs differ), after the panels the notes that
would surprise a reader, and the per-layer table when the model has several layers
and the modes differ. ``full`` adds every fact of the run (:func:`full_items`) and the
whole table. Every node is a plain docutils node: one tree for every builder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from docutils import nodes

from .layers import DETAILS, WIDTHS, Details, Part, _para, _path, number, table, trace_rows
from .model import Comparison, ExampleRequest, ExampleResult, LeafDiff, ModeModule, Trace

__all__ = ["DETAILS", "WIDTHS", "Details", "facts", "lead", "notes", "number", "table", "trace_rows"]

#: A GPU pass that was not repeatable need not be random: say why, and how to rule it out.
GPU_NOTE = (
    "On a GPU, some kernels (atomic adds in reductions and backward passes) are not "
    "deterministic, so two passes can differ in the last bits without any randomness in "
    "the model; set torch.use_deterministic_algorithms(True) to rule them out."
)
#: Shown when a model reads the mode and yet both modes gave the same output.
SAME_OUTPUT_NOTE = (
    "the model has mode-dependent submodules, yet both modes gave the same output for this "
    "input, so the example may not show what it means to."
)
#: The sentence names this many layers' doings; the rest are counted.
MAX_REASONS = 3



def _named(name: str, label: str, full: str = "") -> list[Part]:
    """`` `net[2]` (Dropout, p=0.5) ``"""
    return [_path(name, full), f" ({label})" if label else ""]


def _values(differing: int | None, total: int | None, largest: float | None) -> str:
    """``8 of 12 values (largest difference 1.09)``; every value: ``all 12 values``."""
    count = "every value" if differing == total and total == 1 else (
        f"all {total} values" if differing == total else
        f"{differing} of {total} value" + ("" if total == 1 else "s"))
    size = f" (largest difference {number(largest)})" if largest is not None else ""
    return count + size


def _leaf_text(leaf: LeafDiff) -> str:
    """How one leaf compares, as the rest of a sentence whose subject it is."""
    if leaf.equal and leaf.verdict == "rounding":
        size = f" (largest difference {number(leaf.max_abs_diff)})" if leaf.max_abs_diff else ""
        return f"equal up to rounding{size}"
    if leaf.equal:
        return "equal"
    if leaf.verdict == "incomparable":
        return leaf.note or "not comparable"
    if leaf.note:
        return f"differ ({leaf.note})"
    if leaf.max_abs_diff is None or not leaf.total:
        return "differ"
    return f"differ in {_values(leaf.differing, leaf.total, leaf.max_abs_diff)}"


#: The outputs' verdict (:attr:`Comparison.verdict`) in a sentence.
VERDICTS = {"differ": "differ", "equal": "are equal", "rounding": "are equal up to rounding",
            "incomparable": "cannot all be compared"}


# --- the sentence ---------------------------------------------------------------------------


def _reason(fact: Mapping[str, Any], named: list[Part]) -> list[Part] | None:
    """What one mode-dependent layer did in train mode, against eval mode, in plain words."""
    family = fact.get("family")
    if family == "dropout":
        rest = "" if fact["nonzero"] == fact["total"] else " nonzero"
        of = f"{fact['nonzero']}{rest}" if rest else str(fact["total"])
        scale = f"1/(1 - {number(fact['p'])}) = {number(fact['scale'])}"
        return [*named, f" zeroed {fact['zeroed']} of its {of} inputs in train mode and "
                "scaled the rest by ", nodes.inline(scale, scale, classes=["evaldemo-formula"]),
                "; eval mode passes every value through."]
    if family == "alpha":
        return [*named, f" replaced {fact['replaced']} of {fact['total']} values with "
                f"{number(fact['value'])} in train mode and mapped the rest through "
                f"{number(fact['a'])}·x + {number(fact['b'])}, which keeps the mean and the "
                "variance; eval mode passes every value through."]
    if family == "norm":
        updated = " and updated its running estimates" if fact.get("updated") else ""
        return [*named, " normalised with this batch's own mean and variance in train mode "
                f"(channel 0: {number(fact['mean'])} and {number(fact['var'])}){updated}; "
                "eval mode used the running estimates "
                f"({number(fact['running_mean'])} and {number(fact['running_var'])})."]
    if family == "rrelu":
        many = "s" if fact["negatives"] != 1 else ""
        slopes = (f"random slopes from {number(fact['low'])} to {number(fact['high'])}"
                  if fact["negatives"] > 1 else f"a random slope of {number(fact['low'])}")
        return [*named, f" multiplied its {fact['negatives']} negative input{many} by {slopes} "
                f"in train mode (drawn between {number(fact['lower'])} and "
                f"{number(fact['upper'])}); eval mode uses the fixed mean slope "
                f"{number(fact['mean'])}."]
    if family == "recurrent":
        return [*named, f" drops values (p={number(fact['p'])}) between its {fact['layers']} "
                "layers in train mode only; eval mode passes them through."]
    if family == "attention":
        return [*named, f" drops attention weights (p={number(fact['p'])}) in train mode "
                "only; eval mode keeps them all."]
    if family == "user":
        line = str(fact.get("line") or "")
        if line:
            code = nodes.literal(line, line)
            return [*named, " reads the mode in ", code,
                    ": train mode took that branch, eval mode the other."]
        return [*named, " reads self.training, so its forward runs different code in each mode."]
    return None


def _several_layers(trace: Trace | None) -> bool:
    return trace is not None and trace.calls > 1


def _parting(trace: Trace, labels: Mapping[str, str], fulls: Mapping[str, str],
             outputs_differ: bool, said: frozenset[str] = frozenset()) -> list[Part]:
    """Where train and eval first differ; a layer the sentence already named is not
    described again (``said``)."""
    rows = {row.name: row for row in trace.layers}
    if not trace.parting:
        if trace.differing_calls or outputs_differ:
            return ["Train and eval differ outside the traced layers: no layer's output differs "
                    "while its inputs were equal."]
        return []
    parts: list[Part] = ["Train and eval first differ at "]
    shown = trace.parting[:5]
    for index, name in enumerate(shown):
        if index:
            parts.append(" and " if index == len(shown) - 1 else ", ")
        row = rows.get(name)
        label = "" if name in said else (labels.get(name) or (row.type if row else ""))
        parts += _named(name, label, fulls.get(name, ""))
    if len(trace.parting) > 5:
        parts.append(f" (and {len(trace.parting) - 5} more)")
    return [*parts, "."]


def _outputs(comparison: Comparison) -> list[Part]:
    a, b = comparison.modes
    if len(comparison.leaves) == 1 and not comparison.more:
        text = _leaf_text(comparison.leaves[0])
        are = "are " if text.startswith(("equal", "not comparable")) else ""
        return [f"The {a} and {b} outputs {are}{text}."]
    parts: list[Part] = [f"The {a} and {b} outputs {VERDICTS[comparison.verdict]}, part by part: "]
    for index, leaf in enumerate(comparison.leaves):
        parts += ["; " if index else "", nodes.literal(leaf.path, leaf.path), f" {_leaf_text(leaf)}"]
    if comparison.more:
        some = f", {comparison.more_differing} of them differ" if comparison.more_differing else ""
        parts.append(f"; … and {comparison.more} more leaves{some}")
    parts.append(".")
    return parts


def lead(result: ExampleResult) -> list[nodes.Node]:
    """The sentence first: why the modes differ, where they first differ, by how much."""
    comparison = result.comparison
    if comparison is None or result.failure is not None:
        return []
    found = {module.name: module for module in result.mode_dependent}
    out: list[nodes.Node] = []
    reasons = []
    said: set[str] = set()
    for fact in result.extra.get("why", ()):
        module = found.get(fact.get("name", ""))
        if module is not None and module.no_effect:
            continue
        label = module.label if module else str(fact.get("type", ""))
        reason = _reason(fact, _named(fact["name"], label, module.full if module else ""))
        if reason is not None:
            reasons.append(reason)
            said.add(str(fact["name"]))
    for reason in reasons[:MAX_REASONS]:
        out.append(_para(*reason, classes=["evaldemo-lead"]))
    if len(reasons) > MAX_REASONS:
        out.append(_para(f"{len(reasons) - MAX_REASONS} more mode-dependent layers act likewise.",
                         classes=["evaldemo-lead"]))
    closing: list[Part] = []
    trace = result.trace
    # where they first differ: for several layers, or where no layer's doings were said
    if trace is not None and (_several_layers(trace) or not reasons):
        labels = {module.name: module.label for module in result.mode_dependent}
        fulls = {module.name: module.full for module in result.mode_dependent}
        closing += _parting(trace, labels, fulls, comparison.differ, frozenset(said))
    closing += [" " if closing else "", *_outputs(comparison)]
    out.append(_para(*closing, classes=["evaldemo-lead"]))
    return out


# --- after the panels ---------------------------------------------------------------------


def _gradients_surprise(result: ExampleResult, request: ExampleRequest | None) -> str:
    """A line only when the modes disagree about gradients for a reason other than
    ``:no-grad:`` (``eval()`` alone never stops autograd)."""
    grads = {run.mode: run.requires_grad for run in result.runs}
    train, eval_ = grads.get("train"), grads.get("eval")
    if train is None or eval_ is None:
        return ""
    no_grad = request is not None and request.no_grad
    if eval_ == (train and not no_grad):
        return ""
    return (f"the train output {'tracks' if train else 'does not track'} gradients and the eval "
            f"output {'does' if eval_ else 'does not'} (requires_grad)")


def notes(result: ExampleResult, request: ExampleRequest | None) -> list[nodes.Node]:
    """What would surprise a reader: shown in both forms."""
    comparison = result.comparison
    found: list[list[Part]] = []
    if result.extra.get("device") == "cuda" and not all(r.deterministic for r in result.runs):
        found.append([GPU_NOTE])
    if comparison is not None and comparison.verdict in ("equal", "rounding") and result.mode_dependent:
        found.append([SAME_OUTPUT_NOTE])
        for module in result.mode_dependent:  # why, where a layer cannot change the result
            if module.no_effect:
                found.append([*_named(module.name, module.label, module.full), f": {module.no_effect}."])
    if comparison is not None and comparison.verdict == "rounding":
        found.append(["The outputs are equal only up to rounding (a few units in the last place)."])
    grads = _gradients_surprise(result, request)
    if grads:
        found.append([grads[0].upper() + grads[1:] + "."])
    found += [_with_names(note) for note in result.notes]
    return [_para("Note: ", *parts, classes=["evaldemo-note"]) for parts in found]


def _with_names(text: str) -> list[Part]:
    """Text from the worker, its `` `names` `` as module names."""
    pieces = text.split("`")
    return [_path(piece) if index % 2 else piece for index, piece in enumerate(pieces) if piece]


def _yes(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "no")


def _modules(found: Sequence[ModeModule]) -> list[Part]:
    if not found:
        return ["Mode-dependent layers: none found."]
    parts: list[Part] = ["Mode-dependent layers: "]
    for index, module in enumerate(found):
        if index:
            parts.append("; ")
        parts += _named(module.name, module.label, module.full)
        if module.no_effect:
            parts.append(f": {module.no_effect}")
    return [*parts, "."]


def full_items(result: ExampleResult) -> list[list[Part]]:
    """Every fact of the run, for ``:details: full``."""
    items = [_modules(result.mode_dependent)]
    checked = []
    for run in result.runs:
        if run.deterministic is None:
            continue
        verdict = "gave the same values" if run.deterministic else "gave different values"
        where: list[Part] = []
        if not run.deterministic and run.varied:
            where = [", first at ", _path(run.varied[0])]
        checked.append([f"{run.mode}: a second pass {verdict}", *where])
    if checked:
        parts: list[Part] = ["Repeatable: "]
        for index, piece in enumerate(checked):
            parts += (["; "] if index else []) + piece
        items.append([*parts, "."])
    items.append(["Output tracks gradients (requires_grad): "
                  + ", ".join(f"{run.mode} {_yes(run.requires_grad)}" for run in result.runs) + "."])
    if any(run.buffers_changed for run in result.runs):
        parts = ["Buffers the pass changed: "]
        for index, run in enumerate(result.runs):
            parts.append(("; " if index else "") + f"{run.mode}: ")
            for count, name in enumerate(run.buffers_changed):
                parts += [", " if count else "", _path(name)]
            if not run.buffers_changed:
                parts.append("none")
        items.append([*parts, "."])
    return items


def facts(result: ExampleResult, details: Details,
          request: ExampleRequest | None = None) -> nodes.container | None:
    """After the panels: the notes, the full facts (``full``), then the per-layer table."""
    box = nodes.container(classes=["evaldemo-comparison"])
    if details == "full":
        listing = nodes.bullet_list()
        for item in full_items(result):
            entry = nodes.list_item()
            entry += _para(*item)
            listing += entry
        box += _para("Every fact of the run", classes=["evaldemo-label"])
        box += listing
    box += notes(result, request)
    trace, comparison = result.trace, result.comparison
    differ = comparison is not None and comparison.differ
    if trace is not None and trace.layers and (
            details == "full" or (_several_layers(trace) and (differ or trace.differing_calls))):
        box += table(trace, details)
    return box if box.children else None
