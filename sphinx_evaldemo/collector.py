"""The one owner of ``env.evaldemo_examples``: each page's examples, merged under ``-j``."""

from __future__ import annotations

from collections.abc import Set
from typing import TYPE_CHECKING, Any

from sphinx.environment.collectors import EnvironmentCollector

from .nodes import evaldemo_example

if TYPE_CHECKING:
    from docutils import nodes
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

#: ``{docname: [{"request": ..., "lineno": ..., "code_line": ..., "raises": ..., "expect": ...}]}``;
#: an example whose options were wrong is ``{"problem": message, "lineno": ...}``
ATTRIBUTE = "evaldemo_examples"


def examples(env: BuildEnvironment) -> dict[str, list[dict[str, Any]]]:
    if not hasattr(env, ATTRIBUTE):
        setattr(env, ATTRIBUTE, {})
    found: dict[str, list[dict[str, Any]]] = getattr(env, ATTRIBUTE)
    return found


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
            {
                "request": node["request"],
                "lineno": node.line or 0,
                "code_line": node["code_line"],
                "raises": node["raises"],
                "expect": node["expect"],
            }
            if "request" in node
            else {"problem": node["problem"], "lineno": node.line or 0}
            for node in doctree.findall(evaldemo_example)
        ]
        if records:
            examples(app.env)[app.env.docname] = records
