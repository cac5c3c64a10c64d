"""truncate, Capture's head/tail/segments with bounded memory, its stream, a terminal's
carriage return, the marks of OutputReader, and visible control characters."""

from __future__ import annotations

import pytest

from sphinx_evaldemo.examples.model import Segment
from sphinx_evaldemo.examples.worker.capture import (
    MARK,
    Capture,
    OutputReader,
    cut_marker,
    mark,
    stream_to,
    truncate,
    visible,
    visible_tree,
)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("", 10, ""),
        ("abcdef", 10, "abcdef"),
        ("abcdefghij", 10, "abcdefghij"),
        ("abcdefghij", 4, "ab" + cut_marker(6) + "ij"),
        ("abcdefghij", 5, "ab" + cut_marker(5) + "hij"),
        ("abcdefghijk", 10, "abcde" + cut_marker(1) + "ghijk"),
    ],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


def test_cut_marker_is_a_line_of_its_own_with_the_count() -> None:
    marker = cut_marker(4001)
    assert marker.startswith("\n") and marker.endswith("\n")
    assert "4001 characters" in marker


def test_capture_within_limit_keeps_everything() -> None:
    capture = Capture(100)
    print("hello", file=capture)
    print("world", file=capture)
    assert capture.text() == "hello\nworld\n"
    assert capture.segments() == (Segment("", "hello\nworld\n"),)
    assert capture.cut == 0


def test_write_returns_the_length_given() -> None:
    capture = Capture(4)
    assert capture.write("abcdefgh") == 8
    assert capture.write("") == 0


def test_segments_follow_the_label_at_each_write() -> None:
    mode = ["train"]
    capture = Capture(1000, lambda: mode[0])
    capture.write("a1\n")
    capture.write("a2\n")
    mode[0] = "eval"
    capture.write("b\n")
    mode[0] = "train"
    capture.write("c\n")
    assert capture.segments() == (
        Segment("train", "a1\na2\n"),
        Segment("eval", "b\n"),
        Segment("train", "c\n"),
    )


def test_labels_survive_the_cut() -> None:
    mode = ["train"]
    capture = Capture(10, lambda: mode[0])
    capture.write("aaaa")
    mode[0] = "eval"
    capture.write("bbbbbbbbbb")
    capture.write("cc")
    # head: 5 characters; tail: the last 5; 16 written, so 6 cut
    assert capture.cut == 6
    assert capture.segments() == (
        Segment("train", "aaaa"),
        Segment("eval", "b" + cut_marker(6) + "bbbcc"),
    )


CHUNKINGS = [
    [1] * 50,
    [7, 3, 40],
    [50],
    [25, 25],
    [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8],
]


@pytest.mark.parametrize("limit", [2, 10, 11, 49, 50, 51])
@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_capture_agrees_with_truncate_however_the_text_arrives(limit: int, chunks: list[int]) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(sum(chunks)))
    capture = Capture(limit)
    position = 0
    for size in chunks:
        capture.write(text[position : position + size])
        position += size
    assert capture.text() == truncate(text, limit)
    assert capture.cut == max(0, len(text) - limit)


def test_memory_stays_bounded() -> None:
    capture = Capture(100)
    for _ in range(20000):
        capture.write("0123456789")
    kept = capture.text().replace(cut_marker(capture.cut), "")
    assert len(kept) == 100
    assert capture.cut == 200000 - 100


VISIBLE = [
    ("plain text\twith a tab\n", "plain text\twith a tab\n"),
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
    ("bell\x07 nul\x00 del\x7f", "bell\\x07 nul\\x00 del\\x7f"),
    ("csi\x9b c1\x85", "csi\\x9b c1\\x85"),
    ("windows\r\nline", "windows\nline"),
    ("progress\r50%\r100%", "progress\\x0d50%\\x0d100%"),
    ("form\x0cfeed\x0bvertical", "form\\x0cfeed\\x0bvertical"),
    ("unicode é ✓ \u2028 stays", "unicode é ✓ \u2028 stays"),
    ("already \\x1b escaped", "already \\x1b escaped"),
    ("a file name caf\udce9.txt", "a file name caf\\udce9.txt"),
    ("lone \ud800 high, \udfff low", "lone \\ud800 high, \\udfff low"),
    ("a pair \U0001f600 is a character", "a pair \U0001f600 is a character"),
]


