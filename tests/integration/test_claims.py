"""``:expect:`` end to end: every claim holding and failing in a real build, the warning
at the directive's line naming the claim and the measured fact, what the page shows,
and the note for a mode-dependent model whose modes gave equal outputs."""

from __future__ import annotations

import pytest
import torch
from bs4 import BeautifulSoup
from sphinx.testing.util import SphinxTestApp
from torch import nn

from tests.conftest import ROOTS, Build
from tests.helpers import Warned, flat, line_of, sections, seed_all, titles, warnings

SOURCE = (ROOTS / "test-claims" / "index.md").read_text(encoding="utf-8")
FENCE = "```{evaldemo}"
CLAIMS = (
    "differ", "same", "train-random", "eval-deterministic",
    "train-updates-buffers", "eval-keeps-buffers", "eval-tracks-grad", "eval-no-grad",
)


def fence(section: str) -> int:
    return line_of(SOURCE, FENCE, after=f"## {section}")


def _dropout_difference() -> float:
    """The largest train/eval difference of the dropout examples, run directly."""
    seed_all(0)
    net = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5))
    x = torch.randn(4, 8)
    seed_all(0)
    with torch.no_grad():
        train = net.train()(x)
        seed_all(0)
        ev = net.eval()(x)
    return float((train - ev).abs().max())


#: (section, claim) -> the fact a contradicted claim's warning must state
FAILING = {
    ("dropout-fails", "same"): f"the train and eval outputs differ, largest absolute difference {_dropout_difference():.4g}",
    ("dropout-fails", "eval-no-grad"): "the eval output requires grad; run it under torch.no_grad() or add :no-grad:",
    ("linear-fails", "differ"): "the train and eval outputs are equal",
    ("linear-fails", "train-random"): "two train passes gave the same output",
    ("linear-fails", "train-updates-buffers"): "the train pass changed no buffer",
    ("linear-fails", "eval-tracks-grad"): "the eval output does not require grad",
    ("noisy-fails", "eval-deterministic"): "two eval passes gave different outputs",
    ("noisy-fails", "eval-keeps-buffers"): "the eval pass changed net.calls",
}
#: (section, claim) for every claim the run bears out
HOLDING = {
    ("dropout-holds", "differ"), ("dropout-holds", "train-random"),
    ("dropout-holds", "eval-deterministic"), ("dropout-holds", "eval-keeps-buffers"),
    ("dropout-holds", "eval-tracks-grad"),
    ("batchnorm-holds", "train-updates-buffers"), ("batchnorm-holds", "eval-keeps-buffers"),
    ("batchnorm-holds", "eval-no-grad"), ("batchnorm-holds", "eval-deterministic"),
    ("noisy-fails", "train-random"), ("noisy-fails", "same"),
    ("dropout-zero", "same"),
}


def test_the_tables_cover_every_claim_both_ways() -> None:
    assert {claim for _, claim in FAILING} == set(CLAIMS)
    assert {claim for _, claim in HOLDING} == set(CLAIMS)


