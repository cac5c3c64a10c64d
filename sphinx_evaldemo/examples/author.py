"""``python -m sphinx_evaldemo run PAGE``: one page's examples, run the way a build runs them.

The command is a Sphinx build of that one page and nothing else, so that it cannot
drift from a build: the page is parsed by the same directive (the same option reading,
requests and keys), the examples go through the same Runner and local executor (a warm
parent, a fresh process per example), the outcome through the same diagnosis and
claims, and the text is the one the text builder writes, made by the same render path.
What it leaves out is the rest of the project: of ``conf.py`` it takes the ``evaldemo_*``
values, the extensions and the settings that decide how a page is parsed; the other
pages are not read, and the build's cache is neither read nor written (the examples
run in every call, which is what an author asks for).
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO

from docutils import nodes
from docutils.io import StringOutput
from docutils.parsers.rst import Directive
from docutils.utils import new_document

from . import report_files
from .nodes import evaldemo_example
from .records import ExampleRecord, examples, record_of
from .scan import DIRECTIVE

#: Exit statuses: every example as expected, something failed, the command was misused.
OK, FAILED, USAGE = 0, 1, 2

#: conf.py values besides ``evaldemo_*`` and ``extensions`` that decide how a page is read.
_PARSING = ("source_suffix", "rst_prolog", "rst_epilog", "numfig", "numfig_format")
_PARSER_PREFIXES = ("evaldemo_", "myst_", "nb_")
#: the directive that stands in for the examples ``--line`` leaves out
_SKIPPED = "evaldemo-skipped"


class UsageError(Exception):
    """A page or conf.py that cannot be used: the message says what to do."""


@dataclass
class Shown:
    """One example as the page shows it: its record, its ``:name:``, its text."""

    record: ExampleRecord
    name: str
    text: str


@dataclass
class Outcome:
    """What a run of the command found, in page order."""

    page: Path
    shown: list[Shown] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    settings_warnings: list[str] = field(default_factory=list)
    #: the pages the build read: this one alone
    read: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Anything but every example run as expected (an example with no result too)."""
        return any(row["outcome"] != "passed" for row in self.rows)


def find_conf(page: Path) -> Path:
    """The ``conf.py`` of the nearest folder at or above the page's."""
    start = page.parent.resolve()
    for folder in (start, *start.parents):
        candidate = folder / "conf.py"
        if candidate.is_file():
            return candidate
    raise UsageError(
        f"no conf.py found in {page.parent} or any folder above it; run the command on a page "
        "of a Sphinx project (the folder holding conf.py is the project's source folder)"
    )


