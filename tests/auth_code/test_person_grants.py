"""A person's token carries the intersection of the application's and the person's grants, restrictions
kept however little is asked for; refreshing follows their current grants; and refresh rotation is atomic,
so a concurrent reuse revokes the whole family, the concurrent winner's tokens included."""

from __future__ import annotations

import asyncio

from tests.auth.conftest import ask_reach, reach
from tests.auth_code.conftest import LABOUR, refresh, register_person, signed_in


async def test_a_restricted_application_keeps_its_region_whatever_is_asked(oauth_hub: str, pool) -> None:
    people = await register_person(pool, client_scopes=f"{LABOUR} region:79", person_scopes=LABOUR)
    for asked in (LABOUR, ""):  # a subset without the region, or nothing (the whole intersection)
        body = await signed_in(oauth_hub, people, scope=asked)
        assert "region:79" in body["scope"].split(), (asked, body["scope"])
        assert await reach(oauth_hub, body["access_token"]) == (["79"], {"79"})


async def test_a_restricted_person_keeps_their_region_whatever_is_asked(oauth_hub: str, pool) -> None:
    people = await register_person(pool, client_scopes=LABOUR, person_scopes=f"{LABOUR} region:79")
    for asked in (LABOUR, ""):
        body = await signed_in(oauth_hub, people, scope=asked)
        assert body["scope"].split() == ["data:read", "field:labour", "region:79"], (asked, body["scope"])
        assert await reach(oauth_hub, body["access_token"]) == (["79"], {"79"})
    # Refreshing with a narrower scope that omits the region keeps it too.
    renewed = await refresh(oauth_hub, people, body["refresh_token"], scope=LABOUR)
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["scope"].split() == ["data:read", "field:labour", "region:79"]
    assert await reach(oauth_hub, renewed.json()["access_token"]) == (["79"], {"79"})


async def test_asking_for_one_of_the_granted_regions_narrows(oauth_hub: str, pool) -> None:
    people = await register_person(pool, client_scopes=LABOUR, person_scopes=f"{LABOUR} region:79 region:01")
    body = await signed_in(oauth_hub, people, scope=f"{LABOUR} region:01")
    assert await reach(oauth_hub, body["access_token"]) == (["01"], {"01"})
    both = await signed_in(oauth_hub, people, scope=LABOUR)
    assert await reach(oauth_hub, both["access_token"]) == (["01", "79"], {"01", "79"})


async def test_refresh_follows_the_persons_current_grant(oauth_hub: str, pool) -> None:
    people = await register_person(pool, client_scopes=f"{LABOUR} field:growth", person_scopes=f"{LABOUR} field:growth")
    body = await signed_in(oauth_hub, people, scope=f"{LABOUR} field:growth")
    assert (await reach(oauth_hub, body["access_token"]))[0] is None
    # An operator narrows the person's grant: the next refresh carries only what is still granted.
    await pool.execute(
        "UPDATE hub_user SET scopes = '{data:read,field:labour,region:79}' WHERE username = $1", people["username"]
    )
    narrowed = await refresh(oauth_hub, people, body["refresh_token"])
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"].split() == ["data:read", "field:labour", "region:79"]
    assert await reach(oauth_hub, narrowed.json()["access_token"]) == (["79"], {"79"})
    # Disabled: refreshing is refused.
    await pool.execute("UPDATE hub_user SET disabled = true WHERE username = $1", people["username"])
    refused = await refresh(oauth_hub, people, narrowed.json()["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


async def test_refresh_follows_the_applications_current_grant(oauth_hub: str, pool) -> None:
    people = await register_person(pool, client_scopes=LABOUR, person_scopes=LABOUR)
    body = await signed_in(oauth_hub, people)
    await pool.execute(
        "UPDATE oauth_client SET scopes = '{data:read,field:labour,region:01}' WHERE client_id = $1",
        people["client_id"],
    )
    narrowed = await refresh(oauth_hub, people, body["refresh_token"])
    assert narrowed.status_code == 200, narrowed.text
    assert await reach(oauth_hub, narrowed.json()["access_token"]) == (["01"], {"01"})
    await pool.execute("UPDATE oauth_client SET disabled = true WHERE client_id = $1", people["client_id"])
    refused = await refresh(oauth_hub, people, narrowed.json()["refresh_token"])
    assert refused.status_code in (400, 401) and refused.json()["error"] in ("invalid_grant", "invalid_client")


async def test_concurrent_reuse_revokes_the_winners_tokens_too(oauth_hub: str, pool) -> None:
    people = await register_person(pool, client_scopes=LABOUR, person_scopes=LABOUR)
    for _ in range(5):  # the race is decided by timing: run it a few times
        body = await signed_in(oauth_hub, people)
        results = await asyncio.gather(*(refresh(oauth_hub, people, body["refresh_token"]) for _ in range(4)))
        assert sorted(r.status_code for r in results) == [200, 400, 400, 400]
        winner = next(r.json() for r in results if r.status_code == 200)
        # The losers' reuse revoked the family: the winner's new refresh token and access token are dead.
        assert (await refresh(oauth_hub, people, winner["refresh_token"])).json()["error"] == "invalid_grant"
        assert (await ask_reach(oauth_hub, winner["access_token"])).status_code == 401
        assert (await ask_reach(oauth_hub, body["access_token"])).status_code == 401
