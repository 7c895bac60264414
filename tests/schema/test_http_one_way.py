"""One way for every route: an X-Request-Id on every response, one error → status table, and a
subscription sent by plain HTTP answered as a caller's mistake, never as an internal error."""

from __future__ import annotations

import re

import httpx
import pytest
from authlib.oauth2.rfc6749 import errors as oauth_errors

from nrhub.auth.body_limit import BodyTooLarge
from nrhub.auth.http_status import STATUS_BY_CODE, status_for
from nrhub.auth.resource import Unauthorized
from nrhub.resolvers.errors import ERROR_CODES, HubError

FORM = {"content": b"grant_type=client_credentials", "headers": {"content-type": "application/x-www-form-urlencoded"}}
# Every route, answering whatever it answers (a refusal is still a response that must carry the id).
ROUTES: list[tuple[str, str, dict]] = [
    ("GET", "/healthz", {}),
    ("GET", "/readyz", {}),
    ("POST", "/graphql", {"json": {"query": "{ __typename }"}}),
    ("GET", "/graphql?query=mutation%20%7B%20x%20%7D", {}),  # 405
    ("POST", "/graphql", {"content": b"{}", "headers": {"content-type": "text/plain"}}),  # 415
    ("GET", "/oauth/authorize?client_id=nobody", {}),
    ("POST", "/oauth/authorize", FORM),
    ("POST", "/oauth/token", FORM),
    ("POST", "/oauth/revoke", FORM),
    ("POST", "/oauth/introspect", FORM),
    ("GET", "/.well-known/oauth-authorization-server", {}),
    ("GET", "/.well-known/jwks.json", {}),
    ("PUT", "/reports/1/values", {"content": b"a,b\n", "headers": {"content-type": "text/csv"}}),
    ("GET", "/no-such-route", {}),
]


async def call(hub_url: str, method: str, path: str, options: dict, request_id: str | None) -> httpx.Response:
    headers = {**options.get("headers", {}), **({"x-request-id": request_id} if request_id is not None else {})}
    async with httpx.AsyncClient() as http:
        return await http.request(method, f"{hub_url}{path}", **{**options, "headers": headers})


@pytest.mark.parametrize(("method", "path", "options"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_every_route_answers_with_a_request_id(hub_url: str, method: str, path: str, options: dict) -> None:
    kept = await call(hub_url, method, path, options, "client-42.retry:1")
    assert kept.status_code < 500, kept.text
    assert kept.headers.get_list("x-request-id") == ["client-42.retry:1"]
    fresh = {
        (await call(hub_url, method, path, options, supplied)).headers["x-request-id"] for supplied in (None, "a b")
    }
    assert len(fresh) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in fresh)


SUBSCRIPTION = "subscription($p: Period) { submissionEvents(period: $p) { resync } }"


@pytest.mark.parametrize("variables", [{}, {"p": "2026-M10"}], ids=["no variables", "a good variable"])
async def test_a_subscription_over_http_is_the_callers_mistake(hub_url: str, variables: dict) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{hub_url}/graphql", json={"query": SUBSCRIPTION, "variables": variables})
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"} and "WebSocket" in error["message"]
    assert "data" not in response.json()


QUERY = 'query($p: Period!) { timeliness(regime: "BC_KTXH_THANG", period: $p) { __typename } }'


@pytest.mark.parametrize("garbage", ["garbage", 7, {"year": 2026}, "2026-Q5"])
async def test_a_malformed_variable_is_bad_user_input_in_a_subscription_as_in_a_query(hub_url: str, garbage) -> None:
    async with httpx.AsyncClient() as http:
        for document in (QUERY, SUBSCRIPTION):
            response = await http.post(f"{hub_url}/graphql", json={"query": document, "variables": {"p": garbage}})
            assert response.status_code == 400, (document, response.text)
            assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_USER_INPUT"], response.text


def test_one_table_gives_every_error_its_status() -> None:
    # Every code the hub reports has a status, as every endpoint answers it.
    assert ERROR_CODES <= STATUS_BY_CODE.keys()
    assert [status_for(cls("x")) for cls in (HubError, *HubError.__subclasses__())] == [
        STATUS_BY_CODE[cls.code] for cls in (HubError, *HubError.__subclasses__())
    ]
    assert status_for(Unauthorized("expired")) == 401
    assert status_for(BodyTooLarge(10)) == 413
    # RFC 6749 section 5.2: invalid_client is 401 however it was detected; the rest 400.
    assert status_for(oauth_errors.InvalidClientError()) == 401
    assert status_for(oauth_errors.InvalidGrantError()) == 400
    assert status_for(ValueError("unexpected")) == 500
