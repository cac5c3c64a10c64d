"""Dates and names as articles show them: parsing front-matter dates, bylines, date lines."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_WHEN_RE = re.compile(
    r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:(?:[Tt]|[ \t]+)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"[ \t]*(?:(?P<z>[Zz])|(?P<sign>[-+])(?P<oh>\d{1,2})(?::?(?P<om>\d{2}))?)?)?"
)


def parse_when(text: str) -> date:
    """A YAML-style date or datetime (time zone kept); ValueError says what is wrong."""
    match = _WHEN_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError("not in the form YYYY-MM-DD or YYYY-MM-DD HH:MM")
    day = date(int(match["y"]), int(match["m"]), int(match["d"]))
    if match["H"] is None:
        return day
    tz: timezone | None = None
    if match["z"]:
        tz = timezone.utc
    elif match["sign"]:
        offset = timedelta(hours=int(match["oh"]), minutes=int(match["om"] or 0))
        if offset >= timedelta(hours=24):
            raise ValueError(f"time zone offset {match['sign']}{match['oh']} is out of range")
        tz = timezone(-offset if match["sign"] == "-" else offset)
    micro = int((match["f"] or "0")[:6].ljust(6, "0"))
    return datetime(day.year, day.month, day.day, int(match["H"]), int(match["M"]),
                    int(match["S"] or 0), micro, tzinfo=tz)


def day(value: date) -> date:
    """The calendar day of a date or datetime."""
    return value.date() if isinstance(value, datetime) else value


def instant(value: date) -> datetime:
    """A point in time to sort by: a date is its midnight, a naive time is taken as UTC."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def format_date(value: date) -> str:
    """``28 Nov 2026``: the same on every page and in every locale."""
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def dates_shown(created: date | None, updated: date | None) -> list[tuple[str, date]]:
    """``[("created", ...), ("updated", ...)]``; an update on the creation day is not shown."""
    shown: list[tuple[str, date]] = []
    if created is not None:
        shown.append(("created", created))
    if updated is not None and (created is None or day(updated) != day(created)):
        shown.append(("updated", updated))
    return shown


def dates_line(created: date | None, updated: date | None) -> str:
    """``created 28 Nov 2026 · updated 29 Nov 2026``: the same format on every page."""
    return " · ".join(f"{label} {format_date(when)}" for label, when in dates_shown(created, updated))


def byline(authors: tuple[str, ...]) -> str:
    """``Ada``, ``Ada and Alan``, ``Ada, Alan and Grace``."""
    if len(authors) < 2:
        return "".join(authors)
    return ", ".join(authors[:-1]) + " and " + authors[-1]




def reading_time(minutes: object) -> str | None:
    """``4 min read`` from MyST-Parser's word count (``None`` when there is none)."""
    if not isinstance(minutes, int | float) or isinstance(minutes, bool):
        return None
    return f"{max(1, round(minutes))} min read"
