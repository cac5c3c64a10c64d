"""The typed record of each example on a page, and the one owner of them on ``env``."""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def record_of(node: nodes.Node) -> ExampleRecord | None:
    record = node.get("record") if isinstance(node, evaldemo_example) else None
    return record if isinstance(record, ExampleRecord) else None


class ExampleCollector(EnvironmentCollector):
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
        records = [
            record for node in doctree.findall(evaldemo_example)
            if (record := record_of(node)) is not None
        ]
        if records:
            examples(app.env)[app.env.docname] = records
