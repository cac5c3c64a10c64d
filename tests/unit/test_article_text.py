"""Names as page files, sections moved up, the tldr as nodes and plain text: pure
functions, from tables."""

from __future__ import annotations

import pytest
from docutils import nodes

from sphinx_evaldemo.articles import names, source, tldr

# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("tag", "page"),
    [("pytorch", "pytorch"), ("PyTorch", "pytorch"), ("Deep Learning", "deep-learning"),
     ("deep_learning", "deep-learning"), ("réseaux neuronaux", "réseaux-neuronaux"),
     ("2017", "2017"), ("C", "c"),
     # punctuation, reserved and long names: a readable part, "_" and a hash of the name
     ("C++", "c_" + names.file_name("C++").split("_")[1]),
     ("<script>x</script>", "script-x-script_" + names.file_name("<SCRIPT>x</SCRIPT>")[-10:]),
     ("index", "index_" + names.file_name("INDEX")[-10:]),
     ("???", "tag_" + names.file_name("???")[-10:])],
)
def test_file_name(tag: str, page: str) -> None:
    assert names.file_name(tag) == page
    assert names.file_name(tag.upper()) == page  # case never makes another page


def test_distinct_names_never_share_a_file() -> None:
    tags = ["C", "C++", "C#", "c--", "c_", "index", "Index", "search", "con", "x" * 500,
            "x" * 499 + "y", "-", "_", "c-2b2b", "c-plus-plus", "日本語", "日本 語"]
    files = {names.key(t): names.file_name(t) for t in tags}
    assert len(set(files.values())) == len(files)
    for name in files.values():
        assert "/" not in name and len(name.encode()) <= names.MAX_BYTES
        assert name.split("_")[0] not in names.RESERVED or "_" in name
    assert names.key("index") == names.key("Index")
    assert names.file_name("x" * 500) == names.file_name("X" * 500)  # stable


def test_groups_merge_spellings_and_keep_order() -> None:
    groups = names.groups([("new", ["deep-learning", "pytorch"]),
                           ("mid", ["Deep Learning", "C++"]), ("old", ["Deep Learning", "C"])])
    assert {k: (g.label, g.docnames) for k, g in groups.items()} == {
        "c": ("C", ("old",)), "c++": ("C++", ("mid",)),
        "deep-learning": ("Deep Learning", ("new", "mid", "old")),
        "pytorch": ("pytorch", ("new",))}
    assert groups["c++"].file != groups["c"].file


# --------------------------------------------------------------------------- sections


@pytest.mark.parametrize(
    ("markdown", "shifted"),
    [
        ("### A\n\n#### B\n\n### C\n", "## A\n\n### B\n\n## C\n"),  # the KR template
        ("#### A\n\n##### B\n", "## A\n\n### B\n"),
        ("## A\n\n#### B\n", "## A\n\n#### B\n"),  # starts at ##: a real jump stays
        ("### A\n\n## B\n\n### C\n", "## A\n\n## B\n\n## C\n"),  # never above ##
        ("# Own H1\n\n### A\n", "# Own H1\n\n## A\n"),
        ("   ### A ###\n", "   ## A ###\n"),
        ("```\n### code\n```\n\n### A\n", "```\n### code\n```\n\n## A\n"),
        ("> ### quoted\n\n### A\n", "> ### quoted\n\n## A\n"),
        ("A\n---\n\n### B\n", "A\n---\n\n### B\n"),  # setext ## first: nothing to do
        ("no heading\n", "no heading\n"),
    ],
)
def test_shift_sections(markdown: str, shifted: str) -> None:
    assert source.shift_sections(markdown) == shifted


# --------------------------------------------------------------------------- tldr


def _tree(markdown: str) -> list[str]:
    return [block.pformat().strip() for block in tldr.parse(markdown)]


def test_tldr_blocks_and_inline() -> None:
    blocks = tldr.parse("One *a* `b` [c](https://x.org/) [d](other.md) ![e](i.png)\n\n"
                        "- f\n- **g**\n\n1. h\n\n> q\n\n### H\n\n```{evaldemo}\nrun()\n```\n")
    kinds = [type(block).__name__ for block in blocks]
    assert kinds == ["paragraph", "bullet_list", "enumerated_list", "block_quote", "paragraph",
                     "literal_block"]
    first = blocks[0]
    assert [type(n).__name__ for n in first.children] == [
        "Text", "emphasis", "Text", "literal", "Text", "reference", "Text", "inline", "Text",
        "Text"]
    assert first.next_node(nodes.reference)["refuri"] == "https://x.org/"
    assert first.astext() == "One a b c d e"
    assert blocks[4]["classes"] == ["evaldemo-tldr-heading"]
    assert blocks[5]["language"] == "text" and blocks[5].astext() == "run()"


@pytest.mark.parametrize(
    ("markdown", "plain"),
    [
        ("Resuming *without* `x` [docs](https://a.b).", "Resuming without x docs."),
        ("Line one\nline two\n\n- a\n- b\n", "Line one line two a b"),
        # raw HTML is shown as text, so the plain text keeps it as the box shows it
        ("Text <b>bold</b> and <script>alert(1)</script>",
         "Text <b>bold</b> and <script>alert(1)</script>"),
        ("<table><tr><td>1</td><td>2</td></tr></table>\n",
         "<table><tr><td>1</td><td>2</td></tr></table>"),
        ("a <i>b</i>\n\n<div>\n  c\n</div>\n", "a <i>b</i> <div> c </div>"),
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))"),
        ("word " * 80, ("word " * 60).strip() + "…"),
        ("a" * 400, "a" * 300 + "…"),
    ],
)
def test_tldr_plain_text(markdown: str, plain: str) -> None:
    text = tldr.plain(tldr.parse(markdown))
    assert text == plain
    assert len(text) <= tldr.SUMMARY_LIMIT + 1


def test_tldr_raw_html_is_text_and_unsafe_links_are_not_links() -> None:
    blocks = tldr.parse("<div onclick='x()'>hi</div>\n\nSee <img src=x onerror=y> and "
                        "[a](javascript:alert(1)) and [b](data:text/html,x)\n")
    assert not [n for b in blocks for n in b.findall(nodes.raw)]
    refs = [n for b in blocks for n in b.findall(nodes.reference)]
    assert refs == []
    assert blocks[0].astext() == "<div onclick='x()'>hi</div>"
    assert "<img src=x onerror=y>" in blocks[1].astext()
