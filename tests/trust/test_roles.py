"""Database roles as a real boundary.

Requests log in as ``nrhub_app``: not a superuser, unable to become one (no SET ROLE or RESET ROLE escape),
able to write only the tables whose writes the hub audits, never the derived tables the API reads (the
SECURITY DEFINER trigger writes those), never history in place, never the private signing keys.
Migrations and operator commands run as the owner, the configured URL's user.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from nrhub.config.settings import Settings
from nrhub.db.pools import APP_ROLE, DatabaseUnreachable, create_pool, request_url
from nrhub.resolvers.audit import verify_chain, verify_served
from tests.reports.flows import MONTHLY, accepted_report, reporters

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
S, I, U, D = "SELECT", "INSERT", "UPDATE", "DELETE"  # noqa: E741
# What the request role may do to each table, decided from the SQL request code runs (resolvers/, auth/).
# Nobody else is granted anything: a table missing here fails the test until someone decides.
REQUEST_ROLE = {
    # Catalogue: read only (loaded by `nrhub demo load` and migrations).
    "admin_unit": {S},
    "unit_lineage": {S},
    "agency": {S},
    "agency_lineage": {S},
    "indicator_field": {S},
    "dimension": {S},
    "dimension_value": {S},
    "indicator": {S},
    "indicator_dimension": {S},
    # History: appended through the audited paths, never changed.
    "observation_revision": {S, I},
    "audit_entry": {S, I},
    "idempotency_key": {S, I},
    "schema_migration": {S},
    # What the API serves: written only by the revisions' SECURITY DEFINER trigger.
    "observation_current": {S},
    "observation_latest": {S},
    # The reporting workflow (every change audited); values of non-drafts are frozen by a trigger.
    "submission": {S, I, U},
    "submission_value": {S, I, U},
    "regime": {S, I, U},  # upsertRegime
    "regime_reporter": {S, I, D},
    "regime_item": {S, I, D},
    "regime_level": {S, I, D},  # a regime's approval chain, replaced whole by upsertRegime (migration 0020)
    "submission_approval": {S, I},  # decisions at approval levels: appended, never changed
    "holiday": {S},  # replaced by `nrhub regimes import` only
    # Lock exceptions and follow-up marks (migrations 0014, 0017): appended by the receiving agency, never changed.
    "lock_exception": {S, I},
    "value_follow_up": {S, I},
    # Validation rules (upsertValidationRule, deleteValidationRule) and explanations, appended at submission.
    "validation_rule": {S, I, U, D},
    "validation_rule_regime": {S, I, D},
    "submission_explanation": {S, I},
    # Outlier methods (setOutlierMethod) and min-max bounds (generateOutlierBounds replaces a unit's), migration 0019.
    "outlier_method": {S, I, U},
    "outlier_bounds": {S, I, D},
    # OAuth: clients and people are registered by the CLI; codes, refresh tokens, revocations and
    # rate limits are the token endpoints' own state.
    "oauth_client": {S},
    "hub_user": {S},
    "authorization_code": {S, I, U},
    "refresh_token": {S, I, U},
    "revoked_token": {S, I},
    "rate_limit": {S, I, U, D},
    # Private keys: loaded by the hub's owner connection only.
    "signing_key": set(),
    "schema_function": set(),  # the ledger of migrations/functions/, read by the owner only
    # Webhooks (migration 0016): registered and disabled by their agency; the secret is written, never read
    # back; reminders and the delivery outbox are the scheduler's (owner connection), deliveries only shown.
    "webhook": {S, I, U},
    "webhook_secret": {I},
    "webhook_delivery": {S},
    "reminder": set(),
}


@pytest.fixture(scope="module")
async def url(workflow_url: str) -> str:
    return workflow_url


@pytest.fixture
async def request_conn(url: str):
    """A connection of the hub's own request pool (nrhub.db.pools.create_pool, as the running hub opens it)."""
    pool = await create_pool(Settings(pool_min_size=1, pool_max_size=1), url)
    try:
        async with pool.acquire() as conn:
            yield conn
    finally:
        await pool.close()


