"""An article's checked header: the data the articles feature keeps and stores."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal

#: How a thumbnail is given in the front matter.
ThumbnailKind = Literal["path", "url", "index"]


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """The front matter's ``thumbnail``: a file, a URL, or the n-th image of the page."""

    kind: ThumbnailKind
    value: str | int


@dataclass(frozen=True, slots=True)
class ArticleMeta:
    """An article's Knowledge-Repo header, with every value checked and typed.

    A value that was invalid is absent (None or empty), never half-read. ``extra`` holds
    the keys this extension does not know (a team's own keys, ABlog's...).
    """

    title: str | None = None
    subtitle: str | None = None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    created_at: date | None = None  # a datetime is a date too; its time zone is kept
    updated_at: date | None = None
    tldr: str | None = None
    thumbnail: Thumbnail | None = None
    #: Knowledge-Repo keys that are not shown: a private post is left out of every listing
    private: bool = False
    allowed_groups: tuple[str, ...] = ()
    path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["authors"] = list(self.authors)
        data["tags"] = list(self.tags)
        data["allowed_groups"] = list(self.allowed_groups)
        for key in ("created_at", "updated_at"):
            value = getattr(self, key)
            data[key] = None if value is None else value.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArticleMeta:
        def when(text: str | None) -> date | None:
            if text is None:
                return None
            return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)

        thumbnail = data.get("thumbnail")
        return cls(
            title=data.get("title"),
            subtitle=data.get("subtitle"),
            authors=tuple(data.get("authors", ())),
            tags=tuple(data.get("tags", ())),
            created_at=when(data.get("created_at")),
            updated_at=when(data.get("updated_at")),
            tldr=data.get("tldr"),
            thumbnail=None if thumbnail is None else Thumbnail(**thumbnail),
            private=bool(data.get("private", False)),
            allowed_groups=tuple(data.get("allowed_groups", ())),
            path=data.get("path"),
            extra=dict(data.get("extra", {})),
        )
