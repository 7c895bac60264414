"""Relay-style pagination: opaque cursors over a stable sort key, and the page-size cap."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from nrhub.resolvers.errors import BadUserInput

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class PageRequest:
    """``first`` rows after the row whose sort key is ``after`` (None: from the start)."""

    first: int
    after: tuple[Any, ...] | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool


def page_request(first: int | None, after: str | None, max_page_size: int) -> PageRequest:
    """Check ``first`` against the cap and decode ``after``; bad input is BAD_USER_INPUT."""
    size = DEFAULT_PAGE_SIZE if first is None else first
    if size < 0:
        raise BadUserInput("first must not be negative")
    if size > max_page_size:
        raise BadUserInput(f"first must be at most {max_page_size} (the page size cap)")
    return PageRequest(min(size, max_page_size), decode_cursor(after) if after else None)


def encode_cursor(key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, ...]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise BadUserInput("after is not a cursor this API returned") from None
    if not isinstance(key, list) or not key:
        raise BadUserInput("after is not a cursor this API returned")
    return tuple(key)


def make_page(rows: list[T], request: PageRequest, key_of: Any) -> Page[T]:
    """Rows were fetched with LIMIT first + 1; the extra row only says there is a next page."""
    items = rows[: request.first]
    return Page(
        items=items,
        cursors=[encode_cursor(key_of(item)) for item in items],
        has_next_page=len(rows) > request.first,
        has_previous_page=request.after is not None,
    )
