"""A machine's token is the intersection of what its client was registered for and what it asked for:
asking for fewer scopes never lifts a region restriction (no region: scope means every region)."""

from __future__ import annotations

import pytest

from nrhub.auth.scopes import ScopeError, beyond, intersect
from tests.auth.conftest import reach, request_token
from tests.auth.test_tokens import segments


async def test_asking_for_less_keeps_the_region_restriction(real_hub: str, register) -> None:
    client = await register("data:read field:labour region:79", agency="UBND_79")
    for asked in ("data:read field:labour", None):
        response = await request_token(real_hub, client, asked)
        assert response.status_code == 200, response.text
        assert "region:79" in response.json()["scope"].split()
        assert "region:79" in segments(response.json()["access_token"])[1]["scope"].split()
        assert await reach(real_hub, response.json()["access_token"]) == (["79"], {"79"})


async def test_asking_for_fewer_of_the_registered_regions_narrows(real_hub: str, register) -> None:
    client = await register("data:read field:labour region:79 region:01")
    one = await request_token(real_hub, client, "data:read field:labour region:01")
    assert await reach(real_hub, one.json()["access_token"]) == (["01"], {"01"})
    refused = await request_token(real_hub, client, "data:read field:labour region:48")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    # A client registered for every region may narrow to one.
    everywhere = await register("data:read field:labour")
    narrowed = await request_token(real_hub, everywhere, "data:read field:labour region:79")
    assert await reach(real_hub, narrowed.json()["access_token"]) == (["79"], {"79"})
    all_of_them = await request_token(real_hub, everywhere)
    regions, provinces = await reach(real_hub, all_of_them.json()["access_token"])
    assert regions is None and len(provinces) == 34


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        # asked, then the grants; no region: scope in a set means every region
        ((["data:read"], ["data:read", "field:labour", "region:79"]), ["data:read", "region:79"]),
        ((["data:read", "region:01"], ["data:read", "region:01", "region:79"]), ["data:read", "region:01"]),
        ((["data:read", "region:01"], ["data:read"]), ["data:read", "region:01"]),
        (
            (["data:read", "field:labour"], ["data:read", "field:labour"], ["data:read", "region:79"]),
            ["data:read", "region:79"],
        ),
        (
            (["data:read", "indicator:GDP"], ["data:read", "indicator:GDP", "region:01"], ["data:read"]),
            ["data:read", "region:01"],
        ),
    ],
)
def test_intersect_keeps_every_restriction(sets: tuple[list[str], ...], expected: list[str]) -> None:
    assert intersect(*sets) == expected


def test_grants_without_a_common_region_intersect_to_nothing_rather_than_everything() -> None:
    with pytest.raises(ScopeError):
        intersect(["data:read", "region:79"], ["data:read", "region:01"])


def test_beyond_names_what_a_grant_does_not_allow() -> None:
    grant = ["data:read", "field:labour", "region:79"]
    assert beyond(["data:read", "region:79"], grant) == []
    assert beyond(["admin", "region:01", "field:growth"], grant) == ["admin", "region:01", "field:growth"]
    assert beyond(["region:01"], ["data:read"]) == []  # a narrower region than "every region"
    assert beyond(["region:nowhere"], ["data:read"]) == ["region:nowhere"]
