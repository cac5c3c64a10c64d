"""The ``evaldemo`` directive: options and code -> a recorded request (it runs nothing)."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from ..config import settings
from . import options
from .cache import fingerprint
from .model import ExampleRequest
from .nodes import evaldemo_code, evaldemo_example
from .records import ExampleRecord, keep
from .render import input_nodes, problem_nodes

logger = logging.getLogger(__name__)


class EvalDemoDirective(SphinxDirective):
    has_content = True
    #: none declared: MyST, MyST-NB and docutils then leave the option lines in the content,
    #: where :meth:`_read_options` checks names, repeats and values the same way for all
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {}

    def run(self) -> list[nodes.Node]:
        node = evaldemo_example(classes=["evaldemo"])
        self.set_source_info(node)
        try:
            raw = self._read_options()
        except options.OptionError as error:
            raw = None
            problem = str(error)
        code = "\n".join(self.content)
        node["code_line"] = self._code_line()
        if raw is None:
            return self._problem(node, code, problem)
        try:
            opts = options.parse(raw)
        except options.OptionError as error:
            return self._problem(node, code, str(error))
        if not code.strip():
            return self._problem(node, code, "the example has no code; write it below the options")

        try:
            depends = self._depends(opts.depends)
        except options.OptionError as error:
            return self._problem(node, code, str(error))
        config = settings(self.config)
        request = ExampleRequest(
            code=code,
            model=opts.model,
            input=opts.input,
            modes=opts.modes,
            repeat=opts.repeat,
            no_grad=opts.no_grad,
            seed=config.seed if opts.seed is None else opts.seed,
            timeout=float(config.timeout if opts.timeout is None else opts.timeout),
            max_output=config.max_output,
            memory_limit=config.memory_limit,
            depends=depends,
            device=opts.device,
        )
        caption_text = ""
        if opts.caption:
            text, messages = self.state.inline_text(opts.caption, self.lineno)
            caption = nodes.paragraph(opts.caption, "", *text, classes=["evaldemo-caption"])
            caption_text = node["caption"] = caption.astext()  # the title {ref} and {numref} show
            node += caption
            node += messages
        record = ExampleRecord(
            docname=self.env.docname,
            lineno=self.lineno,
            code_line=node["code_line"],
            request=request,
            key=request.key(fingerprint()),
            raises=opts.raises,
            expect=opts.expect,
            hide_output=opts.hide_output,
            caption=caption_text,
            name=opts.name or "",
            **self._elsewhere(),
        )
        node["evaldemo"] = keep(self.env, record)
        node["details"] = opts.details  # what the page shows (render.py); None: evaldemo_details
        self.env.events.emit("evaldemo-record", record)
        if not opts.hide_code:
            node += self._code(code)
            node += input_nodes(request)
        if opts.name:
            self.options["name"] = opts.name
            self.add_name(node)
            # {ref} needs a title: the caption, else the name itself
            node["caption"] = caption_text or opts.name
        node["ids"].append(record.anchor)  # where the report's rows link to (after a :name:)
        return [node]

    def _elsewhere(self) -> dict[str, Any]:
        """Where the directive stands, when that is not its page's own file (a docstring
        autodoc brought in): the source as docutils names it, and the lines' shift."""
        source, line = self.state_machine.get_source_and_line(self.lineno)
        if not source or line is None or source == str(self.env.doc2path(self.env.docname)):
            return {}
        return {"source": str(source), "shift": int(line) - self.lineno}

    def _read_options(self) -> dict[str, str | None]:
        """Take the option lines off the content (see :func:`options.read_block`); the
        content and its offset then hold the code alone, as a parser would have left them."""
        myst = type(self.state).__module__.startswith("myst_parser")
        block = options.read_block(list(self.content), continuation=not myst)
        start = self._code_line()
        self.content = self.content[block.body:]
        self.content_offset += block.body
        return options.checked_names(block, start)

    def _depends(self, paths: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        """Hash each ``:depends:`` file, and have Sphinx re-read the page when one changes.

        Only regular files: reading a device or a pipe may never end.
        """
        found = []
        for path in paths:
            relative, absolute = self.env.relfn2path(path, self.env.docname)
            try:
                if not stat.S_ISREG(Path(absolute).stat().st_mode):
                    raise options.OptionError(
                        "depends", f"{path!r} is not a regular file (a folder, a device such as "
                        "/dev/zero, or a pipe cannot be hashed: some never end); list the files "
                        "the example reads",
                    )
                digest = hashlib.sha256(Path(absolute).read_bytes()).hexdigest()
            except OSError:
                raise options.OptionError(
                    "depends", f"cannot read {path!r} (looked for {relative!r} in the source "
                    "folder; paths are relative to the page, or to the source folder when they start with /)",
                ) from None
            self.env.note_dependency(absolute)
            found.append((relative, digest))
        return tuple(found)

    def _problem(self, node: evaldemo_example, code: str, message: str) -> list[nodes.Node]:
        """Warn once, and show the problem on the page in place of the output."""
        logger.warning(
            "%s", message, location=(self.env.docname, self.lineno),
            type="evaldemo", subtype="option",
        )
        record = ExampleRecord(
            docname=self.env.docname, lineno=self.lineno, code_line=node["code_line"],
            problem=message,
        )
        node["evaldemo"] = keep(self.env, record)
        node["ids"].append(record.anchor)
        if code.strip():
            node += self._code(code)
        node += problem_nodes(message)
        return [node]

    def _code(self, code: str) -> nodes.literal_block:
        block = evaldemo_code(code, code, classes=["evaldemo-code"])
        block["language"] = "python"
        self.set_source_info(block)
        return block

    def _code_line(self) -> int:
        """The source line holding the code's first line (MyST counts from the fence)."""
        if type(self.state).__module__.startswith("myst_parser"):
            return self.lineno + self.content_offset + 1
        return self.content_offset + 1