def read_conf(conf: Path) -> dict[str, Any]:
    """The settings of ``conf.py`` that the command uses, read as Sphinx reads the file.

    Sphinx executes it with its folder as the working directory; the ``sys.path``
    entries it adds stay (its extensions may live there), as in a build.
    """
    from sphinx.config import eval_config_file
    from sphinx.errors import ConfigError
    from sphinx.util.tags import Tags

    folder = str(conf.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        namespace = eval_config_file(conf, Tags())
    except ConfigError as error:
        raise UsageError(f"{conf}: {error}") from None
    taken = {
        name: value for name, value in namespace.items()
        if name.startswith(_PARSER_PREFIXES) or name in _PARSING
    }
    taken["extensions"] = list(namespace.get("extensions", []))
    if "sphinx_evaldemo" not in taken["extensions"]:
        taken["extensions"].append("sphinx_evaldemo")
    return taken


def opening_lines(source: str) -> list[int]:
    """The 1-based lines where the directive opens (a fence or ``.. evaldemo::``)."""
    return [number for number, text in enumerate(source.splitlines(), 1) if DIRECTIVE.search(text)]


def choose(source: str, line: int, page: Path) -> int:
    """The opening line of the example at ``line``: the last one that opens at or before it."""
    openings = opening_lines(source)
    before = [number for number in openings if number <= line]
    if not before:
        where = ", ".join(map(str, openings)) or "none"
        raise UsageError(f"{page}: no example opens at or before line {line} (examples open at lines: {where})")
    return before[-1]


def leave_out(source: str, keep: int) -> str:
    """The page with every example but the one opening at ``keep`` turned into a
    directive that shows and runs nothing (lines stay where they are)."""
    lines = source.splitlines(keepends=True)
    for index, text in enumerate(lines):
        if index + 1 != keep:
            lines[index] = DIRECTIVE.sub(
                lambda m: "{" + _SKIPPED + "}" if m.group().startswith("{") else f".. {_SKIPPED}::", text
            )
    return "".join(lines)


class SkippedDirective(Directive):
    """An example ``--line`` does not pick: nothing at all."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    #: none declared, as for ``evaldemo``: the option lines stay in the content
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {}

    def run(self) -> list[nodes.Node]:
        return []


def run_page(page: Path, line: int | None = None) -> Outcome:
    """Run the examples of ``page`` (or the one at ``line``) with conf.py's settings."""
    if not page.is_file():
        raise UsageError(f"no such page: {page}")
    page = page.resolve()
    conf = find_conf(page)
    srcdir = conf.parent
    relative = page.relative_to(srcdir).as_posix()
    settings = read_conf(conf)
    suffixes = settings.get("source_suffix") or {".rst": "restructuredtext"}
    known = list(suffixes) if not isinstance(suffixes, str) else [suffixes]
    if "myst_parser" not in settings["extensions"] and "myst_nb" not in settings["extensions"]:
        known.append(".md")  # the extension sets MyST up itself
    if page.suffix not in known:
        raise UsageError(f"{page}: not a page of this project (its source suffixes are {', '.join(known)})")
    keep = None if line is None else choose(page.read_text(encoding="utf-8"), line, page)
    docname = relative[: -len(page.suffix)]
    return _build(srcdir, docname, relative, settings, keep, page)


def _build(
    srcdir: Path, docname: str, relative: str, settings: dict[str, Any], keep: int | None, page: Path,
) -> Outcome:
    from sphinx.application import Sphinx
    from sphinx.errors import SphinxError
    from sphinx.util.docutils import docutils_namespace, patch_docutils
    from sphinx.writers.text import TextWriter

    from . import wiring

    started = time.perf_counter()
    outcome = Outcome(page)
    with tempfile.TemporaryDirectory(prefix="evaldemo-run-") as scratch:
        overrides = {
            **settings,
            "root_doc": docname,
            "include_patterns": [relative],
            "exclude_patterns": [],
            # the build's cache is left alone: every call runs the examples, on this machine
            "evaldemo_execute": "force",
            "evaldemo_executor": "local",
            "evaldemo_cache_dir": str(Path(scratch, "cache")),
            "evaldemo_cache_namespace": None,
            "evaldemo_report_files": (),  # the rows are printed; the scratch folder goes
            "suppress_warnings": ["toc", "ref", "misc.highlighting_failure"],
        }
        texts: dict[int, tuple[str, str]] = {}

        def source_read(app: Sphinx, name: str, source: list[str]) -> None:
            if name == docname and keep is not None:
                source[0] = leave_out(source[0], keep)

        def resolved(app: Sphinx, doctree: nodes.document, name: str) -> None:
            writer = TextWriter(app.builder)  # type: ignore[arg-type]
            for node in doctree.findall(evaldemo_example):
                record = record_of(app.env, node)
                if record is None:
                    continue
                document = new_document(str(page), doctree.settings)
                document += node.deepcopy()
                target = StringOutput(encoding="unicode")
                writer.write(document, target)
                names: list[str] = node.get("names", [])
                texts[record.lineno] = (names[0] if names else "", str(target.destination))

        warnings = io.StringIO()
        # as sphinx-build does: what Sphinx registers with docutils is put back after the
        # build, so a process that goes on (a test suite) builds as if afresh
        with patch_docutils(str(srcdir)), docutils_namespace():
            try:
                app = Sphinx(
                    str(srcdir), None, str(Path(scratch, "out")), str(Path(scratch, "doctrees")), "text",
                    confoverrides=overrides, status=None, warning=warnings, freshenv=True,
                )
                app.add_directive(_SKIPPED, SkippedDirective)
                app.connect("source-read", source_read)
                app.connect("doctree-resolved", resolved, priority=900)  # after the outputs are added
                app.build(force_all=True)
            except SphinxError as error:
                raise UsageError(f"{page}: the page could not be built: {error}") from None
        # the settings' own problems: the examples' are in the rows
        outcome.settings_warnings = [
            line for line in warnings.getvalue().splitlines() if "[evaldemo.config]" in line
        ]
        outcome.read = sorted(app.env.found_docs)
        run = wiring.runner(app)
        records = sorted(examples(app.env).get(docname, []), key=lambda r: r.lineno)
        for record in records:
            name, text = texts.get(record.lineno, ("", ""))
            outcome.shown.append(Shown(record, name, text))
            outcome.rows.append(report_files.row(run, record, relative))
    outcome.seconds = time.perf_counter() - started
    if keep is not None and not outcome.shown:
        raise UsageError(f"{page}: line {keep} opens no example (a directive in a code sample?)")
    return outcome


def write_text(outcome: Outcome, out: TextIO) -> None:
    """Each example's text as the text builder writes it, then its warnings and a total."""
    for shown, row in zip(outcome.shown, outcome.rows, strict=True):
        title = shown.record.caption or shown.name
        heading = f"{row['page']}:{row['line']}{f' ({title})' if title else ''}: {row['status']}"
        out.write(f"{heading}\n{'-' * len(heading)}\n\n{shown.text.rstrip()}\n\n")
        for problem in row["problems"]:
            out.write(f"{row['page']}:{problem['line']}: WARNING: {problem['message']} [evaldemo.{problem['kind']}]\n")
        if row["problems"]:
            out.write("\n")
    failed = sum(row["failed"] for row in outcome.rows)
    count = len(outcome.rows)
    out.write(
        f"{count} example{'' if count == 1 else 's'}, {failed} failed ({outcome.seconds:.1f} s)\n"
    )


def write_json(outcome: Outcome, out: TextIO) -> None:
    json.dump({"version": report_files.VERSION, "page": str(outcome.page), "examples": outcome.rows,
               "failed": sum(row["failed"] for row in outcome.rows),
               "seconds": outcome.seconds}, out, indent=2)
    out.write("\n")


def main(page: str, line: int | None, as_json: bool, out: TextIO | None = None) -> int:
    """The command: the exit status (0 all as expected, 1 something failed, 2 misuse)."""
    out = out or sys.stdout
    try:
        outcome = run_page(Path(page), line)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE
    for warning in outcome.settings_warnings:
        print(warning, file=sys.stderr)
    (write_json if as_json else write_text)(outcome, out)
    return FAILED if outcome.failed else OK

