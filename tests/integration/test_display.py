"""What the page shows for each option and output shape, checked against direct runs."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from bs4 import BeautifulSoup
from sphinx.testing.util import SphinxTestApp
from torch import nn

from sphinx_evaldemo.examples.nodes import rewrap
from tests.conftest import Build
from tests.helpers import flat, numbers, outputs, panel, sections, seed_all, titles, warnings


def direct(
    build: Callable[[], nn.Module],
    make_input: Callable[[], Any],
    *,
    seed: int = 0,
    modes: tuple[str, ...] = ("train", "eval"),
    repeat: int = 1,
    no_grad: bool = False,
) -> dict[str, list[Any]]:
    """Run a model as the spec says an example runs: seed, setup, input once, reseed per mode."""
    seed_all(seed)
    net = build()
    x = make_input()
    state = copy.deepcopy(net.state_dict())
    results: dict[str, list[Any]] = {}
    args = x if isinstance(x, tuple) else (x,)
    for mode in modes:
        net.load_state_dict(state)
        net.train(mode == "train")
        seed_all(seed)
        context = torch.no_grad() if no_grad and mode == "eval" else contextlib.nullcontext()
        with context:
            results[mode] = [net(*copy.deepcopy(args)) for _ in range(repeat)]
    return results


@pytest.fixture(scope="module")
def text_app(sphinx_build: Build) -> SphinxTestApp:
    return sphinx_build("display", "text")


@pytest.fixture(scope="module")
def html_app(sphinx_build: Build, text_app: SphinxTestApp) -> SphinxTestApp:
    return sphinx_build("display", "html")


@pytest.fixture(scope="module")
def page(text_app: SphinxTestApp) -> dict[str, str]:
    return sections((text_app.outdir / "index.txt").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def soup(html_app: SphinxTestApp) -> BeautifulSoup:
    return BeautifulSoup((html_app.outdir / "index.html").read_text(encoding="utf-8"), "html.parser")


def test_builds_without_warnings(text_app: SphinxTestApp, html_app: SphinxTestApp) -> None:
    assert warnings(text_app.warning.getvalue()) == []
    assert warnings(html_app.warning.getvalue()) == []


def test_train_output_is_eval_output_zeroed_or_doubled(page: dict[str, str]) -> None:
    runs = direct(
        lambda: nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.5)),
        lambda: torch.randn(4, 8),
    )
    train, ev = runs["train"][0], runs["eval"][0]
    section = page["relu-dropout"]
    assert outputs(section, "model.train()") == [repr(train)]
    assert outputs(section, "model.eval()") == [repr(ev)]

    # exactly: every train element is 0 or twice the eval element (dropout p=0.5)
    kept = train != 0
    assert torch.equal(train[kept], 2 * ev[kept])
    dropped = (ev != 0) & ~kept
    assert 0 < int(dropped.sum()) < int((ev != 0).sum())

    # and as printed on the page (4 decimals): zeros are zeros, the rest about doubled
    shown_train = numbers(outputs(section, "model.train()")[0])
    shown_eval = numbers(outputs(section, "model.eval()")[0])
    assert len(shown_train) == len(shown_eval) == 32
    for t, e in zip(shown_train, shown_eval, strict=True):
        assert t == 0.0 or abs(t - 2 * e) <= 1.5e-4
    assert any(t == 0.0 and e != 0.0 for t, e in zip(shown_train, shown_eval, strict=True))
    assert any(t != 0.0 for t in shown_train)


def differ_text(a: torch.Tensor, b: torch.Tensor) -> str:
    """``differ in 3 of 6 values (largest difference 1.09)``, computed here from the two tensors."""
    x, y = a.detach().double(), b.detach().double()
    differs = x != y
    count = int(differs.sum())
    largest = float((x - y).abs()[differs].max())
    values = f"all {count} values" if count == x.numel() else f"{count} of {x.numel()} values"
    return f"differ in {values} (largest difference {largest:.4g})"


def g(value: float) -> str:
    """A number as the page writes it (four significant digits, never -0)."""
    text = f"{value:.4g}"
    return "0" if text in ("-0", "0") else text


def test_batchnorm_sentence_gives_the_batch_statistics_against_the_running_ones(page: dict[str, str]) -> None:
    seed_all(0)
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    x = torch.randn(4, 3)
    hidden = net[0](x).detach()
    mean, var = hidden.mean(0), hidden.var(0, unbiased=False)
    running_mean, running_var = net[1].running_mean.clone(), net[1].running_var.clone()
    text = flat(page["batchnorm"])
    assert (
        '"net[1]" (BatchNorm1d, 3) normalised with this batch\'s own mean and variance in train mode '
        f"(channel 0: {g(float(mean[0]))} and {g(float(var[0]))}) and updated its running "
        "estimates; eval mode used the running estimates "
        f"({g(float(running_mean[0]))} and {g(float(running_var[0]))})."
    ) in text
    assert 'Train and eval first differ at "net[1]".' in text  # named once, by its sentence
    # compact: no buffer line, no repeatability line (nothing surprising here)
    assert "Buffers" not in text and "Repeatable" not in text


def test_batchnorm_buffers_change_in_train_only_with_full_details(page: dict[str, str]) -> None:
    text = flat(page["mlp-full"])
    assert (
        'Buffers the pass changed: train: "net[1].running_mean", "net[1].running_var", '
        '"net[1].num_batches_tracked"; eval: none.'
    ) in text
    assert ("Repeatable: train: a second pass gave different values, first at \"net[3]\"; "
            "eval: a second pass gave the same values.") in text


def test_dropout_sentence_counts_the_zeroed_values_and_the_scale(page: dict[str, str]) -> None:
    seed_all(0)
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.5))
    x = torch.randn(4, 8)
    seed_all(0)
    net.train()
    before = net[1](net[0](x))
    after = net[2](before)
    zeroed = int(((after == 0) & (before != 0)).sum())
    nonzero = int((before != 0).sum())
    assert torch.allclose(after[after != 0], before[after != 0] * 2)
    text = flat(page["relu-dropout"])
    assert (f'"net[2]" (Dropout, p=0.5) zeroed {zeroed} of its {nonzero} nonzero inputs in '
            "train mode and scaled the rest by 1/(1 - 0.5) = 2; eval mode passes every "
            "value through.") in text


def test_alpha_dropout_sentence_gives_its_affine_map(page: dict[str, str]) -> None:
    seed_all(0)
    drop = nn.AlphaDropout(0.5)
    x = torch.randn(2, 6)
    seed_all(0)
    y = drop(x)
    alpha, p = 1.7580993408473766, 0.5
    a = (1 / ((alpha**2 * p + 1) * (1 - p))) ** 0.5
    b = alpha * a * p
    replaced = int((~torch.isclose(y, a * x + b, rtol=1e-4, atol=1e-5)).sum())
    assert 0 < replaced < 12
    text = flat(page["alpha-dropout"])
    assert (f'"drop" (AlphaDropout, p=0.5) replaced {replaced} of 12 values with {g(-alpha * a + b)} '
            f"in train mode and mapped the rest through {g(a)}·x + {g(b)}") in text


def test_rrelu_sentence_gives_the_random_slopes_against_the_mean_slope(page: dict[str, str]) -> None:
    seed_all(0)
    act = nn.RReLU()
    x = torch.randn(2, 4)
    seed_all(0)
    y = act(x)
    negative = x < 0
    slopes = y[negative] / x[negative]
    text = flat(page["rrelu"])
    assert (f'"act" (RReLU, lower=0.125) multiplied its {int(negative.sum())} negative inputs by random '
            f"slopes from {g(float(slopes.min()))} to {g(float(slopes.max()))} in train mode (drawn "
            "between 0.125 and 0.3333); eval mode uses the fixed mean slope "
            f"{g((0.125 + 1 / 3) / 2)}.") in text
    assert titles(page["rrelu"], raw=True) == ["act.train()", "act.eval()"]


def test_user_module_sentence_names_the_training_branch(page: dict[str, str]) -> None:
    text = flat(page["user-module"])
    assert ('"gate" (Gate) reads the mode in "if self.training:": train mode took that branch, '
            "eval mode the other.") in text


def test_several_layers_say_where_train_and_eval_first_differ(page: dict[str, str]) -> None:
    section = page["mlp"]
    text = flat(section)
    assert 'Train and eval first differ at "net[1]".' in text
    assert titles(section, raw=True) == ["net.train()", "net.eval()"]
    # the per-layer table is shown (not folded), three columns, within 80 characters
    assert "Layer by layer: 4 of 5 layer calls differ" in text
    header = next(line for line in section.splitlines() if line.startswith("| layer"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == ["layer", "module", "values that differ"]
    # each fact once: the share of differing values is said in the sentence, not per panel
    assert text.count("all 32 values") == 1
    assert "What the run shows" not in text and "Every fact" not in text
    assert "plotted against" not in text  # no chart in compact, and no sentence about one


def test_full_details_add_every_fact_and_the_chart(page: dict[str, str]) -> None:
    text = flat(page["mlp-full"])
    assert "Every fact of the run" in text
    assert 'Mode-dependent layers: "net[1]" (BatchNorm1d, 8); "net[3]" (Dropout, p=0.5).' in text
    assert "Train against eval, element by element (32 elements):" in text
    assert "plotted" not in text  # the text builder draws no chart: no sentence about one
    header = next(line for line in page["mlp-full"].splitlines() if line.startswith("| layer"))
    assert len(header.strip("|").split("|")) == 5


def test_no_line_of_an_example_over_80_columns(page: dict[str, str]) -> None:
    for name, section in page.items():
        lines = section.splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("   input = ")), 0)
        for line in lines[start:]:  # the code above is the author's, as written
            assert len(line) <= 80, (name, line)


def test_wide_output_wraps_within_80_columns(page: dict[str, str]) -> None:
    seed_all(0)
    x = torch.randn(3, 20)
    (shown,) = outputs(page["wide"], "model.eval()")
    assert max(len(line) for line in repr(x).splitlines()) > 77  # torch's own is too wide
    assert shown == rewrap(repr(x))  # eval's dropout passes the input through, rewrapped
    assert numbers(shown) == numbers(repr(x))
    assert max(len(line) for line in shown.splitlines()) <= 77


def test_batchnorm_statistics_do_not_leak_between_modes(page: dict[str, str]) -> None:
    # eval uses the fresh running statistics (zeros and ones), not the ones train updated
    runs = direct(lambda: nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), lambda: torch.randn(4, 3))
    section = page["batchnorm"]
    assert outputs(section, "model.train()") == [repr(runs["train"][0])]
    assert outputs(section, "model.eval()") == [repr(runs["eval"][0])]


def test_eval_alone_keeps_autograd(page: dict[str, str]) -> None:
    runs = direct(
        lambda: nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.25)), lambda: torch.randn(2, 4)
    )
    assert runs["eval"][0].requires_grad
    section = page["grad"]
    # both modes track gradients, as expected: no line says so; the printout shows grad_fn
    assert "requires_grad" not in flat(section)
    assert outputs(section, "model.eval()") == [repr(runs["eval"][0])]
    assert "grad_fn" in outputs(section, "model.eval()")[0]


def test_no_grad_stops_autograd_in_eval_only(page: dict[str, str]) -> None:
    runs = direct(
        lambda: nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.25)),
        lambda: torch.randn(2, 4),
        no_grad=True,
    )
    assert not runs["eval"][0].requires_grad
    section = page["no-grad"]
    assert "Output tracks gradients (requires_grad): train yes, eval no." in flat(section)
    assert outputs(section, "model.eval()") == [repr(runs["eval"][0])]
    assert "grad_fn" not in outputs(section, "model.eval()")[0]
    assert outputs(section, "model.train()") == [repr(runs["train"][0])]


def test_as_written_segments_follow_the_mode(page: dict[str, str]) -> None:
    section = page["as-written"]
    assert titles(section) == ["train mode (the default)", "eval mode"]
    assert outputs(section, "train mode (the default)") == ["training flag: True\nstill training"]
    assert outputs(section, "eval mode") == ["training flag: False"]
    assert "outputs" not in section
    assert "input =" not in section


def test_as_written_train_after_eval_is_not_the_default(page: dict[str, str]) -> None:
    section = page["as-written-back"]
    assert titles(section) == ["output", "train mode (the default)", "eval mode", "train mode"]
    assert outputs(section, "output") == ["no model yet"]
    assert outputs(section, "train mode (the default)") == ["built"]
    assert outputs(section, "eval mode") == ["evaluating"]
    assert outputs(section, "train mode") == ["training again"]


def _lines_before_the_panels(section: str) -> list[str]:
    """The non-blank lines above the first panel title: the code, then the input line."""
    lines = section.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("   input = "))
    return [line for line in lines[:end + 1] if line.strip()]


@pytest.mark.parametrize(
    ("section", "line"),
    [
        ("relu-dropout", "input = torch.randn(4, 8)  # seed 0"),
        ("seed", "input = torch.randn(3, 4)  # seed 5"),
        ("no-grad", "input = torch.randn(2, 4)  # seed 0, eval pass under torch.no_grad()"),
        ("repeat", "input = torch.randn(2, 6)  # seed 0, 3 passes per mode"),
        ("input-tuple", "input = torch.randn(2, 3), torch.randn(2, 3) * 3 + 10"),
    ],
)
def test_input_line_under_the_code(page: dict[str, str], section: str, line: str) -> None:
    lines = _lines_before_the_panels(page[section])
    assert lines[-1] == "   " + line  # a literal block of its own, right under the code
    assert lines[0] == "   import torch"
    compile(line, "<input line>", "exec")  # a line a reader can paste and run


def test_long_input_notes_go_on_the_line_above(page: dict[str, str]) -> None:
    lines = _lines_before_the_panels(page["input-tuple"])
    assert lines[-2:] == ["   # seed 7, eval pass under torch.no_grad(), 2 passes per mode",
                          "   input = torch.randn(2, 3), torch.randn(2, 3) * 3 + 10"]


def test_input_line_reproduces_the_run(page: dict[str, str]) -> None:
    class Add(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = nn.Dropout(0.5)

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.drop(a + b)

    runs = direct(Add, lambda: (torch.randn(2, 3), torch.randn(2, 3) * 3 + 10), seed=7, repeat=2,
                  no_grad=True)
    section = page["input-tuple"]
    assert outputs(section, "model.eval()") == [rewrap(repr(out)) for out in runs["eval"]]
    assert outputs(section, "model.train()") == [rewrap(repr(out)) for out in runs["train"]]


def test_no_input_line_without_the_code(page: dict[str, str]) -> None:
    assert "input =" not in page["hide-code"]


def test_hide_code_shows_panels_without_code(page: dict[str, str]) -> None:
    section = page["hide-code"]
    assert "hidden_code_marker" not in section
    assert titles(section) == ["model.train()", "model.eval()"]
    assert "The train and eval outputs differ" in flat(section)


def test_hide_output_shows_code_without_panels(page: dict[str, str]) -> None:
    section = page["hide-output"]
    assert "shown_code_marker = 1" in section
    assert titles(section) == []
    assert "Printed by the setup" not in section
    assert "outputs differ" not in section


def test_modes_option_sets_panel_order(page: dict[str, str]) -> None:
    runs = direct(
        lambda: nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5)),
        lambda: torch.randn(2, 4),
        modes=("eval", "train"),
    )
    section = page["eval-first"]
    assert titles(section) == ["model.eval()", "model.train()"]
    assert outputs(section, "model.eval()") == [repr(runs["eval"][0])]
    assert outputs(section, "model.train()") == [repr(runs["train"][0])]
    assert f"The eval and train outputs {differ_text(runs['eval'][0], runs['train'][0])}." in flat(section)


def test_repeat_shows_each_pass_continuing_the_stream(page: dict[str, str]) -> None:
    runs = direct(
        lambda: nn.Sequential(nn.Linear(6, 6), nn.Dropout(0.5)),
        lambda: torch.randn(2, 6),
        repeat=3,
    )
    section = page["repeat"]
    for mode in ("train", "eval"):
        content = panel(section, f"model.{mode}()")
        assert [item[1] for item in content if isinstance(item, tuple) and item[1].startswith("pass ")] == [
            "pass 1", "pass 2", "pass 3",
        ]
        assert outputs(section, f"model.{mode}()") == [repr(out) for out in runs[mode]]
    # dropout draws a new mask each pass; eval repeats itself
    assert len(set(outputs(section, "model.train()"))) == 3
    assert len(set(outputs(section, "model.eval()"))) == 1


def test_seed_option_gives_that_seeds_outputs(page: dict[str, str]) -> None:
    runs = direct(
        lambda: nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5)), lambda: torch.randn(3, 4), seed=5
    )
    default = direct(
        lambda: nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5)), lambda: torch.randn(3, 4), seed=0
    )
    section = page["seed"]
    assert outputs(section, "model.train()") == [repr(runs["train"][0])]
    assert outputs(section, "model.eval()") == [repr(runs["eval"][0])]
    assert outputs(section, "model.eval()") != [repr(default["eval"][0])]


class Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.linear(x)
        return hidden, self.drop(hidden)


class Heads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = self.body(x)
        return {"logits": self.drop(hidden), "hidden": hidden}


class Kept(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> int:
        return int((self.drop(x) != 0).sum())


def test_tuple_output_compared_leaf_by_leaf(page: dict[str, str]) -> None:
    runs = direct(Pair, lambda: torch.randn(2, 4))
    section = page["tuple-output"]
    assert outputs(section, "model.train()") == [rewrap(repr(runs["train"][0]))]
    assert outputs(section, "model.eval()") == [rewrap(repr(runs["eval"][0]))]
    text = flat(section)
    assert "The train and eval outputs differ, part by part:" in text
    assert '"[0]" equal' in text
    assert f'"[1]" {differ_text(runs["train"][0][1], runs["eval"][0][1])}' in text
    assert 'Train and eval first differ at "net.drop".' in text


def test_dict_output_compared_leaf_by_leaf(page: dict[str, str]) -> None:
    runs = direct(Heads, lambda: torch.randn(2, 4))
    section = page["dict-output"]
    assert outputs(section, "model.train()") == [rewrap(repr(runs["train"][0]))]
    assert outputs(section, "model.eval()") == [rewrap(repr(runs["eval"][0]))]
    text = flat(section)
    logits = differ_text(runs["train"][0]["logits"], runs["eval"][0]["logits"])
    assert f'"["logits"]" {logits}' in text  # a dict's keys in double quotes: never a list's [0]
    assert '"["hidden"]" equal' in text


def test_plain_int_output(page: dict[str, str]) -> None:
    runs = direct(Kept, lambda: torch.randn(5, 4))
    assert runs["eval"][0] == 20
    assert runs["train"][0] != 20
    section = page["int-output"]
    assert outputs(section, "model.train()") == [str(runs["train"][0])]
    assert outputs(section, "model.eval()") == ["20"]
    text = flat(section)
    # integers are compared as integers, with their difference
    gap = abs(runs["train"][0] - 20)
    assert f"The train and eval outputs differ in every value (largest difference {gap})." in text
    assert "Output tracks gradients (requires_grad): train n/a, eval n/a." in text


def test_printed_output_is_escaped_in_html(soup: BeautifulSoup, html_app: SphinxTestApp) -> None:
    html = (html_app.outdir / "index.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not [tag for tag in soup.find_all("script") if "alert" in tag.get_text()]
    assert not [tag for tag in soup.find_all("b") if "printed in the pass" in tag.get_text()]
    section = soup.find("section", id="escaping")
    shown = [pre.get_text() for pre in section.find_all("pre")]
    assert "<script>alert(1)</script>\n" in shown
    assert "'<script>alert(2)</script>'\n" in shown


def test_printed_during_passes_shows_the_shown_pass_once(page: dict[str, str]) -> None:
    """One pass is shown per mode, so what it printed appears once, not once per hidden check."""
    section = page["escaping"]
    for mode in ("train", "eval"):
        assert outputs(section, f"model.{mode}()") == [
            "'<script>alert(2)</script>'",
            "<b>printed in the pass</b>",
        ]


def test_caption_and_ref_to_name(soup: BeautifulSoup) -> None:
    example = soup.find(id="dropout-at-work")
    assert "evaldemo" in example["class"]
    assert example.find(class_="evaldemo-caption").get_text(strip=True) == "Dropout at work"
    link = soup.find("a", href="#dropout-at-work")
    assert link is not None
    assert link.get_text(strip=True) == "Dropout at work"


def test_ref_to_caption_with_markup_uses_its_text(soup: BeautifulSoup) -> None:
    example = soup.find(id="styled-caption")
    caption = example.find(class_="evaldemo-caption")
    assert caption.find("em").get_text() == "in"
    link = soup.find("a", href="#styled-caption")
    assert link.get_text(" ", strip=True) == "Dropout in both modes"
