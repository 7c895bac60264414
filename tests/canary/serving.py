"""The canary tests' hub: planting as the owner, serving with uvicorn, the callers and their tokens.

The canaries are planted as the database owner before the hub starts (catalogue rows, stored
revisions, optional cells of a regime's form, beside OPEN_PROBE, a PUBLIC indicator that is no
canary); then a ministry reports them through the API and the receiving agency accepts the report
(``Hub.report_canaries``), so they are also current values with a submission as provenance. Every
caller gets its token from the hub's own /oauth/token (client credentials), as an agency's system does.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import httpx

from nrhub.auth.clients import create_client
from tests.canary.canaries import (
    CANARY,
    CANARY_DEFINITION,
    CANARY_FIELD,
    CANARY_NAME_EN,
    CANARY_NAME_VI,
    CANARY_SOURCE_NOTE,
    CANARY_UNIT_OF_MEASURE,
    CANARY_UNITS,
    CANARY_VALUE,
    IN_REGION_VALUE,
    NATION_PROBE_VALUE,
    OPEN_PROBE,
    OPEN_PROBE_VALUE,
    OUT_OF_REGION,
    OUT_OF_REGION_VALUE,
    PLANTED_PERIODS,
    PROBE,
    PROBE_FIELD,
)
from tests.conftest import serving_hub


@dataclass(frozen=True)
class Caller:
    """An agency's OAuth client (or no token at all) and the scopes it is registered with."""

    name: str
    agency: str | None  # None: no token at all
    scope: str = ""

    @property
    def read_only(self) -> bool:
        return "reports:" not in self.scope and "admin" not in self.scope


# The callers whose answers must never hold a canary. None is granted the canary's field, and none may
# read LAB_PROBE outside region 79: anonymous callers read PUBLIC indicators only (LAB_PROBE is INTERNAL).
RESTRICTED = (
    Caller("anonymous", None),
    Caller("labour_region_79", "UBND_79", "data:read field:labour region:79"),
    Caller("catalogue_only", "BNV", "catalog:read"),
    Caller("one_indicator", "BTC", "data:read indicator:RETAIL"),
    Caller("reporter", "UBND_79", "reports:submit"),
)
# Callers the tests need besides: one who may read every canary (the control), and the report's two sides.
CONTROL = Caller("control", "VPCP", f"data:read field:{CANARY_FIELD} field:{PROBE_FIELD}")
MINISTRY = Caller("ministry", "BTC", "reports:submit")  # reports BC_BO_QUY for the nation and its provinces
REVIEWER = Caller("reviewer", "VPCP", "reports:review")  # BC_BO_QUY's receiving agency

OPEN = 'mutation($p: Period!, $k: String!) { openDraft(regime: "BC_BO_QUY", period: $p, idempotencyKey: $k) { submissionId } }'
SAVE = "mutation($s: Int!, $v: [CellInput!]!, $k: String!) { saveValues(submissionId: $s, values: $v, idempotencyKey: $k) { problems { indicator message severity } } }"
SUBMIT = "mutation($s: Int!, $k: String!) { submitReport(submissionId: $s, idempotencyKey: $k) { status } }"
ACCEPT = "mutation($s: Int!, $k: String!) { reviewReport(submissionId: $s, decision: ACCEPT, idempotencyKey: $k) { status } }"


@contextlib.asynccontextmanager
async def serving(database_url: str) -> AsyncIterator[str]:
    """The hub as an operator runs it (real OAuth, real resource server), with public reading on:
    callers without a token read PUBLIC indicators, the most an anonymous caller can be given."""
    async with serving_hub(database_url, public_read=True) as url:
        yield url


