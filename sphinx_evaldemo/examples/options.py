"""Directive options: raw strings in, checked values (or what to fix) out. No Sphinx here."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from .claims import CLAIMS
from .model import DEVICES, MODES, Device, Mode

#: Every option the directive knows; values arrive as raw strings (None for a bare flag).
OPTION_NAMES = (
    "model", "input", "modes", "repeat", "no-grad", "seed", "timeout", "raises",
    "hide-code", "hide-output", "caption", "name", "depends", "expect", "device",
    "details",
)
FLAGS = ("no-grad", "hide-code", "hide-output")
MAX_REPEAT = 100
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class OptionError(ValueError):
    """A bad option value: ``option`` is its name, the message says what to write
    (after the option's name, unless ``whole`` says the message names it itself)."""

    def __init__(self, option: str, message: str, *, whole: bool = False) -> None:
        super().__init__(message if whole else f":{option}: {message}")
        self.option = option


#: ``:name: value`` (reStructuredText's field marker, MyST's option line)
_FIELD = re.compile(r"^:(?P<name>[^:\s](?:[^:]*[^:\s])?):(?:\s+(?P<value>.*)|\s*)$")
#: ``name: value`` in MyST's ``---`` block
_YAML_KEY = re.compile(r"^(?P<name>[^\s:#][^:]*?):(?:\s+(?P<value>.*)|\s*)$")


@dataclass(frozen=True, slots=True)
class Block:
    """The options at the top of a directive's content, read as written.

    ``given`` is every option in order, repeats included, as ``(name, value, index of its
    line in the content)``; ``body`` is the index of the code's first line.
    """

    given: tuple[tuple[str, str | None, int], ...] = field(default_factory=tuple)
    body: int = 0


def read_block(lines: list[str], *, continuation: bool) -> Block:
    """The options heading a directive's content, before any parser dropped or refused one.

    The directive declares no option to MyST or docutils (each would check names its own
    way: MyST warns and drops an unknown one, and keeps the last of a repeated one; docutils
    drops the whole example), so both hand the options over as the content's first lines:
    ``:name: value`` lines, or MyST's ``---`` block of ``name: value`` lines. With
    ``continuation`` (reStructuredText) an indented line continues the option above it.
    Blank lines between the options and the code are skipped.
    """
    given: list[tuple[str, str | None, int]] = []
    start = _first_text(lines)  # MyST allows blank lines above the options
    index = start
    if index < len(lines) and lines[index].strip() == "---" and any(
            line.strip() == "---" for line in lines[index + 1:]):
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "---")
        for index in range(start + 1, end):
            line = lines[index]
            match = _YAML_KEY.match(line)
            if match:
                given.append((match["name"].strip(), _yaml_value(match["value"]), index))
            elif line.strip() and given and line[:1].isspace():
                name, value, at = given[-1]
                given[-1] = (name, f"{value or ''} {line.strip()}".strip(), at)
        index = end + 1
    else:
        while index < len(lines):
            line = lines[index]
            match = _FIELD.match(line)
            if match:
                given.append((match["name"], _value(match["value"]), index))
            elif continuation and given and line.strip() and line[:1].isspace():
                name, value, at = given[-1]
                given[-1] = (name, f"{value or ''} {line.strip()}".strip(), at)
            else:
                break
            index += 1
    while index < len(lines) and not lines[index].strip():
        index += 1
    return Block(tuple(given), index if given else _first_text(lines))


def _first_text(lines: list[str]) -> int:
    return next((i for i, line in enumerate(lines) if line.strip()), len(lines))


def _value(text: str | None) -> str | None:
    return text.strip() if text and text.strip() else None


def _yaml_value(text: str | None) -> str | None:
    """A value of the ``---`` block: YAML's quotes taken off, everything else as written."""
    value = _value(text)
    if value and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def checked_names(block: Block, start: int, known: tuple[str, ...] = OPTION_NAMES,
                  ) -> dict[str, str | None]:
    """``{name: value}`` of ``block``, whose first line is line ``start`` of the file; an
    unknown or repeated name raises :class:`OptionError`."""
    found: dict[str, str | None] = {}
    first: dict[str, int] = {}
    for name, value, index in block.given:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = (f"did you mean :{close[0]}:?" if close else
                    "the options are: " + " ".join(f":{k}:" for k in known))
            raise OptionError(name, f"unknown option :{name}:; {hint}", whole=True)
        if name in found:
            raise OptionError(name, f"is given twice (lines {start + first[name]} and "
                              f"{start + index}); keep one")
        found[name] = value
        first[name] = index
    return found


