"""options.parse: every option with good and bad values; raised_as_expected."""

from __future__ import annotations

from typing import Any

import pytest

from sphinx_evaldemo.examples import options
from sphinx_evaldemo.examples.options import OptionError, Options, parse, raised_as_expected

#: the claims the spec names for :expect:
SPEC_CLAIMS = (
    "differ", "same", "train-random", "eval-deterministic", "train-updates-buffers",
    "eval-keeps-buffers", "eval-tracks-grad", "eval-no-grad",
)

GOOD: list[tuple[dict[str, str | None], dict[str, Any]]] = [
    ({}, {}),
    ({"model": "net"}, {"model": "net"}),
    ({"model": "  encoder_2 "}, {"model": "encoder_2"}),
    ({"input": "torch.randn(4, 8)"}, {"input": "torch.randn(4, 8)"}),
    ({"input": "  (x, mask) "}, {"input": "(x, mask)"}),
    ({"modes": "train eval"}, {"modes": ("train", "eval")}),
    ({"modes": "eval train"}, {"modes": ("eval", "train")}),
    ({"modes": "eval, train"}, {"modes": ("eval", "train")}),
    ({"modes": "eval"}, {"modes": ("eval",)}),
    ({"modes": "  train  "}, {"modes": ("train",)}),
    ({"repeat": "1"}, {"repeat": 1}),
    ({"repeat": " 3 "}, {"repeat": 3}),
    ({"repeat": str(options.MAX_REPEAT)}, {"repeat": options.MAX_REPEAT}),
    ({"no-grad": None}, {"no_grad": True}),
    ({"no-grad": ""}, {"no_grad": True}),
    ({"seed": "0"}, {"seed": 0}),
    ({"seed": "5"}, {"seed": 5}),
    ({"seed": str(2**63 - 1)}, {"seed": 2**63 - 1}),
    ({"timeout": "1"}, {"timeout": 1.0}),
    ({"timeout": "0.5"}, {"timeout": 0.5}),
    ({"timeout": " 90 "}, {"timeout": 90.0}),
    ({"raises": None}, {"raises": ""}),
    ({"raises": "ValueError"}, {"raises": "ValueError"}),
    ({"raises": " torch.cuda.OutOfMemoryError "}, {"raises": "torch.cuda.OutOfMemoryError"}),
    ({"hide-code": None}, {"hide_code": True}),
    ({"hide-output": None}, {"hide_output": True}),
    ({"caption": " Dropout at work "}, {"caption": "Dropout at work"}),
    ({"name": "dropout-example"}, {"name": "dropout-example"}),
    ({"depends": "helper.py"}, {"depends": ("helper.py",)}),
    ({"device": "cuda"}, {"device": "cuda"}),
    ({"device": " auto "}, {"device": "auto"}),
    ({"device": "cpu"}, {"device": "cpu"}),
    ({"details": "full"}, {"details": "full"}),
    ({"details": " compact "}, {"details": "compact"}),
    ({"depends": " helper.py  data/input.csv "}, {"depends": ("helper.py", "data/input.csv")}),
    (
        {"input": "x", "expect": "differ eval-deterministic"},
        {"input": "x", "expect": ("differ", "eval-deterministic")},
    ),
    (
        {"input": "x", "expect": " ".join(SPEC_CLAIMS)},
        {"input": "x", "expect": SPEC_CLAIMS},
    ),
    (
        {"model": "net", "input": "x", "modes": "eval train", "repeat": "2", "no-grad": None,
         "seed": "7", "timeout": "3"},
        {"model": "net", "input": "x", "modes": ("eval", "train"), "repeat": 2, "no_grad": True,
         "seed": 7, "timeout": 3.0},
    ),
]


@pytest.mark.parametrize(("raw", "fields"), GOOD, ids=lambda v: repr(v)[:60])
def test_good_values(raw: dict[str, str | None], fields: dict[str, Any]) -> None:
    assert parse(raw) == Options(**fields)


BAD: list[tuple[str, str | None, str]] = [
    ("model", "", "Python name of the model"),
    ("model", None, "Python name of the model"),
    ("model", "net.encoder", "'net.encoder'"),
    ("model", "1net", "'1net'"),
    ("model", "my net", "'my net'"),
    ("input", "", "Python expression"),
    ("input", None, "Python expression"),
    ("input", "torch.randn(2,", "not a Python expression"),
    ("input", "x = 1", "not a Python expression"),
    ("modes", "", "train eval"),
    ("modes", "test", "'test'"),
    ("modes", "train train", "twice"),
    ("modes", "eval train eval", "twice"),
    ("repeat", "zero", "whole number, got 'zero'"),
    ("repeat", "", "whole number"),
    ("repeat", "1.5", "whole number, got '1.5'"),
    ("repeat", "0", f"from 1 to {options.MAX_REPEAT}, got 0"),
    ("repeat", "-2", "got -2"),
    ("repeat", str(options.MAX_REPEAT + 1), f"got {options.MAX_REPEAT + 1}"),
    ("seed", "-1", "got -1"),
    ("seed", "abc", "whole number, got 'abc'"),
    ("seed", "1e3", "whole number"),
    ("seed", str(2**63), f"got {2**63}"),
    ("timeout", "0", "positive"),
    ("timeout", "-3", "positive"),
    ("timeout", "inf", "positive"),
    ("timeout", "nan", "positive"),
    ("timeout", "soon", "seconds, got 'soon'"),
    ("timeout", "", "seconds"),
    ("raises", "not a name", "'not a name'"),
    ("raises", "1Error", "'1Error'"),
    ("raises", "Value-Error", "'Value-Error'"),
    ("raises", "torch..Error", "'torch..Error'"),
    ("no-grad", "yes", "flag"),
    ("hide-code", "true", "flag"),
    ("hide-output", "1", "flag"),
    ("depends", "", "file paths"),
    ("depends", None, "file paths"),
    ("expect", "", "claims"),
    ("expect", "faster", "'faster'"),
    ("device", "gpu", "cpu cuda auto"),
    ("device", "cuda:1", "'cuda:1'"),
    ("device", "", "cpu cuda auto"),
    ("details", "all", "compact or full"),
    ("details", None, "compact or full"),
    ("colour", "red", "not an option of evaldemo"),
]


