"""Atom feeds of the public articles: one of all of them, one per tag (made with feedgen).

feedgen is an optional extra (``pip install 'sphinx-evaldemo[feeds]'``), imported only when
an HTML build has articles. Feed readers need absolute links, so ``evaldemo_feeds = "auto"``
(the default) writes feeds only when feedgen is installed and ``html_baseurl`` is set, and
says nothing otherwise: installing ABlog (which brings feedgen) must not make an unchanged
project fail ``-W``. ``True`` asks for them: what stops them is a warning, and without
``html_baseurl`` they are written with links relative to the feed file, and a warning says
so. ``False`` writes none.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from sphinx.util import logging
from sphinx.util.osutil import relative_uri

from ..config import EvalDemoConfig
from . import dates, names
from .catalog import ArticleRecord, public
from .listing import newest_first
from .pages import builds_pages

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

logger = logging.getLogger(__name__)

#: the feed of all articles, and the folder of the per-tag feeds, in the output
ALL = "feeds/atom.xml"
TAGS = "feeds/tags"
#: this build's feeds, on ``env``
FEEDS = "evaldemo_feeds_plan"


@dataclass
class FeedPlan:
    """``{output path: (title, docnames newest first)}`` of the feeds this build writes."""

    feeds: dict[str, tuple[str, list[str]]] = field(default_factory=dict)


def available() -> bool:
    """Whether feedgen (the ``feeds`` extra) can be imported."""
    try:
        import feedgen.feed  # noqa: F401  # only to know that it is there
    except ImportError:
        return False
    return True


def plan_feeds(records: dict[str, ArticleRecord], project: str) -> FeedPlan:
    """Every feed the public ``records`` call for (pure); undated articles are left out."""
    dated = [(doc, rec) for doc, rec in newest_first(records) if rec.meta.created_at]
    plan = FeedPlan()
    if not dated:
        return plan
    plan.feeds[ALL] = (project, [doc for doc, _ in dated])
    for group in names.groups((doc, rec.meta.tags) for doc, rec in dated).values():
        plan.feeds[f"{TAGS}/{group.file}.xml"] = (f"{project}: {group.label}",
                                                  list(group.docnames))
    return plan


def plan_of(env: BuildEnvironment) -> FeedPlan:
    found = getattr(env, FEEDS, None)
    return found if isinstance(found, FeedPlan) else FeedPlan()


def on_env_updated(app: Sphinx, env: BuildEnvironment) -> None:
    """Decide this build's feeds (before any page links one) and say what is missing."""
    setattr(env, FEEDS, FeedPlan())
    wanted = EvalDemoConfig.from_sphinx(app.config)[0].feeds  # problems: see examples.wiring
    if wanted is False or not builds_pages(app) or not public(env):
        return
    if wanted == "auto" and not (available() and app.config.html_baseurl):
        return
    if not available():
        logger.warning("evaldemo_feeds = True, but feedgen is not installed, so no Atom feeds "
                       "are written: pip install 'sphinx-evaldemo[feeds]', or set "
                       'evaldemo_feeds = "auto"', type="evaldemo", subtype="feeds")
        return
    plan = plan_feeds(public(env), str(app.config.project))
    for path in list(plan.feeds):
        target = Path(app.outdir, path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("ab"):
                pass
        except OSError as error:
            logger.warning("the feed %r cannot be written: %s; nothing links to it", path,
                           error.strerror or error, type="evaldemo", subtype="feeds")
            del plan.feeds[path]
    if plan.feeds and not app.config.html_baseurl:
        logger.warning("evaldemo_feeds = True, but html_baseurl is not set: the Atom feeds' "
                       "links are relative to the feed files, and feed readers need absolute "
                       "ones; set html_baseurl in conf.py to the address the site is "
                       "published at", type="evaldemo", subtype="feeds")
    setattr(env, FEEDS, plan)


def _url(app: Sphinx, feed_path: str, target: str) -> str:
    """``target`` (a path in the output) as the feed links it."""
    base = app.config.html_baseurl
    if base:
        return urljoin(str(base).rstrip("/") + "/", target)
    if target == feed_path:
        return Path(feed_path).name
    return relative_uri(feed_path, target)


def _entry_id(app: Sphinx, docname: str) -> str:
    if app.config.html_baseurl:
        return _url(app, ALL, app.builder.get_target_uri(docname))
    # stable across builds, and an absolute IRI as Atom requires
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL,
                                        f"sphinx-evaldemo:{app.config.project}:{docname}"))


def _when(value: Any) -> datetime:
    return dates.instant(value)


def write(app: Sphinx, path: str, title: str, docnames: list[str]) -> None:
    """One feed, as Atom, entries newest first."""
    from feedgen.feed import FeedGenerator

    records = public(app.env)
    feed = FeedGenerator()
    feed.id(_url(app, path, path) if app.config.html_baseurl else _entry_id(app, path))
    feed.title(title)
    feed.link(href=_url(app, path, app.builder.get_target_uri(app.config.root_doc)),
              rel="alternate")
    feed.link(href=_url(app, path, path), rel="self")
    newest = None
    for docname in docnames:
        record = records[docname]
        meta = record.meta
        assert meta.created_at is not None
        updated = _when(meta.updated_at or meta.created_at)
        newest = updated if newest is None or updated > newest else newest
        entry = feed.add_entry(order="append")
        entry.id(_entry_id(app, docname))
        entry.title(record.title)
        entry.link(href=_url(app, path, app.builder.get_target_uri(docname)), rel="alternate")
        entry.published(_when(meta.created_at))
        entry.updated(updated)
        if record.summary:
            entry.summary(record.summary)
        for author in meta.authors:
            entry.author(name=author)
        for tag in meta.tags:
            entry.category(term=tag)
    if newest is not None:
        feed.updated(newest)
    try:
        feed.atom_file(str(Path(app.outdir, path)), pretty=True)
    except OSError as error:
        logger.warning("the feed %r could not be written: %s", path, error.strerror or error,
                       type="evaldemo", subtype="feeds")


def on_collect_pages(app: Sphinx) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Write the feeds (files of their own: nothing for the builder to render)."""
    for path, (title, docnames) in plan_of(app.env).feeds.items():
        write(app, path, title, docnames)
    yield from ()


def head_links(app: Sphinx, pathto: Any) -> str:
    """``<link rel="alternate">`` to the feed of all articles, for every page's head."""
    if ALL not in plan_of(app.env).feeds:
        return ""
    href = pathto(ALL, resource=True)
    title = html.escape(str(app.config.project))
    return (f'\n    <link rel="alternate" type="application/atom+xml" title="{title}" '
            f'href="{href}" />')


def setup(app: Sphinx) -> None:
    app.connect("env-updated", on_env_updated)
    app.connect("html-collect-pages", on_collect_pages)