@pytest.fixture(scope="module")
def text_app(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("claims", "text")


@pytest.fixture(scope="module")
def html_app(sphinx_build: Build, text_app: SphinxTestApp) -> SphinxTestApp:
    """The same copy as HTML: every result comes from the cache."""
    return sphinx_build("claims", "html")


@pytest.fixture(scope="module")
def page(text_app: SphinxTestApp) -> dict[str, str]:
    return sections((text_app.outdir / "index.txt").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def warned(text_app: SphinxTestApp) -> list[Warned]:
    return warnings(text_app.warning.getvalue())


def _claims_line(section: str) -> str:
    """The page's list of claims, with every space removed (the text builder wraps
    lines at hyphens, so "eval-no-grad" may come out as "eval-no- grad")."""
    text = flat(section)
    assert "Claims checked by the build: " in text
    return unspaced(text.split("Claims checked by the build: ", 1)[1].split(" Layer by layer", 1)[0].split(" Note: ", 1)[0])


def unspaced(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize(("section", "claim"), sorted(FAILING), ids=[f"{s}:{c}" for s, c in sorted(FAILING)])
def test_contradicted_claim_warns_at_the_directive(
    warned: list[Warned], section: str, claim: str
) -> None:
    mine = [w for w in warned if w.message.startswith(f":expect: {claim}:") and w.line == fence(section)]
    assert len(mine) == 1, warned
    (warning,) = mine
    assert warning.file == "index.md"
    assert warning.type == "evaldemo.claim"
    assert warning.message == f":expect: {claim}: {FAILING[section, claim]}"


def test_no_warning_for_claims_that_hold(warned: list[Warned]) -> None:
    claim_warnings = [w for w in warned if w.type == "evaldemo.claim"]
    assert len(claim_warnings) == len(FAILING)
    for section in ("dropout-holds", "batchnorm-holds", "dropout-zero"):
        assert not [w for w in warned if w.line == fence(section)]


@pytest.mark.parametrize(("section", "claim"), sorted(FAILING), ids=[f"{s}:{c}" for s, c in sorted(FAILING)])
def test_page_shows_a_contradicted_claim_and_the_fact(
    page: dict[str, str], section: str, claim: str
) -> None:
    shown = _claims_line(page[section])
    assert unspaced(f'"{claim}" does NOT hold ({FAILING[section, claim]})') in shown


@pytest.mark.parametrize(("section", "claim"), sorted(HOLDING), ids=[f"{s}:{c}" for s, c in sorted(HOLDING)])
def test_page_shows_a_claim_that_holds(page: dict[str, str], section: str, claim: str) -> None:
    shown = _claims_line(page[section])
    assert unspaced(f'"{claim}" holds') in shown


def test_claims_are_listed_in_the_order_the_page_gives_them(page: dict[str, str]) -> None:
    shown = _claims_line(page["noisy-fails"])
    order = [shown.index(unspaced(f'"{claim}"')) for claim in
             ("eval-deterministic", "eval-keeps-buffers", "train-random", "same")]
    assert order == sorted(order)


def test_note_for_mode_dependent_model_with_equal_outputs(page: dict[str, str]) -> None:
    note = "Note: the model has mode-dependent submodules, yet both modes gave the same output"
    assert note in flat(page["dropout-zero"])
    assert '"net[1]" (Dropout, p=0.0): reads the mode, but with p=0 it changes nothing' in flat(
        page["dropout-zero"])
    # not for a model without such submodules, nor for outputs that differ
    for section in ("noisy-fails", "linear-fails", "dropout-holds", "batchnorm-holds"):
        assert "Note: the model has mode-dependent submodules" not in flat(page[section])


def test_unknown_claim_warns_with_the_known_ones_and_does_not_run(
    warned: list[Warned], page: dict[str, str]
) -> None:
    (warning,) = [w for w in warned if w.line == fence("unknown-claim")]
    assert warning.type == "evaldemo.option"
    assert "knows no claim 'eval-randomness'" in warning.message
    assert warning.message.endswith("the claims are: " + " ".join(CLAIMS))
    shown = page["unknown-claim"]
    assert titles(shown) == []
    assert "This example was not run:" in flat(shown)
    assert "tensor(" not in shown


def test_expect_without_input_warns_and_does_not_run(
    warned: list[Warned], page: dict[str, str]
) -> None:
    (warning,) = [w for w in warned if w.line == fence("no-input")]
    assert warning.type == "evaldemo.option"
    assert warning.message == ":expect: claims are checked on the compared form: add :input:"
    shown = page["no-input"]
    assert "This example was not run:" in flat(shown)
    assert titles(shown) == []


def test_only_the_expected_warnings(warned: list[Warned], text_app: SphinxTestApp) -> None:
    assert len(warned) == len(FAILING) + 2
    # the two examples with bad options never ran; claim failures count as failed examples
    assert "evaldemo: 6 examples ran, 0 came from the cache, 3 failed" in text_app.status.getvalue()


def test_html_marks_claims_held_and_broken(html_app: SphinxTestApp) -> None:
    soup = BeautifulSoup((html_app.outdir / "index.html").read_text(encoding="utf-8"), "html.parser")
    held = soup.select(".evaldemo-held")
    broken = soup.select(".evaldemo-broken")
    assert len(held) == len(HOLDING)
    assert len(broken) == len(FAILING)
    # a badge each: the claim, then the verdict in words (the icon comes from the stylesheet)
    assert all("evaldemo-claim" in tag["class"] for tag in held + broken)
    assert all(tag.code is not None and tag.get_text() == f"{tag.code.get_text()} holds" for tag in held)
    for tag in broken:
        assert tag.code is not None
        claim = tag.code.get_text()
        (section,) = [s for s, c in FAILING if c == claim and tag.find_parent("section", id=s)]
        assert tag.get_text() == f"{claim} does NOT hold ({FAILING[section, claim]})"
    # a contradicted claim marks its whole box, so it stands out on the page
    boxes = soup.select("div.evaldemo-claims")
    assert len(boxes) == len({s for s, _ in HOLDING} | {s for s, _ in FAILING})
    for box in boxes:
        assert ("evaldemo-claims-broken" in box["class"]) == bool(box.select(".evaldemo-broken"))
    # next to the panels: right after them, before the comparison
    for box in boxes:
        assert "evaldemo-panels" in box.find_previous_sibling()["class"]
