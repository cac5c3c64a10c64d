"""``evaldemo_private = "exclude"``: private posts are not read, so they are not in the output.

The default (``"unlisted"``) builds a private post as a page, marked private and
``noindex``, out of the search index and of every listing, tag and author page and feed
(see :mod:`.header`, :mod:`.catalog`). ``"exclude"`` goes further: before Sphinx reads,
each Markdown page due to be read is checked for ``private: true``, and such a page is
dropped from the project for this build, as if it matched ``exclude_patterns``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sphinx.util import logging

from .. import config
from . import frontmatter
from .header import is_ablog_post, is_markdown

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

logger = logging.getLogger(__name__)


def is_private(app: Sphinx, docname: str) -> bool:
    """Whether the page's front matter says ``private: true`` (False when unreadable)."""
    try:
        text = Path(app.env.doc2path(docname)).read_text(encoding=app.config.source_encoding)
    except (OSError, UnicodeDecodeError):
        return False  # Sphinx reports it when it reads the page
    reading = frontmatter.read(text)
    return reading is not None and reading.meta.private and not is_ablog_post(app, docname, reading)


def on_before_read(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    settings = config.settings(app.config)  # checked once, when the configuration was read
    if settings.private != "exclude":
        return
    dropped = [doc for doc in docnames if is_markdown(app, doc) and is_private(app, doc)]
    for docname in dropped:
        docnames.remove(docname)
        env.found_docs.discard(docname)
        if docname in env.all_docs:  # it was public in the last build: forget it
            app.events.emit("env-purge-doc", env, docname)
            env.clear_doc(docname)
            del env.all_docs[docname]
    if dropped:
        logger.info("sphinx-evaldemo: %d private post%s left out (evaldemo_private = "
                    "'exclude'): %s", len(dropped), "s" * (len(dropped) != 1),
                    ", ".join(dropped))


def setup(app: Sphinx) -> None:
    # before anything else sees the list (the examples' runner starts work from it)
    app.connect("env-before-read-docs", on_before_read, priority=100)
