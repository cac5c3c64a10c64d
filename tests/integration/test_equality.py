"""Every consumer of the equality agrees with it, on a real build of test-equality.

Each example's pairs (train against eval, two eval passes, the buffers before and after
the eval pass) are computed here, directly, running the example's own code; the verdict
of the one equality on them must be what the page shows everywhere it shows one: the
outputs line, the repeatability line, the buffers line, the claims, the per-layer row of
the module that returns the output, and the marks on the grid.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from bs4 import BeautifulSoup
from sphinx.testing.util import SphinxTestApp

from sphinx_evaldemo.examples import compare, equality
from tests.conftest import ROOTS, Build
from tests.helpers import flat, sections, seed_all
from tests.helpers import warnings as warned_of

SOURCE = (ROOTS / "test-equality" / "index.md").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Example:
    code: str
    input: str
    expect: tuple[str, ...]


def examples() -> dict[str, Example]:
    """The root's examples, read from its source: ``## name`` then one fence."""
    found = {}
    for name, body in re.findall(r"^## (\S+)\n(.*?)(?=^## |\Z)", SOURCE, re.S | re.M):
        fence = body.split("```{evaldemo}\n", 1)[1].split("\n```", 1)[0]
        head, code = fence.split("\n\n", 1)
        options = dict(line[1:].split(": ", 1) for line in head.splitlines())
        found[name] = Example(code, options["input"], tuple(options["expect"].split()))
    return found


EXAMPLES = examples()

#: the outputs' verdict each example was written to give (checked against a direct run),
#: and the layer whose output is the model's output
DESIGNED = {
    "nan": ("equal", "net[1]"),
    "nan-vs-number": ("differ", "net[1]"),
    "python-nan": ("equal", None),
    "big-ints": ("differ", "net"),
    "rounding": ("rounding", "net.parametrizations.weight[0]"),
    "sparse-quantized": ("equal", "net"),
    "meta": ("incomparable", "net"),
    "big-dataclass": ("differ", "net"),
    "list-vs-dict": ("differ", "net"),
    "many-leaves": ("differ", "net"),
}

#: how the page says each verdict
OUTPUTS = {
    "equal": r"The train and eval outputs are equal[.,]",
    "rounding": r"The train and eval outputs are equal up to rounding",
    "differ": r"The train and eval outputs differ",
    "incomparable": r"The train and eval outputs (are not comparable|cannot all be compared)",
}


@dataclass(frozen=True)
class Direct:
    outputs: str  # train against eval
    eval_repeat: str  # two eval passes
    eval_buffers: str  # the buffers before and after the eval pass
    differing: int | None  # elements of a lone tensor output that differ


def direct(example: Example) -> Direct:
    """The example run here, as the harness runs it: one start state, each mode seeded."""
    seed_all(0)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(example.code, namespace)  # the page's own code
        net, value = namespace["net"], eval(example.input, namespace)
        start = {k: v.clone() for k, v in net.state_dict().items()}
        outputs, repeat, buffers = {}, "", ""
        for mode in ("train", "eval"):
            net.load_state_dict(start)
            net.train(mode == "train")
            seed_all(0)
            before = {k: v.clone() for k, v in net.named_buffers()}
            first = compare.snapshot(net(value.clone()))
            after = dict(net.named_buffers())
            second = compare.snapshot(net(value.clone()))
            outputs[mode] = first
            if mode == "eval":
                repeat = equality.verdict(equality.compare(first, second))
                buffers = equality.verdict(equality.compare(before, after))
    found = list(equality.compare(outputs["train"], outputs["eval"]))
    lone = found[0].differing if len(found) == 1 and isinstance(outputs["train"], torch.Tensor) else None
    return Direct(equality.verdict(found), repeat, buffers, lone)


