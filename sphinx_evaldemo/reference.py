"""``{evaldemo-config}``: the configuration table, generated from :class:`EvalDemoConfig`."""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from .config import reference_rows
from .examples.report import table

_CODE = re.compile(r"``(.+?)``")


def _inline(text: str) -> nodes.paragraph:
    """Plain text with ``code`` spans, the only markup the help strings use."""
    para = nodes.paragraph()
    for index, part in enumerate(_CODE.split(text)):
        para += nodes.literal(part, part) if index % 2 else nodes.Text(part)
    return para


class ConfigTableDirective(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        rows = [
            [nodes.literal(name, name), nodes.literal(default, default), _inline(help_text)]
            for name, default, help_text in reference_rows()
        ]
        return [table(("name", "default", "meaning"), (24, 10, 60), rows)]
