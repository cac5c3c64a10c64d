"""Reading what a build produced: text-builder sections and panels, warnings, source lines."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: A panel's or a segment's title, as the text builder writes it: a line of its own.
_TITLE = re.compile(
    r"^(?P<title>[A-Za-z_]\w*\.(?:train|eval)\(\)|train mode(?: \(the default\))?|eval mode"
    r"|modules in both modes|output)$"
)
#: What follows the panels: the end of the last one.
_AFTER = re.compile(r"^(?:Note: |Layer by layer|Every fact of the run|Claims checked|Train output plotted|\+-)")


def seed_all(seed: int) -> None:
    """Seed torch, random and numpy the way the spec says the worker does."""
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def sections(text: str, underline: str = "=") -> dict[str, str]:
    """Split a text-builder page into ``{heading: body}`` at headings underlined by ``underline``."""
    lines = text.splitlines()
    starts = [
        i
        for i in range(len(lines) - 1)
        if lines[i].strip()
        and len(lines[i + 1]) == len(lines[i])
        and set(lines[i + 1]) == {underline}
    ]
    found = {}
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else len(lines)
        found[lines[start]] = "\n".join(lines[start + 2 : end])
    return found


def _generic(title: str) -> str:
    """``net.train()`` as ``model.train()``: panels are titled with the model's own name."""
    _, dot, call = title.partition(".")
    return f"model.{call}" if dot and call in ("train()", "eval()") else title


def titles(chunk: str, raw: bool = False) -> list[str]:
    """The panel and segment titles in the order the page shows them; ``net.train()`` is
    given as ``model.train()`` unless ``raw``."""
    found = [m["title"] for line in chunk.splitlines() if (m := _TITLE.match(line))]
    return found if raw else [_generic(title) for title in found]


def panel(chunk: str, title: str, occurrence: int = 0) -> list[str | tuple[str, str]]:
    """The content of the panel called ``title``: literal blocks as strings, labels as tuples.

    A panel runs from its title to the next title, or to what follows the panels. Literal
    blocks are the runs of lines indented by three spaces; other lines are labels.
    """
    lines = chunk.splitlines()
    starts = [i for i, line in enumerate(lines)
              if (m := _TITLE.match(line)) and title in (m["title"], _generic(m["title"]))]
    start = starts[occurrence] + 1
    end = next((i for i in range(start, len(lines)) if _TITLE.match(lines[i]) or _AFTER.match(lines[i])),
               len(lines))
    items: list[str | tuple[str, str]] = []
    block: list[str] = []
    for line in [*lines[start:end], ""]:
        if line.startswith("   "):
            block.append(line[3:])
            continue
        if block and not line.strip():
            # a blank line inside a literal block keeps the block open if more follows
            block.append("")
            continue
        if block:
            while block and not block[-1]:
                block.pop()
            items.append("\n".join(block))
            block = []
        if line.strip():
            items.append(("label", line.strip()))
    while block and not block[-1]:
        block.pop()
    if block:
        items.append("\n".join(block))
    return items


def outputs(chunk: str, title: str, occurrence: int = 0) -> list[str]:
    """Only the literal blocks of a panel (the outputs, one per pass)."""
    return [item for item in panel(chunk, title, occurrence) if isinstance(item, str)]


def flat(text: str) -> str:
    """Whitespace collapsed, so wrapped paragraphs compare as one line."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Warned:
    path: str
    line: int | None
    message: str
    type: str

    @property
    def file(self) -> str:
        return Path(self.path).name if self.path else ""


_WARNING = re.compile(
    r"^(?:(?P<path>.+?):(?P<line>\d+)?:? )?WARNING: (?P<message>.*?)(?: \[(?P<type>[\w.-]+)\])?$"
)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def warnings(stream: str) -> list[Warned]:
    """Every ``WARNING:`` line of a build's warning stream."""
    found = []
    for line in _ANSI.sub("", stream).splitlines():
        if "WARNING:" not in line:
            continue
        match = _WARNING.match(line)
        assert match, line
        found.append(
            Warned(
                path=match["path"] or "",
                line=int(match["line"]) if match["line"] else None,
                message=match["message"],
                type=match["type"] or "",
            )
        )
    return found


def line_of(source: str, needle: str, after: str | None = None) -> int:
    """1-based number of the first line containing ``needle`` (after the line holding ``after``)."""
    lines = source.splitlines()
    start = 0
    if after is not None:
        start = next(i for i, line in enumerate(lines) if after in line) + 1
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


NUMBER = re.compile(r"-?\d+\.\d*(?:e[+-]?\d+)?")


def numbers(tensor_repr: str) -> list[float]:
    """The numbers printed inside a tensor's repr (``grad_fn=...`` and the like ignored)."""
    body = tensor_repr.split("grad_fn=")[0].split("requires_grad=")[0]
    return [float(token) for token in NUMBER.findall(body)]


def soup(app: Any, name: str) -> Any:
    """A built HTML page of ``app``, parsed."""
    from bs4 import BeautifulSoup

    return BeautifulSoup((app.outdir / name).read_text(encoding="utf-8"), "html.parser")


def warnings_of(app: Any) -> list[str]:
    """The build's warning and error lines, colours stripped."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", app.warning.getvalue())
    return [line for line in text.splitlines() if "WARNING" in line or "ERROR" in line]


#: A command-line build, ``python -c LEFT_BEHIND <sphinx-build arguments>``, that then
#: prints what it left in its process: modules (torch, s3fs), our threads, child processes.
LEFT_BEHIND = """\
import os, sys, threading
from pathlib import Path
from sphinx.cmd.build import build_main

status = build_main(sys.argv[1:])
children = []
for proc in Path("/proc").glob("[0-9]*"):
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if int(fields[1]) == os.getpid() and fields[0] != "Z":
        children.append(proc.name)
print("torch imported by the Sphinx process:", "torch" in sys.modules)
print("s3fs imported by the Sphinx process:", "s3fs" in sys.modules)
print("evaldemo threads left:", sorted(t.name for t in threading.enumerate() if t.name.startswith("evaldemo")))
print("child processes left:", len(children))
sys.exit(status)
"""