@pytest.fixture(scope="module")
def text_app(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("equality", "text")


@pytest.fixture(scope="module")
def page(text_app: SphinxTestApp) -> dict[str, str]:
    return {name: flat(body) for name, body in
            sections((text_app.outdir / "index.txt").read_text(encoding="utf-8")).items()}


@pytest.fixture(scope="module")
def html(sphinx_build: Build, text_app: SphinxTestApp) -> BeautifulSoup:
    app = sphinx_build("equality", "html")  # the same copy: every result from the cache
    return BeautifulSoup((app.outdir / "index.html").read_text(encoding="utf-8"), "html.parser")


def test_every_example_is_in_the_table() -> None:
    assert set(EXAMPLES) == set(DESIGNED)


@pytest.mark.parametrize("name", sorted(DESIGNED))
def test_the_direct_run_gives_the_designed_verdicts(name: str) -> None:
    found = direct(EXAMPLES[name])
    assert (found.outputs, found.eval_repeat, found.eval_buffers) == (
        DESIGNED[name][0], "incomparable" if name == "meta" else "equal", "equal")


@pytest.mark.parametrize("name", sorted(DESIGNED))
def test_every_consumer_on_the_page_gives_the_comparisons_verdict(name: str, page: dict[str, str]) -> None:
    found, text = direct(EXAMPLES[name]), page[name]
    # the outputs
    assert re.search(OUTPUTS[found.outputs], text), text
    for other, pattern in OUTPUTS.items():
        assert other == found.outputs or not re.search(pattern, text), other
    if found.outputs != "differ":
        assert "outputs differ, part by part" not in text
    # the claims on the outputs and on repeatability: "same" holds for rounding too
    claims = text.split("Claims checked by the build: ", 1)[1].split(" What the run shows", 1)[0]
    for claim in EXAMPLES[name].expect:
        if claim == "same":
            held = found.outputs in ("equal", "rounding")
        elif claim == "differ":
            held = found.outputs == "differ"
        elif claim == "eval-deterministic":
            held = found.eval_repeat in ("equal", "rounding")
        else:
            assert claim == "eval-keeps-buffers"
            held = found.eval_buffers in ("equal", "rounding")
        assert (f'"{claim}" holds' in claims) is held, (claim, claims)
        assert (f'"{claim}" does NOT hold' in claims) is not held, (claim, claims)
    # the determinism check and the buffers
    if found.eval_repeat == "incomparable":  # not checked: no line claims either way
        assert "eval: a second pass" not in text
    else:
        assert "eval: a second pass gave the same values" in text
    # the buffers line is there only when a pass changed a buffer (nothing empty is shown)
    buffers = re.search(r"Buffers the pass changed: ([^.]*)\.", text)
    assert (buffers is not None and "eval: none" not in buffers.group(1)) is (found.eval_buffers != "equal")
    # the per-layer row of the module that returns the output
    layer = DESIGNED[name][1]
    if layer is not None:
        rest = text.split(f'| "{layer[:9]}', 1)[1].split('| "', 1)[0]  # a long name wraps
        if found.outputs == "differ":
            assert "first differs" in rest or "of" in rest
            assert " 0 of " not in rest
        elif found.outputs == "rounding":
            assert "equal up to" in rest  # the note cell wraps
        elif found.outputs == "incomparable":
            assert "not comparable" in rest
        else:
            assert re.search(r"\| none ", rest), rest


def test_no_example_ends_in_a_harness_failure(text_app: SphinxTestApp) -> None:
    found = warned_of(text_app.warning.getvalue())
    assert not [w for w in found if w.type == "evaldemo.worker"], found
    # the one contradicted claim: a meta output cannot be called "same"
    claims = [w for w in found if w.type == "evaldemo.claim"]
    assert [w.message.split(":")[2].strip() for w in claims] == ["same"]
    assert "cannot be compared (not comparable: meta tensors hold no values" in claims[0].message


@pytest.mark.parametrize("name", sorted(DESIGNED))
def test_the_marks_are_the_comparisons(name: str, html: BeautifulSoup) -> None:
    found = direct(EXAMPLES[name])
    section = html.find("section", id=name)
    assert section is not None
    grids = section.select("table.evaldemo-grid")
    if found.outputs != "differ":
        assert not section.select(".evaldemo-differs, .evaldemo-zeroed, .evaldemo-all")
        return
    if found.differing is None:
        return
    assert grids
    for panel in section.select("section.evaldemo-panel"):  # each marks the same elements
        if panel.select_one('.evaldemo-grid-box[data-all-differ="true"]'):  # every cell, said once
            marked = len(panel.select("table.evaldemo-grid td"))
        else:
            marked = len(panel.select("table.evaldemo-grid td.evaldemo-differs, table.evaldemo-grid td.evaldemo-zeroed"))
        assert marked == found.differing


def test_a_large_structured_output_is_bounded(page: dict[str, str]) -> None:
    text = page["many-leaves"]
    assert "… and 19936 more leaves, 19936 of them differ" in text
    assert text.count('"[') <= compare.MAX_LEAVES + 2
    assert len(text) < 60_000  # the two cut printouts and 64 lines


def test_integers_beyond_float64_are_shown_as_they_are(html: BeautifulSoup) -> None:
    section = html.find("section", id="big-ints")
    cells = [td.get_text() for td in section.select("table.evaldemo-grid td")]
    # each panel's grid: the train value 2**53 + 1, the eval value 2**53, marked apart
    assert any(cell.startswith(str(2**53 + 1)) for cell in cells), cells
    assert any(cell.startswith(str(2**53)) and not cell.startswith(str(2**53 + 1)) for cell in cells), cells
