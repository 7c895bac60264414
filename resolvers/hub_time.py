"""The hub's one clock convention: instants are shown in ISO 8601 with the Vietnam offset (+07:00).

Deadlines fall at the end of a Vietnamese day and the people reading them are in Vietnam, so every
instant the hub shows (GraphQL's DateTime, error messages, webhook payloads) is written in Vietnam
time with its offset: ``2026-11-17T23:59:59.999999+07:00``. It is the same instant as in UTC; any
ISO 8601 parser reads it. Instants given to the hub must carry an offset (any offset).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

VIETNAM = timezone(timedelta(hours=7))  # no daylight saving


def shown(instant: datetime) -> str:
    """An instant as the hub writes it: ISO 8601, Vietnam time, microseconds when it has them."""
    return instant.astimezone(VIETNAM).isoformat()


def given(text: str) -> datetime:
    """An instant written by a caller: ISO 8601 with an offset; ValueError otherwise."""
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise ValueError(f"{text!r} has no offset: write e.g. 2026-12-20T23:59:59+07:00")
    return instant
