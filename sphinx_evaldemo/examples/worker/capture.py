"""Bounded capture of what an example prints, labelled by the mode its models are in."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

from ..model import Segment

#: Control characters other than tab and newline (C0, DEL, C1): a terminal or a browser
#: would act on them (ESC starts an escape sequence, NUL cuts a string), so they are shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    r"""``text`` with each control character written out (``\x1b``); ``\r\n`` becomes ``\n``."""
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def visible_tree(data: Any) -> Any:
    """Every string inside JSON-like ``data`` made :func:`visible` (keys are ours: kept)."""
    if isinstance(data, str):
        return visible(data)
    if isinstance(data, dict):
        return {key: visible_tree(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [visible_tree(value) for value in data]
    return data


#: Called with every piece of text any :class:`Capture` receives, as it is written: the
#: child process streams what the example prints to its parent through it, so a crash or
#: a timeout still shows what came before.
_tee: Callable[[str], object] | None = None


def stream_to(tee: Callable[[str], object] | None) -> None:
    """Send every captured write to ``tee`` as well (``None``: stop)."""
    global _tee  # one stream per process: the child's pipe to its parent
    _tee = tee


def cut_marker(count: int) -> str:
    return f"\n[... output cut at this point: {count} characters omitted ...]\n"


def truncate(text: str, limit: int) -> str:
    """Keep the head and the tail of ``text``, with a line saying how much was cut."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    return text[:head] + cut_marker(len(text) - limit) + text[len(text) - tail :]


class Capture(io.TextIOBase):
    """A text stream that keeps at most ``limit`` characters (head and tail).

    Each write is tagged with ``label()`` (the mode of the example's models at that
    moment); consecutive writes with the same label form one segment. Memory stays
    bounded however much an example prints.
    """

    def __init__(self, limit: int, label: Callable[[], str] = lambda: "") -> None:
        super().__init__()
        self._limit = max(limit, 2)
        self._label = label
        self._head: list[list[str]] = []  # [label, text] pieces
        self._head_size = 0
        self._tail: list[list[str]] = []
        self._tail_size = 0
        self._cut = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        written = len(text)
        if not text:
            return 0
        if _tee is not None:
            _tee(text)
        label = self._label()
        room = self._limit // 2 - self._head_size
        if room > 0:
            self._append(self._head, label, text[:room])
            self._head_size += min(room, len(text))
            text = text[room:]
        if text:
            self._append(self._tail, label, text)
            self._tail_size += len(text)
            self._trim_tail()
        return written

    @staticmethod
    def _append(pieces: list[list[str]], label: str, text: str) -> None:
        if pieces and pieces[-1][0] == label:
            pieces[-1][1] += text
        else:
            pieces.append([label, text])

    def _trim_tail(self) -> None:
        keep = self._limit - self._limit // 2
        while self._tail_size > keep:
            excess = self._tail_size - keep
            _, text = self._tail[0]
            if len(text) <= excess:
                self._tail.pop(0)
                dropped = len(text)
            else:
                self._tail[0][1] = text[excess:]
                dropped = excess
            self._tail_size -= dropped
            self._cut += dropped

    @property
    def cut(self) -> int:
        """Characters dropped from the middle so far."""
        return self._cut

    def segments(self) -> tuple[Segment, ...]:
        pieces = [list(p) for p in self._head]
        if self._cut:
            label = pieces[-1][0] if pieces else ""
            self._append(pieces, label, cut_marker(self._cut))
        for label, text in self._tail:
            self._append(pieces, label, text)
        return tuple(Segment(label, text) for label, text in pieces)

    def text(self) -> str:
        return "".join(segment.text for segment in self.segments())
