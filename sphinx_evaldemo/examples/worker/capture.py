"""Bounded capture of what an example prints, labelled by the mode its models are in."""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Callable
from typing import Any

from ..model import Segment

#: Control characters other than tab and newline (C0, DEL, C1): a terminal or a browser
#: would act on them (ESC starts an escape sequence, NUL cuts a string), so they are
#: shown; and lone surrogates (a file name decoded with ``surrogateescape``), which no
#: builder can encode.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    r"""``text`` with each control character and lone surrogate written out (``\x1b``,
    ``\udcff``); ``\r\n`` becomes ``\n``. What is left can be written by every builder."""
    text = text.replace("\r\n", "\n")
    return _UNSAFE.sub(_escape, text)


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


_LINE_CONTROL = re.compile(r"(\r|\n)")


class _Kept:
    """The head and the tail of the text so far, as ``[label, text]`` pieces."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head: list[list[str]] = []
        self.head_size = 0
        self.tail: list[list[str]] = []
        self.tail_size = 0
        self.cut = 0

    def copy(self) -> _Kept:
        other = _Kept(self.limit)
        other.head, other.tail = [list(p) for p in self.head], [list(p) for p in self.tail]
        other.head_size, other.tail_size, other.cut = self.head_size, self.tail_size, self.cut
        return other

    def keep(self, label: str, text: str) -> None:
        room = self.limit // 2 - self.head_size
        if room > 0:
            _append(self.head, label, text[:room])
            self.head_size += min(room, len(text))
            text = text[room:]
        if text:
            _append(self.tail, label, text)
            self.tail_size += len(text)
            self._trim_tail()

    def _trim_tail(self) -> None:
        keep = self.limit - self.limit // 2
        while self.tail_size > keep:
            excess = self.tail_size - keep
            _, text = self.tail[0]
            if len(text) <= excess:
                self.tail.pop(0)
                dropped = len(text)
            else:
                self.tail[0][1] = text[excess:]
                dropped = excess
            self.tail_size -= dropped
            self.cut += dropped

    def segments(self) -> tuple[Segment, ...]:
        pieces = [list(p) for p in self.head]
        if self.cut:
            label = pieces[-1][0] if pieces else ""
            _append(pieces, label, cut_marker(self.cut))
        for label, text in self.tail:
            _append(pieces, label, text)
        return tuple(Segment(label, text) for label, text in pieces)


def _append(pieces: list[list[str]], label: str, text: str) -> None:
    if pieces and pieces[-1][0] == label:
        pieces[-1][1] += text
    else:
        pieces.append([label, text])


class Capture(io.TextIOBase):
    """A text stream that keeps at most ``limit`` characters (head and tail).

    Each write is tagged with ``label()`` (the mode of the example's models at that
    moment); consecutive writes with the same label form one segment. A ``\\r`` takes
    the cursor back to the start of the line and what follows overwrites it, as a
    terminal shows it (a progress line ends as its last state). Memory stays bounded
    however much an example prints.
    """

    def __init__(self, limit: int, label: Callable[[], str] = lambda: "") -> None:
        super().__init__()
        self._limit = max(limit, 2)
        self._label = label
        self._kept = _Kept(self._limit)
        #: the line not ended yet, which a ``\r`` may still rewrite, and its cursor
        self._line = ""
        self._column = 0
        self._line_label = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        written = len(text)
        if not text:
            return 0
        if _tee is not None:
            _tee(text)
        self.add(self._label(), text)
        return written

    def add(self, label: str, text: str) -> None:
        """Take ``text``, printed while the models were in ``label``, as a terminal shows it."""
        if label != self._line_label:
            self._end_line()  # a new segment starts a new line: \r cannot reach back
            self._line_label = label
        if "\r" not in text and self._column == len(self._line):
            end = text.rfind("\n") + 1
            if end:
                self._kept.keep(label, self._line + text[:end])
                self._line = ""
            self._line += text[end:]
            self._column = len(self._line)
        else:
            for part in _LINE_CONTROL.split(text):
                if part == "\n":
                    self._kept.keep(label, self._line + "\n")
                    self._line, self._column = "", 0
                elif part == "\r":
                    self._column = 0
                elif part:
                    line, column = self._line, self._column
                    self._line = line[:column] + part + line[column + len(part) :]
                    self._column = column + len(part)
        if len(self._line) > self._limit:  # a line that never ends is kept as it comes
            self._end_line()

    def _end_line(self) -> None:
        if self._line:
            self._kept.keep(self._line_label, self._line)
        self._line, self._column = "", 0

    def _ended(self) -> _Kept:
        """What is kept, with the line not ended yet as it stands (the state is not changed)."""
        if not self._line:
            return self._kept
        kept = self._kept.copy()
        kept.keep(self._line_label, self._line)
        return kept

    @property
    def cut(self) -> int:
        """Characters dropped from the middle so far."""
        return self._ended().cut

    def segments(self) -> tuple[Segment, ...]:
        return self._ended().segments()

    def text(self) -> str:
        return "".join(segment.text for segment in self.segments())