async def test_the_privilege_matrix(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        owner = await conn.fetchval("SELECT current_user")
        tables = {
            r["tablename"]: r["tableowner"]
            for r in await conn.fetch("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
        }
        assert set(tables) == set(REQUEST_ROLE), "decide the request role's privileges on every table"
        assert set(tables.values()) == {owner}  # migrations run as the owner, who owns everything
        rows = await conn.fetch(
            "SELECT t.name, p.privilege, has_table_privilege($1, 'public.' || quote_ident(t.name), p.privilege) AS app,"
            " has_table_privilege($2, 'public.' || quote_ident(t.name), p.privilege) AS owner"
            " FROM unnest($3::text[]) AS t(name) CROSS JOIN unnest($4::text[]) AS p(privilege)",
            APP_ROLE,
            owner,
            list(tables),
            list(PRIVILEGES),
        )
        granted = {(r["name"], r["privilege"]) for r in rows if r["app"]}
        assert granted == {(t, p) for t, privileges in REQUEST_ROLE.items() for p in privileges}
        assert all(r["owner"] for r in rows)
        # No column of any table outside the grants above (column grants would slip past the table check).
        columns = await conn.fetch(
            "SELECT table_name, column_name, privilege_type FROM information_schema.column_privileges"
            " WHERE grantee = $1 AND table_schema = 'public'",
            APP_ROLE,
        )
        assert {(c["table_name"], c["privilege_type"]) for c in columns} <= granted
        assert not await conn.fetchval("SELECT has_any_column_privilege($1, 'signing_key', 'SELECT')", APP_ROLE)
        # No sequence (identity columns need none), no CREATE in the schema, no TRIGGER or REFERENCES anywhere.
        assert not await conn.fetchval(
            "SELECT bool_or(has_sequence_privilege($1, c.oid, 'USAGE') OR has_sequence_privilege($1, c.oid, 'UPDATE'))"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'S'",
            APP_ROLE,
        )
        assert not await conn.fetchval("SELECT has_schema_privilege($1, 'public', 'CREATE')", APP_ROLE)
        assert not await conn.fetchval(
            "SELECT bool_or(has_table_privilege($1, 'public.' || quote_ident(t), 'TRIGGER')"
            " OR has_table_privilege($1, 'public.' || quote_ident(t), 'REFERENCES')) FROM unnest($2::text[]) AS t",
            APP_ROLE,
            list(tables),
        )
        # The role itself: can log in, and nothing else.
        role = await conn.fetchrow("SELECT * FROM pg_roles WHERE rolname = $1", APP_ROLE)
        assert role["rolcanlogin"]
        for attribute in ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls", "rolinherit"):
            assert not role[attribute], attribute
        assert (
            await conn.fetch("SELECT roleid::regrole FROM pg_auth_members WHERE member = $1::regrole", APP_ROLE) == []
        )
        # The served tables' writer runs as the owner, with a search path the caller cannot redirect.
        apply = await conn.fetchrow(
            "SELECT prosecdef, proconfig, pg_get_userbyid(proowner) AS owner FROM pg_proc"
            " WHERE oid = 'observation_revision_apply'::regproc"
        )
        assert apply["prosecdef"] and apply["owner"] == owner
        assert any(c.startswith("search_path=pg_catalog, public, pg_temp") for c in apply["proconfig"])
    finally:
        await conn.close()


async def test_request_connections_log_in_as_the_request_role_and_cannot_leave_it(request_conn) -> None:
    conn = request_conn
    assert await conn.fetchval("SELECT session_user") == APP_ROLE  # logged in as it, not SET ROLE
    assert await conn.fetchval("SELECT current_user") == APP_ROLE
    assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
    await conn.execute("RESET ROLE")
    assert await conn.fetchval("SELECT current_user") == APP_ROLE
    await conn.execute("SET ROLE NONE")
    assert await conn.fetchval("SELECT current_user") == APP_ROLE
    owner = await conn.fetchval("SELECT tableowner FROM pg_tables WHERE tablename = 'observation_current'")
    for statement in (
        f'SET ROLE "{owner}"',
        "SET ROLE postgres",
        f'SET SESSION AUTHORIZATION "{owner}"',
        "SET session_replication_role = replica",  # would switch the append-only triggers off
        "ALTER TABLE observation_revision DISABLE TRIGGER USER",
        "CREATE TABLE public.mine (x int)",
        "CREATE FUNCTION public.mine() RETURNS int LANGUAGE sql RETURN 1",
    ):
        with pytest.raises(asyncpg.PostgresError):
            async with conn.transaction():
                await conn.execute(statement)
    assert await conn.fetchval("SELECT current_user") == APP_ROLE


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE observation_current SET value = value + 1",
        "DELETE FROM observation_current",
        "TRUNCATE observation_current",
        "INSERT INTO observation_current SELECT indicator_code, unit_id, period, dims, value, status, id,"
        " submission_id, source FROM observation_revision LIMIT 1",
        "UPDATE observation_latest SET value = value + 1",
        "DELETE FROM observation_latest",
        "UPDATE observation_revision SET value = value + 1",
        "DELETE FROM audit_entry",
        "UPDATE schema_migration SET checksum = 'x'",
        "DELETE FROM schema_migration",
        "UPDATE oauth_client SET scopes = '{admin}'",
        "INSERT INTO oauth_client (client_id, secret_hash, name, agency_code, scopes)"
        " VALUES ('attacker-client', 'x', 'x', 'VPCP', '{admin}')",
        "INSERT INTO hub_user (username, password_hash, agency_code, scopes) VALUES ('attacker', 'x', 'VPCP', '{admin}')",
        "UPDATE signing_key SET retired_at = now()",
        "SELECT private_jwk FROM signing_key",
        "SELECT kid, public_jwk FROM signing_key",
        "SELECT * FROM signing_key",
    ],
)
async def test_the_request_role_is_refused(request_conn, statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        async with request_conn.transaction():
            await request_conn.execute(statement)


async def test_private_keys_are_out_of_the_request_roles_reach(url: str, request_conn) -> None:
    owner = await asyncpg.connect(url)
    try:
        await owner.execute(
            "INSERT INTO signing_key (kid, algorithm, private_jwk, public_jwk)"
            " VALUES ('trust-test', 'ES256', '{\"d\": \"secret\"}', '{}') ON CONFLICT DO NOTHING"
        )
    finally:
        await owner.close()
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await request_conn.fetchval("SELECT count(*) FROM signing_key")
    # Nor through a function that leaks rows of tables it can read: only the owner's definer functions run as the
    # owner, and none of them returns keys (the aggregates read observations past row-level security, migration
    # 0013, and return one combined value; latest_rates_to_compute returns periods only, never a value).
    leaks = await request_conn.fetch(
        "SELECT p.oid::regprocedure::text AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'public' AND p.prosecdef AND p.prorettype <> 'trigger'::regtype ORDER BY 1"
    )
    assert [r["name"] for r in leaks] == [
        "aggregate_additive(text,text,text,integer,text,text,text[])",
        "aggregate_observation(text,integer,text,text,text[])",
        "latest_rates_to_compute(text[],integer[])",
    ]


async def test_the_request_role_runs_the_whole_workflow_and_what_it_serves_verifies(url: str) -> None:
    """Open, fill, submit, accept as the request role: the revisions it publishes are served and audited."""
    async with asyncio.timeout(60):
        pool = await create_pool(Settings(pool_min_size=1, pool_max_size=1), url)
        try:
            async with pool.acquire() as conn:
                # The workflow reads every observation row, as in the hub's mutation transactions (idempotency.py).
                await conn.execute("SELECT set_config('hub.every_row', 'on', false)")
                province = (await reporters(conn, MONTHLY))[0]
                submission = await accepted_report(conn, province, "2026-M09", datetime(2026, 10, 10, 2, tzinfo=UTC))
                served = await conn.fetchval(
                    "SELECT count(*) FROM observation_current WHERE submission_id = $1", submission
                )
                assert served > 0
                # An accepted report's values are frozen, for the request role and the owner alike.
                for statement in (
                    "UPDATE submission_value SET value = value + 1 WHERE submission_id = $1",
                    "DELETE FROM submission_value WHERE submission_id = $1",
                ):
                    with pytest.raises(asyncpg.PostgresError):
                        async with conn.transaction():
                            await conn.execute(statement, submission)
        finally:
            await pool.close()
        owner = await asyncpg.connect(url)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not a draft"):
                await owner.execute(
                    "UPDATE submission_value SET value = value + 1 WHERE submission_id = $1", submission
                )
            assert (await verify_chain(owner)).problem is None
            assert await verify_served(owner) is None
        finally:
            await owner.close()


def test_the_request_url_is_the_configured_one_with_the_request_role_as_its_user() -> None:
    derive = Settings(database_url="postgresql://hub:secret@db.internal:6432/hub?sslmode=require")
    assert request_url(derive, derive.database_url) == "postgresql://nrhub_app@db.internal:6432/hub?sslmode=require"
    embedded = "postgresql://postgres:@/hub?host=/data/pg"
    assert request_url(Settings(), embedded) == "postgresql://nrhub_app@/hub?host=/data/pg"
    configured = Settings(
        database_url="postgresql://hub:secret@db/hub", request_database_url="postgresql://nrhub_app:other@db/hub"
    )
    assert request_url(configured, "postgresql://hub:secret@db/hub") == "postgresql://nrhub_app:other@db/hub"


async def test_a_superuser_request_url_is_refused(url: str) -> None:
    with pytest.raises(DatabaseUnreachable, match="superuser"):
        await create_pool(Settings(database_url=url, request_database_url=url, pool_min_size=1), url)