async def plant(conn: asyncpg.Connection) -> None:
    """The canaries, as the database's owner: catalogue rows, form cells and stored values."""
    await conn.execute(
        "INSERT INTO indicator (code, name_vi, name_en, definition, field, unit_of_measure, value_type, decimals,"
        " periodicity, aggregation, responsible_agency, sensitivity, source, source_note)"
        " VALUES ($1, $2, $3, $4, $5, $6, 'DECIMAL', 6, 'Q', 'SUM', 'BNNMT', 'RESTRICTED', 'hub', $7)",
        CANARY,
        CANARY_NAME_VI,
        CANARY_NAME_EN,
        CANARY_DEFINITION,
        CANARY_FIELD,
        CANARY_UNIT_OF_MEASURE,
        CANARY_SOURCE_NOTE,
    )
    await conn.execute(
        "INSERT INTO indicator_dimension (indicator_code, dimension_code, position) VALUES ($1, 'SEX', 1)", CANARY
    )
    await conn.execute(
        "INSERT INTO indicator (code, name_vi, name_en, field, unit_of_measure, value_type, decimals, periodicity,"
        " aggregation, responsible_agency, sensitivity, source)"
        " VALUES ($1, 'Chỉ số thăm dò lao động', 'Labour probe', $2, 'persons', 'DECIMAL', 6, 'Q', 'SUM', 'BTC',"
        " 'INTERNAL', 'hub')",
        PROBE,
        PROBE_FIELD,
    )
    await conn.execute(
        "INSERT INTO indicator (code, name_vi, name_en, field, unit_of_measure, value_type, decimals, periodicity,"
        " aggregation, responsible_agency, sensitivity, source)"
        " VALUES ($1, 'Chỉ số thăm dò công khai', 'Open probe', $2, 'persons', 'DECIMAL', 6, 'Q', 'SUM', 'BTC',"
        " 'PUBLIC', 'hub')",
        OPEN_PROBE,
        PROBE_FIELD,
    )
    # Optional cells of the quarterly ministry report, so the canaries can also arrive by a report, for
    # quarters ahead of the real clock too (a draft otherwise waits for its period's cut-off window).
    await conn.execute("UPDATE regime SET allow_early = true WHERE code = 'BC_BO_QUY'")
    await conn.executemany(
        "INSERT INTO regime_item (regime_code, indicator_code, dims, required) VALUES ('BC_BO_QUY', $1, '', false)",
        [(CANARY,), (PROBE,), (OPEN_PROBE,)],
    )
    unit_ids = dict(await conn.fetch("SELECT code, id FROM admin_unit WHERE valid_to IS NULL"))
    rows = []
    for period in PLANTED_PERIODS:
        rows += [(CANARY, unit_ids[code], period, "", CANARY_VALUE) for code in CANARY_UNITS]
        rows.append((CANARY, unit_ids["VN"], period, "SEX=F", CANARY_VALUE))
        rows += [(PROBE, unit_ids[code], period, "", OUT_OF_REGION_VALUE) for code in OUT_OF_REGION]
        rows += [
            (PROBE, unit_ids["79"], period, "", IN_REGION_VALUE),
            (PROBE, unit_ids["VN"], period, "", NATION_PROBE_VALUE),
        ]
    await conn.executemany(
        "INSERT INTO observation_revision (indicator_code, unit_id, period, dims, value, status, source, recorded_by)"
        " VALUES ($1, $2, $3, $4, $5, 'OFFICIAL', 'demo-synthetic', 'tests/canary')",
        rows,
    )


@dataclass
class Hub:
    url: str
    tokens: dict[str, str | None]  # caller name -> access token (None: anonymous)
    submissions: list[int] = field(default_factory=list)  # the accepted reports that carry canaries

    def headers(self, caller: str) -> dict[str, str]:
        token = self.tokens[caller]
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def gql(self, caller: str, query: str, **variables: object) -> dict:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{self.url}/graphql", json={"query": query, "variables": variables}, headers=self.headers(caller)
            )
        assert response.status_code == 200, response.text
        return response.json()

    async def report_canaries(self, period: str) -> int:
        """The ministry reports the canaries for ``period`` (the nation, Ha Noi, region 79) and the
        receiving agency accepts: they become current values, and subscribers hear of it."""
        opened = await self.gql(MINISTRY.name, OPEN, p=period, k=str(uuid.uuid4()))
        submission = int(opened["data"]["openDraft"]["submissionId"])
        cells = [
            {"indicator": "GDP_CUR", "value": "2500000"},
            {"indicator": "INV_TOTAL", "value": "900000"},
            {"indicator": "LABOUR_FORCE", "value": "53000000"},
            {"indicator": "UNEMPLOYED", "value": "1100000"},
            {"indicator": CANARY, "value": str(CANARY_VALUE)},
            {"indicator": CANARY, "value": str(CANARY_VALUE), "unit": "01"},
            {"indicator": PROBE, "value": str(NATION_PROBE_VALUE)},
            {"indicator": PROBE, "value": str(IN_REGION_VALUE), "unit": "79"},
            {"indicator": PROBE, "value": str(OUT_OF_REGION_VALUE), "unit": "01"},
            {"indicator": OPEN_PROBE, "value": str(OPEN_PROBE_VALUE)},
        ]
        saved = await self.gql(MINISTRY.name, SAVE, s=submission, v=cells, k=str(uuid.uuid4()))
        assert "errors" not in saved, saved
        assert [p for p in saved["data"]["saveValues"]["problems"] if p["severity"] == "ERROR"] == []
        submitted = await self.gql(MINISTRY.name, SUBMIT, s=submission, k=str(uuid.uuid4()))
        assert submitted["data"]["submitReport"]["status"] == "SUBMITTED", submitted
        accepted = await self.gql(REVIEWER.name, ACCEPT, s=submission, k=str(uuid.uuid4()))
        assert accepted["data"]["reviewReport"]["status"] == "ACCEPTED", accepted
        self.submissions.append(submission)
        return submission


async def token(hub_url: str, conn: asyncpg.Connection, caller: Caller) -> str | None:
    """Registers the caller's client (as `nrhub clients create` does) and gets a token for it."""
    if caller.agency is None:
        return None
    client, secret = await create_client(conn, agency=caller.agency, scopes=caller.scope.split())
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{hub_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, secret or "")
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