#: What a script's process writes into its output, between two writes, when the mode of
#: its models changes: ``MARK``, the run's token, a space, the mode, ``MARK_END``. The
#: token is drawn by the warm parent, so no output can set a label by chance.
MARK = b"\0\x1b[evaldemo-mode "
MARK_END = b"]\0"
LABELS = ("", "train", "eval", "mixed")
#: Longer than any mark: a ``MARK`` not ended within this is text.
_MARK_MAX = len(MARK) + 64


def mark(token: str, label: str) -> bytes:
    """The bytes that say: what follows was printed with the models in ``label``."""
    return MARK + token.encode("ascii") + b" " + label.encode("ascii") + MARK_END


def _partial_mark(data: bytes) -> int:
    """How many bytes at the end of ``data`` may be the start of a mark cut by the read."""
    for size in range(min(len(MARK) - 1, len(data)), 0, -1):
        if data.endswith(MARK[:size]):
            return size
    return 0


class OutputReader:
    """The bytes an example's process writes to fd 1 and 2, into a :class:`Capture`.

    Marks set the label of what follows and are taken out; the rest is decoded as UTF-8,
    with bytes that are not UTF-8 written out (``\\xff``), so the text is made safe once,
    here, however the output was produced (print, C code, a subprocess).
    """

    def __init__(self, capture: Capture, token: str) -> None:
        self.capture = capture
        self._token = token.encode("ascii")
        self._label = ""
        self._pending = b""
        self._decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")

    def feed(self, data: bytes) -> None:
        data = self._pending + data
        self._pending = b""
        while data:
            at = data.find(MARK)
            if at < 0:
                keep = _partial_mark(data)
                self._text(data[: len(data) - keep])
                self._pending = data[len(data) - keep :]
                return
            self._text(data[:at])
            end = data.find(MARK_END, at + len(MARK))
            if end < 0 and len(data) - at < _MARK_MAX:
                self._pending = data[at:]
                return
            if end < 0 or end - at > _MARK_MAX:
                self._text(data[at : at + 1])  # not a mark: text, and look again after it
                data = data[at + 1 :]
                continue
            token, _, label = data[at + len(MARK) : end].partition(b" ")
            if token == self._token and label.decode("ascii", "replace") in LABELS:
                self._label = label.decode("ascii")
            else:
                self._text(data[at : end + len(MARK_END)])
            data = data[end + len(MARK_END) :]

    def _text(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            self.capture.add(self._label, text)

    def close(self) -> Capture:
        """Take what is still held back (a cut mark, half a character) as text."""
        pending, self._pending = self._pending, b""
        text = self._decoder.decode(pending, final=True)
        if text:
            self.capture.add(self._label, text)
        return self.capture
