"""Global object ids (``node(id:)``) and the connection types shared by every list."""

from __future__ import annotations

import base64
import binascii
from typing import Generic, TypeVar

import strawberry

from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.pagination import Page

T = TypeVar("T")


@strawberry.interface(description="An object with a global id, fetchable with node(id:).")
class Node:
    id: strawberry.ID


def global_id(type_name: str, key: object) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode().rstrip("="))


def parse_global_id(value: str) -> tuple[str, str]:
    try:
        text = base64.urlsafe_b64decode((value + "=" * (-len(value) % 4)).encode("ascii")).decode()
    except (ValueError, binascii.Error, UnicodeError):
        raise BadUserInput("id is not an id this API returned") from None
    type_name, sep, key = text.partition(":")
    if not sep or not key:
        raise BadUserInput("id is not an id this API returned")
    return type_name, key


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[object], node_type: type) -> Connection[T]:
        # Each row maps to its GraphQL type once, here (STYLE: schema maps rows once).
        edges = [Edge(cursor=c, node=node_type.of(item)) for item, c in zip(page.items, page.cursors, strict=True)]
        return cls(
            edges=edges,  # type: ignore[arg-type]
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.cursors[0] if page.cursors else None,
                end_cursor=page.cursors[-1] if page.cursors else None,
            ),
        )
