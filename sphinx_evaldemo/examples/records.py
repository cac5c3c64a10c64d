"""The typed record of each example on a page, and the one owner of them on ``env``.

The records live on ``env`` only; an example's node carries plain data that names its
record (``node["evaldemo"] = {"page": docname, "index": n}``), so the doctrees Sphinx
pickles hold no object of ours.
"""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sphinx.environment.collectors import EnvironmentCollector

from .model import ExampleRequest
from .nodes import evaldemo_example

if TYPE_CHECKING:
    from docutils import nodes
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

#: What an HTML id may not hold (docutils' own ids are lowercase letters, digits, hyphens).
_NOT_ID = re.compile(r"[^a-z0-9]+")

#: ``{docname: [ExampleRecord, ...]}`` in page order
ATTRIBUTE = "evaldemo_examples"


@dataclass(frozen=True, slots=True)
class ExampleRecord:
    """One example on one page, as the directive read it.

    ``request`` and its ``key`` (computed once, by the directive) decide the result;
    the rest says where the example sits and how its outcome is judged. An example
    whose options were wrong has no request, and ``problem`` says what to fix.
    """

    docname: str
    lineno: int  # the directive's first line
    code_line: int = 0  # the source line of the code's first line
    request: ExampleRequest | None = None
    key: str | None = None
    raises: str | None = None
    expect: tuple[str, ...] = ()
    hide_output: bool = False
    caption: str = ""
    problem: str | None = None
    name: str = ""  # the ``:name:`` as written ("" without one)
    #: where the directive stands when that is not its page's own file (a docstring that
    #: autodoc brought in: ``/abs/src/m.py:docstring of m.Net``), and what to add to a
    #: line of the page's numbering to get that source's line
    source: str = ""
    shift: int = 0

    def elsewhere(self, line: int | None = None) -> str:
        """``line`` (the directive's, by default) as Sphinx locates a docstring problem, or
        ``""`` when the example stands in its page's own file."""
        if not self.source:
            return ""
        return f"{self.source}:{(self.lineno if line is None else line) + self.shift}"

    @property
    def runnable(self) -> bool:
        return self.request is not None and self.key is not None

    @property
    def anchor(self) -> str:
        """A stable id for the example (``evaldemo-<page>-<line>``).

        The page is part of it so that ids stay unique where several pages share one
        HTML file (singlehtml).
        """
        page = _NOT_ID.sub("-", self.docname.lower()).strip("-")
        return f"evaldemo-{page}-{self.lineno}"


def examples(env: BuildEnvironment) -> dict[str, list[ExampleRecord]]:
    if not hasattr(env, ATTRIBUTE):
        setattr(env, ATTRIBUTE, {})
    found: dict[str, list[ExampleRecord]] = getattr(env, ATTRIBUTE)
    return found


def keep(env: BuildEnvironment, record: ExampleRecord) -> dict[str, Any]:
    """Add ``record`` to its page's records; the plain data its node carries to find it."""
    found = examples(env).setdefault(record.docname, [])
    found.append(record)
    return {"page": record.docname, "index": len(found) - 1}


def record_of(env: BuildEnvironment, node: nodes.Node) -> ExampleRecord | None:
    """The record an example's node names (``None`` for any other node)."""
    ref = node.get("evaldemo") if isinstance(node, evaldemo_example) else None
    if not isinstance(ref, dict):
        return None
    found = examples(env).get(str(ref.get("page")), [])
    index = ref.get("index")
    return found[index] if isinstance(index, int) and 0 <= index < len(found) else None


class ExampleCollector(EnvironmentCollector):
    """Owns ``env.evaldemo_examples``: a page's records go when it is read again, and
    parallel readers' records are merged (the directive adds them, :func:`keep`)."""

    def clear_doc(self, app: Sphinx, env: BuildEnvironment, docname: str) -> None:
        examples(env).pop(docname, None)

    def merge_other(
        self, app: Sphinx, env: BuildEnvironment, docnames: Set[str], other: BuildEnvironment
    ) -> None:
        theirs = examples(other)
        ours = examples(env)
        for docname in docnames:
            if docname in theirs:
                ours[docname] = theirs[docname]

    def process_doc(self, app: Sphinx, doctree: nodes.document) -> None:
        pass  # the directive keeps each record as it reads it
