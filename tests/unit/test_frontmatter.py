"""Front-matter coercion, dates, names, the tldr and the page handed to MyST: pure functions,
from tables."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from sphinx_evaldemo.articles import dates, frontmatter, source
from sphinx_evaldemo.articles.catalog import ArticleRecord
from sphinx_evaldemo.articles.listing import newest_first, parse_options
from sphinx_evaldemo.articles.meta import ArticleMeta, Thumbnail

VALID = """\
title: T
authors: Ada
tldr: S
created_at: 2026-11-28
"""


def page(yaml_text: str, body: str = "## Body\n") -> str:
    return f"---\n{yaml_text}---\n\n{body}"


def read(yaml_text: str) -> frontmatter.Reading:
    reading = frontmatter.read(page(yaml_text))
    assert reading is not None
    return reading


# --------------------------------------------------------------------------- values

UTC = timezone.utc
PLUS1 = timezone(timedelta(hours=1))

#: (YAML of one key, the key, the value read) -- on top of a valid header, no problem
VALUES = [
    ("title: Plain", "title", "Plain"),
    ("title: 1984", "title", "1984"),  # the text as typed, not an int
    ("title: 'on'", "title", "on"),
    ("title: >\n  folded\n  over lines\n", "title", "folded over lines"),
    ("subtitle: A line under it", "subtitle", "A line under it"),
    ("authors: Ada", "authors", ("Ada",)),
    ("authors: [Ada, Alan]", "authors", ("Ada", "Alan")),
    ("authors:\n  - Ada\n  - Ada\n", "authors", ("Ada",)),
    ("tags: [on, 3.10, Deep learning, réseaux]", "tags", ("on", "3.10", "Deep learning",
                                                          "réseaux")),
    ("tags: single", "tags", ("single",)),
    ("tags: []", "tags", None),
    ("created_at: 2026-11-28", "created_at", date(2026, 11, 28)),
    ("created_at: '2026-11-28'", "created_at", date(2026, 11, 28)),
    ("created_at: 2026-11-28T10:30:00Z", "created_at", datetime(2026, 11, 28, 10, 30,
                                                                tzinfo=UTC)),
    ("created_at: 2026-11-28 10:30 +01:00", "created_at", datetime(2026, 11, 28, 10, 30,
                                                                   tzinfo=PLUS1)),
    ("created_at: 2026-11-28 10:30:05.25", "created_at", datetime(2026, 11, 28, 10, 30, 5,
                                                                  250000)),
    ("updated_at: 2026-11-29", "updated_at", date(2026, 11, 29)),
    ("tldr: '*Markdown* stays as `text`'", "tldr", "*Markdown* stays as `text`"),
    ("thumbnail: 0", "thumbnail", Thumbnail("index", 0)),
    ("thumbnail: img/a.png", "thumbnail", Thumbnail("path", "img/a.png")),
    ("thumbnail: '0'", "thumbnail", Thumbnail("index", 0)),  # as the Knowledge Repo reads it
    ("thumbnail: https://example.org/a.png", "thumbnail",
     Thumbnail("url", "https://example.org/a.png")),
]


@pytest.mark.parametrize(("line", "key", "expected"), VALUES)
def test_values(line: str, key: str, expected: object) -> None:
    fields = dict(ln.split(":", 1) for ln in VALID.splitlines())
    fields.pop(key, None)
    header = "".join(f"{k}:{v}\n" for k, v in fields.items()) + line.rstrip("\n") + "\n"
    reading = read(header)
    assert reading.problems == ()
    assert getattr(reading.meta, key) == (expected if expected is not None else
                                          getattr(ArticleMeta(), key))


# --------------------------------------------------------------------------- problems

#: (YAML after the valid header, expected (line, key, words) of each problem, then a check)
PROBLEMS = [
    ("title: [a, b]\n", [(6, "title", "got a list; expected a string")],
     lambda m: m.title is None),
    ("subtitle:\n", [(6, "subtitle", "got an empty value")], lambda m: m.subtitle is None),
    ("authors: {name: Ada}\n", [(6, "authors", "got a mapping")], lambda m: m.authors == ()),
    ("authors: []\n", [(6, "authors", "an empty list")], lambda m: m.authors == ()),
    ("tags:\n  - ok\n  - [nested]\n  - fine\n",
     [(8, "tags", "item 2 is a list, which was left out")], lambda m: m.tags == ("ok", "fine")),
    ("tags: [[a], ok, {b: 1}, ~]\n",
     [(6, "tags", "items 1, 3, 4 are not strings and were left out")],
     lambda m: m.tags == ("ok",)),
    ("authors:\n", [(6, "authors", "got an empty value")], lambda m: m.authors == ()),
    ("evil: !!python/object/apply:os.system ['echo hi']\n",
     [(6, "evil", "could not be read (could not determine a constructor")],
     lambda m: "evil" not in m.extra),
    ("created_at: 2023-02-30\n",
     [(6, "created_at", "'2023-02-30', which is not a valid date (day is out of range")],
     lambda m: m.created_at is None and m.title == "T"),
    ("created_at: 28 Nov 2026\n", [(6, "created_at", "not in the form YYYY-MM-DD")],
     lambda m: m.created_at is None),
    ("created_at: 2026-11-28 25:00\n", [(6, "created_at", "hour must be in 0..23")],
     lambda m: m.created_at is None),
    ("updated_at: !!timestamp 2023-02-30\n", [(6, "updated_at", "not a valid date")],
     lambda m: m.updated_at is None),
    ("updated_at: 2026-01-01\n", [(6, "updated_at", "1 Jan 2026 is before created_at")],
     lambda m: m.updated_at == date(2026, 1, 1)),
    ("thumbnail: -1\n", [(6, "thumbnail", "the index -1")], lambda m: m.thumbnail is None),
    ("thumbnail: 1.5\n", [(6, "thumbnail", "got '1.5'")], lambda m: m.thumbnail is None),
    ("thumbnail: [a.png]\n", [(6, "thumbnail", "got a list")], lambda m: m.thumbnail is None),
    ("tldr: [x]\n", [(6, "tldr", "expected a string of Markdown")],
     lambda m: m.tldr is None),
    ("tags: [a]\ntags: [b]\n", [(7, "tags", "appears twice (lines 6 and 7)")],
     lambda m: m.tags == ("b",)),
    # invalid YAML in one key: that key is lost, the others are read
    ('subtitle: "never closed\ntags: [kept]\n',
     [(6, "subtitle", "not valid YAML: found unexpected end of stream (key 'subtitle'")],
     lambda m: m.tags == ("kept",) and m.title == "T"),
    ("tags: [a, b\nsubtitle: kept\n",
     [(6, "tags", "not valid YAML: expected ',' or ']'")], lambda m: m.subtitle == "kept"),
    # the Knowledge Repo's own keys are read and checked; unknown keys are kept with their
    # types, dates as written, and not checked
    ("private: true\nallowed_groups: [a, b]\npath: /x/y.kp\nreviewed: 2023-02-30\n", [],
     lambda m: (m.private, m.allowed_groups, m.path, m.extra)
     == (True, ("a", "b"), "/x/y.kp", {"reviewed": "2023-02-30"})),
    ("private: maybe\n", [(6, "private", "got 'maybe'; expected true or false")],
     lambda m: m.private is False),
]


@pytest.mark.parametrize(("extra", "problems", "check"), PROBLEMS)
def test_problems(extra: str, problems: list[tuple[int, str, str]], check: object) -> None:
    base = VALID
    for key in ("title", "authors", "tldr", "created_at"):
        if extra.startswith(f"{key}:"):
            base = "".join(ln + "\n" for ln in VALID.splitlines() if not ln.startswith(key))
            base += "filler: x\n"  # keep the line numbers of the table
    reading = read(base + extra)
    found = [(p.line, p.key, p.message) for p in reading.problems]
    assert len(found) == len(problems), found
    for (line, key, words), (got_line, got_key, message) in zip(problems, found, strict=True):
        assert (got_line, got_key) == (line, key), message
        assert words in message
        assert f"'{key}'" in message
    assert check(reading.meta)  # type: ignore[operator]


def test_missing_required_keys_are_named_at_line_1() -> None:
    reading = read("title: Only a title\n")
    assert [(p.line, p.key) for p in reading.problems] == [
        (1, "authors"), (1, "tldr"), (1, "created_at")]
    assert all("required key" in p.message for p in reading.problems)


@pytest.mark.parametrize(
    "source",
    [
        "# No front matter\n",
        "---\nmyst:\n  enable_extensions: [deflist]\n---\n",  # front matter, not an article
        "---\n- a list\n---\n",  # not a mapping: MyST-Parser reports it
        "---\ntitle: never closed\n",
        "---\nnot: [valid\n---\n",  # broken, and no article key in sight
    ],
)
def test_not_an_article(source: str) -> None:
    assert frontmatter.read(source) is None


# --------------------------------------------------------------------------- the page for MyST


@pytest.mark.parametrize(
    ("yaml_text", "heading", "front"),
    [
        (VALID, "T", ["", "", "", "", "", "# T"]),
        (VALID, None, ["", "", "", "", "", ""]),
        (VALID + "orphan: true\nmyst:\n  enable_extensions: [deflist]\n", "T <b>",
         ["---", "{orphan: true, myst: {enable_extensions: [deflist]}}", "---", "", "", "", "",
          "", "# T \\<b\\>"]),
        (VALID + "reviewed: 2023-02-30\n", None,
         ["---", "{reviewed: '2023-02-30'}", "---", "", "", "", ""]),
    ],
)
def test_myst_source_keeps_every_line(yaml_text: str, heading: str | None,
                                      front: list[str]) -> None:
    text = page(yaml_text, "## Body\n\ntext\n")
    reading = read(yaml_text)
    result = source.myst_source(text, reading, heading)
    lines = result.split("\n")
    assert len(lines) == len(text.split("\n"))
    assert lines[: reading.end + 1] == front
    assert lines[reading.end + 1:] == text.split("\n")[reading.end + 1:]


@pytest.mark.parametrize(
    ("markdown", "level"),
    [
        ("## Motivation\n\n# Later\n", 2),
        ("Intro\n\n# Title\n", 1),
        ("Title\n=====\n", 1),
        ("```\n# a comment in code\n```\n\n## Real\n", 2),
        (":::{note}\n# inside a directive\n:::\n", None),
        ("> # quoted\n", None),
        ("no heading\n", None),
    ],
)
def test_first_heading_level(markdown: str, level: int | None) -> None:
    assert source.first_heading_level(markdown) == level


@pytest.mark.parametrize(
    ("text", "escaped"),
    [("Plain words", "Plain words"), ("<script>", "\\<script\\>"),
     ("*a* `b` {role}`c` $x$", "\\*a\\* \\`b\\` \\{role\\}\\`c\\` \\$x\\$"),
     ("What does model.eval() do?", "What does model\\.eval\\(\\) do\\?")],
)
def test_escape_markdown(text: str, escaped: str) -> None:
    assert source.escape_markdown(text) == escaped


# --------------------------------------------------------------------------- dates, names


@pytest.mark.parametrize(
    ("created", "updated", "line"),
    [
        (date(2026, 11, 28), date(2026, 11, 29), "created 28 Nov 2026 · updated 29 Nov 2026"),
        (date(2026, 11, 28), date(2026, 11, 28), "created 28 Nov 2026"),
        (date(2026, 11, 28), None, "created 28 Nov 2026"),
        (None, date(2026, 1, 5), "updated 5 Jan 2026"),
        (datetime(2026, 11, 28, 23, 30, tzinfo=PLUS1), datetime(2026, 11, 28, 23, 50, tzinfo=UTC),
         "created 28 Nov 2026"),
    ],
)
def test_dates_line(created: date | None, updated: date | None, line: str) -> None:
    assert dates.dates_line(created, updated) == line


@pytest.mark.parametrize(
    ("authors", "line"),
    [((), ""), (("Ada",), "Ada"), (("Ada", "Alan"), "Ada and Alan"),
     (("Ada", "Alan", "Grace"), "Ada, Alan and Grace")],
)
def test_byline(authors: tuple[str, ...], line: str) -> None:
    assert dates.byline(authors) == line


@pytest.mark.parametrize(
    ("text", "error"),
    [("2023-02-30", "day is out of range"), ("2026-13-01", "month must be in 1..12"),
     ("2026-11-28 10:00 +25:00", "out of range"), ("yesterday", "not in the form")],
)
def test_parse_when_errors(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        dates.parse_when(text)


def _record(title: str, created: date | None, tags: tuple[str, ...] = ()) -> ArticleRecord:
    return ArticleRecord(ArticleMeta(title=title, created_at=created, tags=tags), title, "")


def test_newest_first_respects_time_zones_and_puts_undated_last() -> None:
    records = {
        "a": _record("a", date(2026, 11, 28)),
        "b": _record("b", datetime(2026, 11, 28, 0, 30, tzinfo=PLUS1)),  # 27 Nov 23:30 UTC
        "c": _record("c", datetime(2026, 11, 28, 0, 30, tzinfo=UTC)),
        "d": _record("d", None),
        "e": _record("e", date(2027, 1, 1)),
    }
    assert [name for name, _ in newest_first(records)] == ["e", "c", "a", "b", "d"]


@pytest.mark.parametrize(
    ("options", "tags", "limit", "problem"),
    [({}, (), None, None), ({"tags": "a, Deep Learning ,"}, ("a", "Deep Learning"), None, None),
     ({"limit": "3"}, (), 3, None), ({"limit": "0"}, (), None, ":limit:"),
     ({"limit": "x"}, (), None, ":limit:"), ({"tags": None}, (), None, ":tags:")],
)
def test_listing_options(options: dict[str, str | None], tags: tuple[str, ...],
                         limit: int | None, problem: str | None) -> None:
    got_tags, got_limit, problems = parse_options(options)
    assert (got_tags, got_limit) == (tags, limit)
    assert [p[: len(problem)] for p in problems] == ([problem] if problem else [])


def test_meta_round_trips_through_json() -> None:
    meta = ArticleMeta(title="T", authors=("A",), tags=("x",),
                       created_at=datetime(2026, 1, 2, 3, 4, tzinfo=PLUS1),
                       updated_at=date(2026, 2, 3), thumbnail=Thumbnail("index", 1),
                       private=True, allowed_groups=("sre",), path="a.kp",
                       extra={"reviewed": "2026-01-01"})
    assert ArticleMeta.from_dict(meta.to_dict()) == meta