@pytest.mark.parametrize(("raw", "shown"), VISIBLE)
def test_control_characters_are_written_out(raw: str, shown: str) -> None:
    assert visible(raw) == shown
    assert visible(shown) == shown  # applying it twice changes nothing


def test_every_string_in_a_result_is_made_visible() -> None:
    data = {"failure": {"message": "bad \x1b", "lineno": 3}, "runs": [{"outputs": ["\x07"], "seconds": 0.5}],
            "extra": {}, "ok": None}
    assert visible_tree(data) == {
        "failure": {"message": "bad \\x1b", "lineno": 3}, "runs": [{"outputs": ["\\x07"], "seconds": 0.5}],
        "extra": {}, "ok": None,
    }


def test_captured_writes_are_streamed_as_they_happen() -> None:
    streamed: list[str] = []
    stream_to(streamed.append)
    try:
        capture = Capture(10)
        capture.write("first ")
        assert streamed == ["first "]
        capture.write("second, longer than the limit")
    finally:
        stream_to(None)
    Capture(10).write("not streamed")
    assert streamed == ["first ", "second, longer than the limit"]


TERMINAL = [
    ("plain\n", "plain\n"),
    ("50%\r100%\n", "100%\n"),
    ("progress\r50%\r100%", "100%ress"),  # shorter text overwrites only its own cells
    ("abc\rX\n", "Xbc\n"),
    ("abc\r\n", "abc\n"),
    ("a\r\rb\nc\n", "b\nc\n"),
    ("\rstart", "start"),
    ("one\ntwo\rTWO\nthree", "one\nTWO\nthree"),
]


@pytest.mark.parametrize(("raw", "shown"), TERMINAL)
@pytest.mark.parametrize("size", [1, 2, 3, 100])
def test_a_carriage_return_rewrites_the_line_as_a_terminal_shows_it(raw: str, shown: str, size: int) -> None:
    capture = Capture(1000)
    for start in range(0, len(raw), size):
        capture.write(raw[start : start + size])
    assert capture.text() == shown


def test_progress_lines_do_not_fill_the_limit() -> None:
    capture = Capture(40)
    for step in range(10000):
        capture.write(f"\rstep {step}")
    capture.write("\n")
    assert capture.text() == "step 9999\n"
    assert capture.cut == 0


def test_a_new_label_starts_a_new_line() -> None:
    capture = Capture(100)
    capture.add("train", "50%")
    capture.add("eval", "\rX\n")
    assert capture.segments() == (Segment("train", "50%"), Segment("eval", "X\n"))


def test_a_line_that_never_ends_is_bounded() -> None:
    capture = Capture(10)
    for _ in range(1000):
        capture.write("xxxxxxxxxx")
    assert len(capture.text().replace(cut_marker(capture.cut), "")) == 10
    assert capture.cut == 10000 - 10


def _read(chunks: list[bytes], token: str = "t0k3n") -> tuple[Segment, ...]:
    reader = OutputReader(Capture(1000), token)
    for chunk in chunks:
        reader.feed(chunk)
    return reader.close().segments()


STREAM = b"before\n" + mark("t0k3n", "train") + b"caf\xc3\xa9 \xff\n" + mark("t0k3n", "eval") + b"\x00late\n"


@pytest.mark.parametrize("size", [1, 2, 5, 17, len(STREAM)])
def test_marks_set_the_label_however_the_bytes_arrive(size: int) -> None:
    chunks = [STREAM[start : start + size] for start in range(0, len(STREAM), size)]
    assert _read(chunks) == (
        Segment("", "before\n"),
        Segment("train", "caf\u00e9 \\xff\n"),  # bytes that are not UTF-8 are written out
        Segment("eval", "\x00late\n"),  # control characters are left to visible()
    )


@pytest.mark.parametrize(
    "data",
    [
        mark("other", "eval") + b"x\n",  # another run's token: text
        MARK + b"t0k3n nonsense" + b"]\0x\n",  # not a label
        MARK + b"t0k3n eval",  # never ended
        MARK + b"x" * 200 + b"]\0",  # longer than any mark
    ],
)
def test_what_is_not_a_mark_of_this_run_is_text(data: bytes) -> None:
    segments = _read([data])
    assert [segment.mode for segment in segments] == [""]
    assert segments[0].text == data.decode("utf-8", "backslashreplace")
