"""``me``: who the caller is and exactly what it may read, as the hub decided it."""

from __future__ import annotations

import strawberry

from nrhub.schema.catalogue import Agency
from nrhub.schema.context import Info


@strawberry.type(description="The caller: its agency, client, scopes, and the grants that follow from them.")
class Me:
    client_id: str | None
    user: str | None
    scopes: list[str]
    indicators: list[str] = strawberry.field(description="Codes of the indicators you may read.")
    regions: list[str] | None = strawberry.field(
        description="Unit codes whose subtrees limit your sub-national values; null means every region."
    )
    _agency_code: strawberry.Private[str | None]

    @strawberry.field
    async def agency(self, info: Info) -> Agency | None:
        if self._agency_code is None:
            return None
        row = await info.context.loaders.agency_by_code.load(self._agency_code)
        return Agency.of(row) if row else None


def me_of(info: Info) -> Me:
    principal = info.context.principal
    regions = principal.grants.regions
    return Me(
        client_id=principal.client_id,
        user=principal.user,
        scopes=sorted(principal.scopes),
        indicators=sorted(principal.grants.indicators),
        regions=sorted(regions) if regions is not None else None,
        _agency_code=principal.agency_code,
    )
