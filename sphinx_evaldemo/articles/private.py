"""Private posts out of the navigation, and ``evaldemo_private = "exclude"``.

The default (``"unlisted"``) builds a private post as a page, marked private and
``noindex``, out of the search index and of every listing, tag and author page and feed
(see :mod:`.header`, :mod:`.catalog`), and out of the navigation: a toctree entry naming
it (one the author wrote, or one a ``:glob:`` found) is taken out of the toctree while the
page holding the toctree is read, so no page's sidebar, toctree or previous/next links
show it; the post is an orphan, so Sphinx does not warn that no toctree includes it. A
post that turns private (or public) makes the pages whose toctrees name it be read again.

``"exclude"`` goes further: before Sphinx reads, each Markdown page due to be read is
checked for ``private: true``, and such a page is dropped from the project for this
build, as if it matched ``exclude_patterns``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sphinx import addnodes
from sphinx.transforms import SphinxTransform
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


#: ``{private docname: pages whose toctrees named it}``, on ``env``, so the pages are read
#: again when the post turns public
HIDDEN = "evaldemo_private_hidden_from"


def hidden(env: BuildEnvironment) -> dict[str, set[str]]:
    found = getattr(env, HIDDEN, None)
    if not isinstance(found, dict):
        found = {}
        setattr(env, HIDDEN, found)
    return found


class PrivateEntries(SphinxTransform):
    """Take private posts out of the page's toctrees, before Sphinx records them (the
    navigation, and previous/next, are made from what is recorded)."""

    default_priority = 500

    def apply(self, **kwargs: object) -> None:
        docname = self.env.docname
        for toctree in self.document.findall(addnodes.toctree):
            included: list[str] = list(toctree.get("includefiles", ()))
            private = {doc for doc in included
                       if doc in self.env.found_docs and is_markdown(self.app, doc)
                       and is_private(self.app, doc)}
            if not private:
                continue
            toctree["includefiles"] = [d for d in included if d not in private]
            toctree["entries"] = [(title, ref) for title, ref in toctree["entries"]
                                  if ref not in private]
            for doc in private:
                hidden(self.env).setdefault(doc, set()).add(docname)


def on_outdated(app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str],
                removed: set[str]) -> list[str]:
    """The pages to read again because a post they name turned private or public."""
    again: set[str] = set()
    shown = hidden(env)
    for doc in changed:
        if doc in shown:  # it was private: its pages put it back if it is public now
            again |= shown.pop(doc)
        elif is_markdown(app, doc) and is_private(app, doc):
            again |= {page for page, includes in env.toctree_includes.items() if doc in includes}
    return sorted(again - changed - removed)


def on_purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    for pages in hidden(env).values():
        pages.discard(docname)


def on_merge(app: Sphinx, env: BuildEnvironment, docnames: set[str],
             other: BuildEnvironment) -> None:
    """What parallel readers (``-j``) noted, into the main process's environment."""
    for doc, pages in hidden(other).items():
        hidden(env).setdefault(doc, set()).update(pages)


def setup(app: Sphinx) -> None:
    app.add_transform(PrivateEntries)
    app.connect("env-merge-info", on_merge)
    app.connect("env-get-outdated", on_outdated)
    app.connect("env-purge-doc", on_purge)
    # before anything else sees the list (the examples' runner starts work from it)
    app.connect("env-before-read-docs", on_before_read, priority=100)