@dataclass(frozen=True, slots=True)
class Options:
    """Checked options: what decides the run, and what only changes the page."""

    model: str | None = None
    input: str | None = None
    modes: tuple[Mode, ...] = MODES
    repeat: int = 1
    no_grad: bool = False
    seed: int | None = None
    timeout: float | None = None
    raises: str | None = None  # None: not expected; "": any exception; else its name
    hide_code: bool = False
    hide_output: bool = False
    caption: str = ""
    name: str = ""
    depends: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    device: Device = "cpu"
    details: str | None = None  # None: evaldemo_details


def _int(option: str, text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise OptionError(option, f"expects a whole number, got {text!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise OptionError(option, f"expects a whole number {bound}, got {value}")
    return value


def _modes(text: str) -> tuple[Mode, ...]:
    words = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    if not words:
        raise OptionError("modes", "expects one or both of: train eval")
    modes: list[Mode] = []
    for word in words:
        if word not in MODES:
            raise OptionError("modes", f"knows only 'train' and 'eval', got {word!r}")
        if word in modes:
            raise OptionError("modes", f"lists {word!r} twice")
        modes.append(word)
    return tuple(modes)


def _claims(text: str) -> tuple[str, ...]:
    words = tuple(dict.fromkeys(re.split(r"[\s,]+", text.strip()))) if text.strip() else ()
    if not words:
        raise OptionError("expect", f"expects one or more claims: {' '.join(CLAIMS)}")
    for word in words:
        if word not in CLAIMS:
            raise OptionError("expect", f"knows no claim {word!r}; the claims are: {' '.join(CLAIMS)}")
    return words


def _timeout(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise OptionError("timeout", f"expects a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise OptionError("timeout", f"expects a positive number of seconds, got {text.strip()!r}")
    return value


def _input(text: str) -> str:
    expression = text.strip()
    if not expression:
        raise OptionError("input", "expects a Python expression, such as torch.randn(4, 8)")
    try:
        compile(expression, "<input>", "eval")
    except SyntaxError as exc:
        raise OptionError("input", f"is not a Python expression ({exc.msg}): {expression!r}") from None
    return expression


def parse(raw: dict[str, str | None]) -> Options:
    """Check every option; the first bad one raises :class:`OptionError`."""
    values: dict[str, Any] = {}
    for option, given in raw.items():
        text = given or ""
        if option in FLAGS:
            if text.strip():
                raise OptionError(option, f"is a flag and takes no value, got {text.strip()!r}")
            values[option.replace("-", "_")] = True
        elif option == "model":
            if not text.strip().isidentifier():
                raise OptionError(option, f"expects the Python name of the model, such as net, got {text.strip()!r}")
            values["model"] = text.strip()
        elif option == "input":
            values["input"] = _input(text)
        elif option == "modes":
            values["modes"] = _modes(text)
        elif option == "repeat":
            values["repeat"] = _int(option, text, 1, MAX_REPEAT)
        elif option == "seed":
            values["seed"] = _int(option, text, 0, 2**63 - 1)
        elif option == "timeout":
            values["timeout"] = _timeout(text)
        elif option == "raises":
            name = text.strip()
            if name and not _DOTTED.match(name):
                raise OptionError(option, f"expects an exception name such as ValueError, or nothing, got {name!r}")
            values["raises"] = name
        elif option == "depends":
            paths = tuple(text.split())
            if not paths:
                raise OptionError(option, "expects one or more file paths, relative to the page")
            values["depends"] = paths
        elif option == "expect":
            values["expect"] = _claims(text)
        elif option == "device":
            device = text.strip()
            if device not in DEVICES:
                raise OptionError(option, f"expects one of: {' '.join(DEVICES)}, got {device!r}")
            values["device"] = device
        elif option == "details":
            if text.strip() not in ("compact", "full"):
                raise OptionError(option, f"expects compact or full, got {text.strip()!r}")
            values["details"] = text.strip()
        elif option in ("caption", "name"):
            values[option] = text.strip()
        else:
            raise OptionError(option, f"is not an option of evaldemo (known: {', '.join(OPTION_NAMES)})")
    if values.get("expect") and "input" not in values:
        raise OptionError("expect", "claims are checked on the compared form: add :input:")
    return Options(**values)


def raised_as_expected(expected: str | None, exc_mro: tuple[str, ...]) -> bool:
    """Whether an exception whose class and bases are ``exc_mro`` matches ``:raises:``."""
    if expected is None:
        return False
    return expected == "" or expected.rsplit(".", 1)[-1] in exc_mro
