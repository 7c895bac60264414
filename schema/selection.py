"""Arguments shared by the root fields: paging, indicator codes, unit selections.

Each resolves what the caller asked for under its scope, before any data is fetched; codes the
caller may not read are reported at the field's path (FORBIDDEN or NOT_FOUND) without nulling it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import strawberry

from nrhub.resolvers import observations, units
from nrhub.resolvers.errors import Forbidden, HubError, NotFound
from nrhub.resolvers.pagination import PageRequest, page_request
from nrhub.schema.catalogue import Indicator, UnitLevel
from nrhub.schema.context import Info

First = Annotated[int | None, strawberry.argument(description="Page size (default 50, capped).")]
After = Annotated[str | None, strawberry.argument(description="Cursor from a previous page.")]


def page_of(info: Info, first: int | None, after: str | None) -> PageRequest:
    return page_request(first, after, info.context.max_page_size)


async def readable_codes(info: Info, codes: list[str]) -> list[str]:
    """The codes the caller may read; each other code is reported (FORBIDDEN or NOT_FOUND)."""
    scope = info.context.scope
    readable = [c for c in dict.fromkeys(codes) if scope.may_read(c)]
    denied = [c for c in dict.fromkeys(codes) if not scope.may_read(c)]
    if denied:
        existing = {
            r["code"]
            for r in await info.context.db.fetch("SELECT code FROM indicator WHERE code = ANY($1::text[])", denied)
        }
        for code in denied:
            error = (
                Forbidden(f"you may not read indicator {code}")
                if code in existing
                else NotFound(f"there is no indicator {code}")
            )
            info.context.report(list(info.path.as_list()), error)
    return readable


async def indicator_or_raise(info: Info, code: str) -> Indicator:
    row = await info.context.loaders.indicator_by_code.load(code)
    if row is not None:
        return Indicator.of(row)
    exists = await info.context.db.fetchval("SELECT 1 FROM indicator WHERE code = $1", code)
    raise (Forbidden(f"you may not read indicator {code}") if exists else NotFound(f"there is no indicator {code}"))


async def unit_ids_of(info: Info, units_: list[str] | None, parent: str | None, level: UnitLevel | None) -> list[int]:
    selection = observations.UnitSelection(units_, parent, level.value if level else None, info.context.today)
    return await observations.select_unit_ids(info.context.db, selection, info.context.scope)


async def units_of(info: Info, unit_ids: list[int]) -> list[units.Unit]:
    return [u for u in await info.context.loaders.unit_by_id.load_many(unit_ids) if u is not None]


def report_all(info: Info, problems: Sequence[HubError]) -> None:
    """Errors that leave the field's other values standing (a source that could not answer)."""
    for problem in problems:
        info.context.report(list(info.path.as_list()), problem)
