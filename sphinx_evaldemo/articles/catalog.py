"""The one owner of the articles' data on ``env``: each page's header, merged under ``-j``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sphinx.environment.collectors import EnvironmentCollector

from .meta import ArticleMeta

if TYPE_CHECKING:
    from collections.abc import Set

    from docutils import nodes
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

#: ``{docname: ArticleRecord}``
ARTICLES = "evaldemo_articles"
#: docnames of the pages holding an ``{evaldemo-articles}`` listing
LISTINGS = "evaldemo_listings"
#: a digest of all records, to tell when listings must be written again
DIGEST = "evaldemo_articles_digest"

#: keys of ``env.current_document`` through which a page's reading reaches the collector
RECORD_KEY = "evaldemo_article_record"
LISTING_KEY = "evaldemo_has_listing"


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """What listings, tag pages and meta tags need of one article page."""

    meta: ArticleMeta
    #: the title for listings and og:title: the front matter's, else the page's
    title: str
    #: the tldr as plain text, cut near 300 characters: meta description, feeds
    summary: str
    #: the thumbnail as a file (relative to the source folder), or as a URL
    image: str | None = None
    image_url: str | None = None
    #: the tldr's prose as block nodes, for listings (only links that work on any page)
    tldr: tuple[nodes.Node, ...] = ()

    def digest_data(self) -> dict[str, object]:
        # not ``extra``: listings do not show it, and YAML aliases can make it huge
        return {"meta": replace(self.meta, extra={}).to_dict(), "title": self.title,
                "summary": self.summary, "image": self.image, "image_url": self.image_url}


def page_data(env: BuildEnvironment) -> Any:
    """Scratch space for the page being read: ``env.current_document`` (Sphinx 8.2 and
    later; ``env.temp_data`` before), emptied by Sphinx after each page."""
    if hasattr(env, "current_document"):
        return env.current_document
    return env.temp_data  # pragma: no cover  # Sphinx before 8.2


def articles(env: BuildEnvironment) -> dict[str, ArticleRecord]:
    if not hasattr(env, ARTICLES):
        setattr(env, ARTICLES, {})
    found: dict[str, ArticleRecord] = getattr(env, ARTICLES)
    return found


def public(env: BuildEnvironment) -> dict[str, ArticleRecord]:
    """The articles that listings, tag and author pages and feeds show: not private ones."""
    return {name: record for name, record in articles(env).items() if not record.meta.private}


def listings(env: BuildEnvironment) -> set[str]:
    if not hasattr(env, LISTINGS):
        setattr(env, LISTINGS, set())
    found: set[str] = getattr(env, LISTINGS)
    return found


def changed(env: BuildEnvironment) -> bool:
    """Whether any article changed, came or went since the last call (kept across builds)."""
    records = articles(env)
    payload = json.dumps({name: records[name].digest_data() for name in sorted(records)},
                         sort_keys=True, default=str)
    digest = hashlib.sha256(payload.encode()).hexdigest()
    before = getattr(env, DIGEST, None)
    setattr(env, DIGEST, digest)
    return before != digest


class ArticleCollector(EnvironmentCollector):
    def clear_doc(self, app: Sphinx, env: BuildEnvironment, docname: str) -> None:
        articles(env).pop(docname, None)
        listings(env).discard(docname)

    def merge_other(
        self, app: Sphinx, env: BuildEnvironment, docnames: Set[str], other: BuildEnvironment
    ) -> None:
        theirs = articles(other)
        ours = articles(env)
        for docname in docnames:
            if docname in theirs:
                ours[docname] = theirs[docname]
        listings(env).update(listings(other) & docnames)

    def process_doc(self, app: Sphinx, doctree: nodes.document) -> None:
        env = app.env
        record = page_data(env).get(RECORD_KEY)
        if record is not None:
            articles(env)[env.docname] = record
        if page_data(env).get(LISTING_KEY):
            listings(env).add(env.docname)
