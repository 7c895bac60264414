"""`nrhub locks open` and `nrhub locks list`: lock exceptions from the command line, run as an operator runs it.

The regime is the test's own (tests/reports/conftest.py): monthly, deadline five days after the cut-off,
locking ten days after the deadline. For 2026-M09 that is:

    the deadline       2026-09-19 23:59:59.999999 Vietnam time
    the report locks   2026-09-29 23:59:59.999999 (still open at that instant, locked after it)

The command line runs on the wall clock, the hub on the tests' clock: each exception's times are the
clock of the path that opened it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from nrhub.resolvers.hub_time import shown
from tests.reports.conftest import create_test_regime
from tests.reports.flows import key

VN = timezone(timedelta(hours=7))
PERIOD = "2026-M09"
LOCKS = datetime(2026, 9, 29, 23, 59, 59, 999999, tzinfo=VN)
EXCEPTION = """mutation($r: String!, $a: String!, $p: Period!, $reason: String!, $until: DateTime!, $k: String!) {
  openLockException(regime: $r, agency: $a, period: $p, reason: $reason, until: $until, idempotencyKey: $k) {
    exceptionId } }"""

pytestmark = pytest.mark.usefixtures("clock_restored")


@pytest.fixture
async def regime(pool) -> str:
    return await create_test_regime(pool, "LOCKCLI", allow_early=False, expiry_days=10)


async def _audit(pool, exception_id: int) -> dict:
    row = await pool.fetchrow(
        "SELECT actor_agency, actor_client, actor_user, action, after FROM audit_entry WHERE subject = $1",
        f"lock_exception:{exception_id}",
    )
    return {**row, "after": json.loads(row["after"])}


async def test_an_operator_opens_an_exception_audited_as_the_receiving_agencys(
    nrhub, database_url, regime, pool, gql, token_for, clock
) -> None:
    async def locks(*args: str) -> list[str]:
        run = await nrhub("locks", *args, database_url=database_url)
        assert (run.returncode, run.stderr) == (0, ""), run
        return run.stdout.splitlines()

    assert await locks("list", "--regime", regime) == []

    # The receiving agency's own exception through GraphQL, on the hub's clock, for UBND_01.
    clock.now = datetime(2026, 11, 16, 10, 0, tzinfo=VN)
    office = await token_for("VPCP", "reports:review")
    until_01 = datetime(2026, 11, 20, tzinfo=VN)
    answer = await gql(
        office, EXCEPTION, r=regime, a="UBND_01", p=PERIOD, reason="Audit", until=shown(until_01), k=key()
    )
    by_graphql = int(answer["data"]["openLockException"]["exceptionId"])

    # The operator's, for UBND_79, until tomorrow on the wall clock.
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    [line] = await locks(
        "open", "--regime", regime, "--agency", "UBND_79", "--period", PERIOD,
        "--until", until.isoformat(), "--reason", "Figures delayed by the flood", "--as", "VPCP",
    )  # fmt: skip
    by_cli = await pool.fetchval("SELECT max(id) FROM lock_exception WHERE regime_code = $1", regime)
    assert line == f"lock exception {by_cli}: {regime} UBND_79 {PERIOD} may change until {shown(until)}"
    row = await pool.fetchrow(
        "SELECT agency_code, reason, opened_by, expires_at FROM lock_exception WHERE id = $1", by_cli
    )
    assert dict(row) == {
        "agency_code": "UBND_79", "reason": "Figures delayed by the flood", "opened_by": "nrhub locks open",
        "expires_at": until,
    }  # fmt: skip

    # Audited as the GraphQL path audits it: the same action and record, for the receiving agency.
    cli_entry, graphql_entry = await _audit(pool, by_cli), await _audit(pool, by_graphql)
    assert cli_entry["action"] == graphql_entry["action"] == "lock_exception.open"
    assert cli_entry["actor_agency"] == graphql_entry["actor_agency"] == "VPCP"
    assert (cli_entry["actor_client"], cli_entry["actor_user"]) == (None, "nrhub locks open")
    assert cli_entry["after"] == {
        "regime": regime, "agency": "UBND_79", "period": PERIOD, "reason": "Figures delayed by the flood",
        "until": until.isoformat(),
    }  # fmt: skip
    assert set(graphql_entry["after"]) == set(cli_entry["after"])

    # Now (the wall clock): the operator's exception holds the lock off; the other one has expired.
    client = graphql_entry["actor_client"]
    assert await locks("list", "--regime", regime) == [
        f"{by_graphql}\t{regime}\tUBND_01\t{PERIOD}\tuntil 2026-11-20T00:00:00+07:00\tnot in force\treport locked"
        f"\t{client}\tAudit",
        f"{by_cli}\t{regime}\tUBND_79\t{PERIOD}\tuntil {shown(until)}\tin force\treport open"
        "\tnrhub locks open\tFigures delayed by the flood",
    ]
    # At the lock instant the reports may still change; a microsecond later they are locked.
    at_lock = [x.split("\t")[5:7] for x in await locks("list", "--regime", regime, "--at", LOCKS.isoformat())]
    assert at_lock == [["not in force", "report open"]] * 2
    after_lock = (LOCKS + timedelta(microseconds=1)).isoformat()
    assert [x.split("\t")[5:7] for x in await locks("list", "--regime", regime, "--at", after_lock)] == [
        ["not in force", "report locked"]
    ] * 2
    [graphql_one, cli_one] = json.loads(
        "".join(
            await locks("list", "--regime", regime, "--period", PERIOD, "--at", "2026-11-17T00:00:00+07:00", "--json")
        )
    )
    assert (graphql_one["in_force"], graphql_one["report_locked"]) == (True, False)
    assert (cli_one["in_force"], cli_one["report_locked"]) == (False, True)
    assert cli_one["report_locks_at"] == shown(LOCKS) and cli_one["agency"] == "UBND_79"
    assert await locks("list", "--regime", regime, "--period", "2026-M10") == []


async def test_what_the_graphql_path_refuses_the_command_refuses(nrhub, database_url, regime, pool) -> None:
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    before = (
        await pool.fetchval("SELECT count(*) FROM audit_entry"),
        await pool.fetchval("SELECT count(*) FROM lock_exception"),
    )
    base = {
        "--regime": regime,
        "--agency": "UBND_79",
        "--period": PERIOD,
        "--until": until,
        "--reason": "x",
        "--as": "VPCP",
    }
    for changed, message in [
        ({"--as": "UBND_79"}, f"only the receiving agency (VPCP) opens lock exceptions of {regime}"),
        ({"--agency": "VPCP"}, f"agency VPCP does not report under regime {regime}"),
        ({"--period": "2026-Q3"}, f"regime {regime} is reported per M period, not 2026-Q3"),
        ({"--reason": "  "}, "a lock exception needs a reason"),
        ({"--until": (datetime.now(UTC) + timedelta(days=91)).isoformat()}, "until must be after now and at most 90"),
        ({"--until": "2026-12-20T00:00:00"}, "--until: '2026-12-20T00:00:00' has no offset"),
        ({"--regime": "NO_SUCH_REGIME"}, "there is no regime NO_SUCH_REGIME"),
    ]:
        args = [part for option, value in (base | changed).items() for part in (option, value)]
        run = await nrhub("locks", "open", *args, database_url=database_url)
        assert run.returncode == 1 and run.stderr.startswith(f"nrhub: error: {message}"), (changed, run)
    missing_as = await nrhub(
        "locks", "open", *[p for o, v in base.items() if o != "--as" for p in (o, v)], database_url=database_url
    )
    assert missing_as.returncode == 2 and "--as" in missing_as.stderr
    for args, message in [
        (("--regime", "NO_SUCH_REGIME"), "there is no regime NO_SUCH_REGIME"),
        (("--period", "2026-M13"), "'2026-M13' is not a period"),
        (("--at", "yesterday"), "--at: "),
    ]:
        run = await nrhub("locks", "list", *args, database_url=database_url)
        assert run.returncode == 1 and run.stderr.startswith(f"nrhub: error: {message}"), (args, run)
    after = (
        await pool.fetchval("SELECT count(*) FROM audit_entry"),
        await pool.fetchval("SELECT count(*) FROM lock_exception"),
    )
    assert after == before
