"""Rates everywhere (issue 19, item 6): a rate not stored is computed from its components in table,
series and observationsChanged, as aggregate computes it, for callers who may read the rate and both
of its components or neither (docs/api.md, "Rates").

One report of Lam Dong (68) for 2026-M12 stores DOSSIERS_ONLINE and DOSSIERS_TOTAL, never ONLINE_PS
(DOSSIERS_ONLINE / DOSSIERS_TOTAL x 100): the demo stores the rate up to 2026-M10 only.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest

from tests.reports.test_lifecycle import REVIEW, SUBMIT, fill_monthly
from tests.reports.test_live import VN, connected, start

RATE, ONLINE, TOTAL = "ONLINE_PS", "DOSSIERS_ONLINE", "DOSSIERS_TOTAL"
UNIT, PERIOD = "68", "2026-M12"
SCOPES = {
    "both": f"data:read indicator:{RATE} indicator:{ONLINE} indicator:{TOTAL}",
    "rate_only": f"data:read indicator:{RATE}",
    "one_component": f"data:read indicator:{RATE} indicator:{TOTAL}",
    "components_only": f"data:read indicator:{ONLINE} indicator:{TOTAL}",
}
CHANGES = (
    "subscription($i: [String!]!, $u: [String!]) { observationsChanged(indicators: $i, units: $u) "
    "{ resync observations { indicator { code } unit { code } period disaggregation value status "
    "provenance { kind storedParts } } } }"
)
READS = """query($r: String!, $u: String!, $p: Period!) {
  aggregate(indicator: $r, unit: $u, period: $p) { value status provenance { kind storedParts } }
  atPeriod: table(indicators: [$r, "DOSSIERS_TOTAL"], units: [$u], period: $p) { columns { code } rows }
  latest: table(indicators: [$r], units: [$u]) { rows }
  series(indicator: $r, units: [$u], from: "2026-M10", to: $p) { rows }
}"""


@dataclass(frozen=True)
class Accepted:
    tokens: dict[str, str]
    rate: Decimal  # ONLINE_PS for (68, 2026-M12) from the report's figures
    stored_october: Decimal  # the demo's stored ONLINE_PS for (68, 2026-M10)
    pushed: dict[str, dict | None]  # the first observationsChanged payload of each subscriber, or None


@pytest.fixture(scope="module")
async def accepted(report_hub, gql, token_for, clock, pool) -> Accepted:
    """Subscribers to the rate, then the report submitted and accepted; what each subscriber heard."""
    tokens = {name: await token_for("VPCP", scopes) for name, scopes in SCOPES.items()}
    province = await token_for("UBND_68", "reports:submit")
    office = await token_for("VPCP", "reports:review")
    clock.now = datetime(2026, 12, 2, 9, 0, tzinfo=VN)
    listeners = ("both", "rate_only", "one_component")
    async with (
        connected(report_hub, tokens["both"]) as both,
        connected(report_hub, tokens["rate_only"]) as rate_only,
        connected(report_hub, tokens["one_component"]) as one_component,
    ):
        sockets = dict(zip(listeners, (both, rate_only, one_component), strict=True))
        for ws in sockets.values():
            await start(ws, CHANGES, i=[RATE], u=[UNIT])
            await ws.send(json.dumps({"type": "ping"}))  # its pong: the subscription is taken
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"
        submission = await fill_monthly(gql, province, pool, UNIT, PERIOD)
        assert "errors" not in await gql(province, SUBMIT, s=submission, k=str(uuid.uuid4()))
        assert "errors" not in await gql(office, REVIEW, s=submission, d="ACCEPT", k=str(uuid.uuid4()))
        pushed = {name: await first_push(ws) for name, ws in sockets.items()}
    parts = {
        r["indicator_code"]: r["value"]
        for r in await pool.fetch(
            "SELECT c.indicator_code, c.value FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id"
            " WHERE u.code = $1 AND u.valid_to IS NULL AND c.period = $2 AND c.dims = ''"
            " AND c.indicator_code = ANY($3::text[])",
            UNIT,
            PERIOD,
            [RATE, ONLINE, TOTAL],
        )
    }
    assert set(parts) == {ONLINE, TOTAL}  # the rate itself is not stored
    october = await pool.fetchval(
        "SELECT c.value FROM observation_current c JOIN admin_unit u ON u.id = c.unit_id"
        " WHERE u.code = $1 AND u.valid_to IS NULL AND c.period = '2026-M10' AND c.dims = '' AND c.indicator_code = $2",
        UNIT,
        RATE,
    )
    rate = (parts[ONLINE] * 100 / parts[TOTAL]).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return Accepted(tokens, rate, october, pushed)


async def first_push(ws) -> dict | None:
    """The first observationsChanged payload within 3 s, or None."""
    try:
        message = json.loads(await asyncio.wait_for(ws.recv(), 3))
    except TimeoutError:
        return None
    assert message["type"] == "next", message
    return message["payload"]["data"]["observationsChanged"]


def rows(value: str | list) -> list:
    return value if isinstance(value, list) else json.loads(value, parse_float=Decimal)


async def reads(gql, token: str) -> dict:
    """The answer to READS, its numbers as decimals (the fixture's JSON reader gives floats)."""
    body = await gql(token, READS, r=RATE, u=UNIT, p=PERIOD)
    return json.loads(json.dumps(body), parse_float=Decimal)


@pytest.mark.parametrize("reader", ["both", "rate_only"])
async def test_table_and_series_give_the_rate_aggregate_gives(accepted: Accepted, gql, reader: str) -> None:
    body = await reads(gql, accepted.tokens[reader])
    refused = [(e["path"], e["message"]) for e in body.get("errors", [])]
    assert refused == ([(["atPeriod"], f"you may not read indicator {TOTAL}")] if reader == "rate_only" else [])
    data = body["data"]
    assert data["aggregate"] == {
        "value": accepted.rate,
        "status": "OFFICIAL",
        "provenance": {"kind": "COMPUTED", "storedParts": 2},
    }
    (at_period,) = rows(data["atPeriod"]["rows"])
    expected_total = None if reader == "rate_only" else at_period["values"][1]
    assert [c["code"] for c in data["atPeriod"]["columns"]] == ([RATE] if reader == "rate_only" else [RATE, TOTAL])
    assert at_period["values"][0] == accepted.rate
    assert at_period["periods"][0] == PERIOD and at_period["statuses"][0] == "OFFICIAL"
    assert at_period["provenance"][0] == "computed:2"
    if expected_total is not None:  # the stored column beside it is as stored
        assert at_period["provenance"][1].startswith("submission:")
    # The latest: the components reach 2026-M12, later than the rate's own stored 2026-M10.
    (latest,) = rows(data["latest"]["rows"])
    assert (latest["values"], latest["periods"], latest["provenance"]) == ([accepted.rate], [PERIOD], ["computed:2"])
    (series,) = rows(data["series"]["rows"])
    assert series["values"] == [accepted.stored_october, None, accepted.rate]
    assert series["provenance"] == ["source:demo-synthetic", None, "computed:2"]


async def test_no_rate_computed_for_a_reader_of_one_component(accepted: Accepted, gql) -> None:
    # The rate and DOSSIERS_TOTAL would give DOSSIERS_ONLINE away: nothing computed, stored rates stand.
    body = await reads(gql, accepted.tokens["one_component"])
    assert body["data"]["aggregate"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [(["aggregate"], "FORBIDDEN")]
    assert ONLINE not in json.dumps(body, default=str)
    (at_period,) = rows(body["data"]["atPeriod"]["rows"])
    assert at_period["values"][0] is None and at_period["provenance"][0] is None
    (latest,) = rows(body["data"]["latest"]["rows"])
    assert latest["periods"] == ["2026-M10"] and latest["values"] == [accepted.stored_october]
    (series,) = rows(body["data"]["series"]["rows"])
    assert series["values"] == [accepted.stored_october, None, None]


async def test_no_rate_without_the_rates_grant(accepted: Accepted, gql) -> None:
    # The control: with the rate's grant, the rate is there (computed).
    control = await reads(gql, accepted.tokens["both"])
    assert rows(control["data"]["atPeriod"]["rows"])[0]["values"][0] == accepted.rate
    body = await reads(gql, accepted.tokens["components_only"])
    assert body["data"]["aggregate"] is None and body["data"]["series"] is None
    assert body["data"]["atPeriod"]["columns"] == [{"code": TOTAL}]
    assert rows(body["data"]["latest"]["rows"])[0]["values"] == []
    assert sorted((e["path"][0], e["extensions"]["code"]) for e in body["errors"]) == [
        ("aggregate", "FORBIDDEN"),
        ("atPeriod", "FORBIDDEN"),
        ("latest", "FORBIDDEN"),
        ("series", "FORBIDDEN"),
    ]


async def test_a_component_change_pushes_the_rate(accepted: Accepted) -> None:
    expected = {
        "resync": False,
        "observations": [
            {
                "indicator": {"code": RATE},
                "unit": {"code": UNIT},
                "period": PERIOD,
                "disaggregation": "",
                "value": float(accepted.rate),
                "status": "OFFICIAL",
                "provenance": {"kind": "COMPUTED", "storedParts": 2},
            }
        ],
    }
    assert accepted.pushed["both"] == expected
    assert accepted.pushed["rate_only"] == expected
    # A reader of the rate and one component: the hub computes nothing for it, so it hears nothing.
    assert accepted.pushed["one_component"] is None
