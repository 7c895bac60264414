"""Who may share a subscription's execution: ``sharing_key`` (hub/web/event_stream.py).

Subscribers with equal keys receive the result of one execution, so every fact about the caller
that a resolver consults must be in the key; a key that left one out would send one caller's
response to another.
"""

from __future__ import annotations

import dataclasses
from datetime import date

from nrhub.auth.principal import Grants, Principal
from nrhub.resolvers.loaders import Loaders
from nrhub.resolvers.scope import Scope
from nrhub.schema.context import Context
from nrhub.web.event_stream import sharing_key

QUERY = "subscription { submissionEvents { submissionId } }"
TODAY = date(2026, 11, 27)
OFFICE = Principal(
    grants=Grants(indicators=frozenset({"GDP", "CPI"})),
    scopes=frozenset({"audit:read"}),
    agency_code="VPCP",
    client_id="office",
)
EVERYWHERE = Scope(("CPI", "GDP"), None, frozenset({"CPI", "GDP"}))


def context(principal: Principal = OFFICE, scope: Scope = EVERYWHERE, today: date = TODAY) -> Context:
    loaders = Loaders(None, scope, today)  # type: ignore[arg-type]  # never used: no request runs
    return Context(
        db=None,  # type: ignore[arg-type]
        principal=principal,
        scope=scope,
        loaders=loaders,
        max_page_size=100,
        today=today,
        request_id="r",
    )


def key(ctx: Context, query: str = QUERY, variables: dict | None = None, operation: str | None = None) -> object:
    return sharing_key(query, operation, variables, ctx)


def test_one_operation_and_one_caller_share_a_key_whatever_the_variables_order_or_request() -> None:
    first, second = context(), dataclasses.replace(context(), request_id="another request")
    assert key(first, variables={"a": 1, "b": [2]}) == key(second, variables={"b": [2], "a": 1})
    assert hash(key(first)) == hash(key(second))


def test_everything_a_resolver_consults_about_the_caller_separates_keys() -> None:
    base = key(context())
    others = {
        "query": key(context(), query=QUERY + " "),
        "operation name": key(context(), operation="Named"),
        "variables": key(context(), variables={"regime": "BC_KTXH_THANG"}),
        "indicator grants": key(context(dataclasses.replace(OFFICE, grants=Grants(frozenset({"GDP"}))))),
        "region grants": key(
            context(dataclasses.replace(OFFICE, grants=Grants(OFFICE.grants.indicators, frozenset({"79"}))))
        ),
        "scopes": key(context(dataclasses.replace(OFFICE, scopes=frozenset({"audit:read", "data:read"})))),
        "agency": key(context(dataclasses.replace(OFFICE, agency_code="BTC"))),
        "user": key(context(dataclasses.replace(OFFICE, user="someone@example.gov.vn"))),
        "the session's day": key(context(today=date(2026, 11, 28))),
        "readable units": key(
            context(scope=Scope(("CPI", "GDP"), (1, 2), frozenset({"CPI", "GDP"}), frozenset({1, 2})))
        ),
    }
    shared = [name for name, other in others.items() if other == base]
    assert not shared, f"a caller differing only in {shared} would get another caller's response"


def test_every_unit_and_no_unit_are_different_keys() -> None:
    nowhere = Scope(("CPI", "GDP"), (), frozenset({"CPI", "GDP"}))
    assert key(context(scope=EVERYWHERE)) != key(context(scope=nowhere))
