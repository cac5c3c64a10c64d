"""render: the as-written segment titles and the input line, from a table of cases."""

from __future__ import annotations

from typing import Any

import pytest

from sphinx_evaldemo.examples.model import ExampleRequest
from sphinx_evaldemo.examples.nodes import rewrap
from sphinx_evaldemo.examples.render import input_nodes, segment_titles


@pytest.mark.parametrize(
    ("modes", "titles"),
    [
        pytest.param(["train"], ["train mode (the default)"], id="never-switched"),
        pytest.param(["train", "eval"], ["train mode (the default)", "eval mode"], id="then-eval"),
        pytest.param(["train", "eval", "train"],
                     ["train mode (the default)", "eval mode", "train mode"], id="back-to-train"),
        pytest.param(["", "train"], ["output", "train mode (the default)"], id="before-any-model"),
        pytest.param(["mixed", "train"], ["modules in both modes", "train mode"], id="after-mixed"),
        pytest.param(["eval", "train"], ["eval mode", "train mode"], id="eval-first"),
        pytest.param([], [], id="nothing-printed"),
    ],
)
def test_segment_titles(modes: list[str], titles: list[str]) -> None:
    assert segment_titles(modes) == titles


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        pytest.param({"input": "torch.randn(2, 4)"}, "input = torch.randn(2, 4)  # seed 0", id="plain"),
        pytest.param({"input": "torch.randn(2, 4) * 3 + 10", "seed": 1},
                     "input = torch.randn(2, 4) * 3 + 10  # seed 1", id="seed"),
        pytest.param({"input": "x, y", "no_grad": True, "repeat": 3},
                     "input = x, y  # seed 0, eval pass under torch.no_grad(), 3 passes per mode",
                     id="tuple-no-grad-repeat"),
        pytest.param({"input": "batch['#']"}, "input = batch['#']  # seed 0", id="hash-in-a-string"),
    ],
)
def test_input_line(fields: dict[str, Any], line: str) -> None:
    (block,) = input_nodes(ExampleRequest(code="", **fields))
    assert block.astext() == line
    assert block["language"] == "python"
    assert "evaldemo-input" in block["classes"]
    compile(line, "<input line>", "exec")


def test_no_input_line_as_written() -> None:
    assert input_nodes(ExampleRequest(code="print(1)")) == []


@pytest.mark.parametrize(
    ("text", "wrapped"),
    [
        pytest.param("tensor([1., 2.])", "tensor([1., 2.])", id="short-untouched"),
        pytest.param("x" * 90, "x" * 90, id="printed-text-as-printed"),
        pytest.param(
            "tensor([[" + ", ".join(["-1.0000"] * 10) + "]])",
            "tensor([[-1.0000, -1.0000, -1.0000, -1.0000, -1.0000, -1.0000, -1.0000,\n"
            "         -1.0000, -1.0000, -1.0000]])",
            id="a-row-under-its-first-value",
        ),
        pytest.param(
            "(tensor([1., 2.]), tensor([" + ", ".join(["3.0000"] * 10) + "]))",
            "(tensor([1., 2.]),\n tensor([3.0000, 3.0000, 3.0000, 3.0000, 3.0000, 3.0000, 3.0000, 3.0000,\n"
            "         3.0000, 3.0000]))",
            id="a-tuple-one-tensor-a-line",
        ),
    ],
)
def test_text_rewrap_of_a_printout(text: str, wrapped: str) -> None:
    assert rewrap(text) == wrapped
    assert rewrap(text).split() == wrapped.split()