@pytest.mark.parametrize(("option", "value", "says"), BAD, ids=lambda v: repr(v)[:40])
def test_bad_values_say_what_to_fix(option: str, value: str | None, says: str) -> None:
    with pytest.raises(OptionError) as caught:
        parse({option: value})
    assert caught.value.option == option
    assert str(caught.value).startswith(f":{option}: ")
    assert says in str(caught.value)


def test_first_bad_option_is_reported_even_among_good_ones() -> None:
    with pytest.raises(OptionError) as caught:
        parse({"input": "x", "repeat": "0", "seed": "1"})
    assert caught.value.option == "repeat"


def test_claims_need_the_compared_form() -> None:
    with pytest.raises(OptionError) as caught:
        parse({"expect": "differ"})
    assert caught.value.option == "expect"
    assert ":input:" in str(caught.value)


def test_every_option_of_the_spec_is_known() -> None:
    spec = {
        "model", "input", "modes", "repeat", "no-grad", "seed", "timeout", "raises",
        "hide-code", "hide-output", "caption", "name", "expect", "depends", "device",
        "details",
    }
    assert spec <= set(options.OPTION_NAMES)


def _mro(exc: type[BaseException]) -> tuple[str, ...]:
    return tuple(klass.__name__ for klass in exc.__mro__)


class ShapeError(ValueError):
    pass


@pytest.mark.parametrize(
    ("expected", "raised", "matches"),
    [
        (None, ValueError, False),
        ("", ValueError, True),
        ("", KeyError, True),
        ("ValueError", ValueError, True),
        ("ValueError", ShapeError, True),
        ("Exception", ValueError, True),
        ("LookupError", KeyError, True),
        ("KeyError", ValueError, False),
        ("ShapeError", ValueError, False),
        ("builtins.ValueError", ValueError, True),
        ("torch.cuda.OutOfMemoryError", RuntimeError, False),
        ("RuntimeError", RuntimeError, True),
    ],
)
def test_raised_as_expected(expected: str | None, raised: type[BaseException], matches: bool) -> None:
    assert raised_as_expected(expected, _mro(raised)) is matches


# --------------------------------------------------------------------------- names, as written

BLOCKS: list[tuple[list[str], bool, list[tuple[str, str | None, int]], int]] = [
    (["import torch"], False, [], 0),
    (["", "import torch"], False, [], 1),
    (["", ":input: x", "", "code"], False, [("input", "x", 1)], 3),
    ([":input: x", "", "code"], False, [("input", "x", 0)], 2),
    ([":input: x", "code"], False, [("input", "x", 0)], 1),  # MyST: no blank line needed
    ([":no-grad:", ":seed:  5 ", "", "", "code"], True,
     [("no-grad", None, 0), ("seed", "5", 1)], 4),
    ([":seed: 1", ":seed: 2", "", "code"], True, [("seed", "1", 0), ("seed", "2", 1)], 3),
    # reStructuredText: an indented line continues the option above it
    ([":input: torch.ones(", "   2, 4)", "", "code"], True, [("input", "torch.ones( 2, 4)", 0)], 3),
    # MyST: it is the code's first line
    ([":input: x", "   indented", "code"], False, [("input", "x", 0)], 1),
    # MyST's --- block, YAML quotes taken off
    (["---", 'input: "torch.ones(2)"', "seed: 4", "no-grad:", "---", "code"], False,
     [("input", "torch.ones(2)", 1), ("seed", "4", 2), ("no-grad", None, 3)], 5),
    # a line of code that starts with a colon-word is still code after the first non-option
    (["x = 1", ":input: y"], False, [], 0),
]


@pytest.mark.parametrize(("lines", "continuation", "given", "body"), BLOCKS,
                         ids=lambda v: repr(v)[:50])
def test_read_block_keeps_every_option_as_written(
        lines: list[str], continuation: bool, given: list[tuple[str, str | None, int]],
        body: int) -> None:
    block = options.read_block(lines, continuation=continuation)
    assert list(block.given) == given
    assert block.body == body


NAME_PROBLEMS = [
    ([("inptu", "x", 0)], "unknown option :inptu:; did you mean :input:?"),
    ([("hide_code", None, 0)], "unknown option :hide_code:; did you mean :hide-code:?"),
    ([("nograd", None, 0)], "unknown option :nograd:; did you mean :no-grad:?"),
    ([("zzz", None, 0)], "unknown option :zzz:; the options are: :model: :input:"),
    ([("seed", "1", 2), ("seed", "2", 3)], ":seed: is given twice (lines 12 and 13); keep one"),
]


@pytest.mark.parametrize(("given", "says"), NAME_PROBLEMS, ids=lambda v: repr(v)[:40])
def test_unknown_and_repeated_names_say_what_to_write(
        given: list[tuple[str, str | None, int]], says: str) -> None:
    with pytest.raises(OptionError) as raised:
        options.checked_names(options.Block(tuple(given), 5), start=10)
    assert str(raised.value).startswith(says)
    assert raised.value.option == given[0][0]


def test_known_names_pass_through_in_order() -> None:
    block = options.Block((("input", "x", 0), ("no-grad", None, 1)), 3)
    assert options.checked_names(block, start=1) == {"input": "x", "no-grad": None}
