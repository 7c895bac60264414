"""The audit chain against an attacker with a superuser connection, and the role request connections run as.

Tampering happens on private copies of the demo database (``clone_demo``), never on the database the
report hub serves, and always as a superuser with ``session_replication_role = replica`` (which
disables the append-only triggers), because that is what it takes to edit history at all.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from nrhub.config.settings import Settings
from nrhub.db.pools import APP_ROLE, create_pool
from nrhub.resolvers.audit import (
    GENESIS,
    Actor,
    _canonical,
    _loads,
    append_entry,
    entry_hash,
    revision_digest,
    verify_chain,
)
from tests.reports.flows import (
    MONTHLY,
    OPEN,
    SAVE,
    accepted_report,
    assert_linear_chain,
    assert_names_entry,
    cell_values,
    entry_seq,
    key,
    reporters,
)

NOW = datetime(2026, 10, 10, 2, 0, tzinfo=UTC)


async def superuser(url: str) -> asyncpg.Connection:
    """A superuser connection that bypasses triggers: what an attacker with database access has."""
    conn = await asyncpg.connect(url)
    await conn.execute("SET session_replication_role = replica")
    return conn


class Tampered:
    """A private copy of the demo database with three accepted monthly reports."""

    def __init__(self, url: str, submissions: list[int]) -> None:
        self.url = url
        self.submissions = submissions


@pytest.fixture(scope="module")
async def tampered(clone_demo) -> Tampered:
    url = await clone_demo()
    conn = await asyncpg.connect(url)
    try:
        provinces = (await reporters(conn, MONTHLY))[:3]
        submissions = [
            await accepted_report(conn, agency, "2026-M09", NOW, base=500 + 100 * i)
            for i, agency in enumerate(provinces)
        ]
    finally:
        await conn.close()
    return Tampered(url, submissions)


async def test_an_untouched_log_verifies(tampered: Tampered, nrhub) -> None:
    async with asyncio.timeout(60):
        run = await nrhub("audit", "verify", database_url=tampered.url)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("audit chain verifies: ") and run.stderr == ""


Statement = tuple[str, tuple[object, ...]]


async def _edit_and_verify(url: str, nrhub, edit: Statement, restore: Statement):
    """Apply ``edit`` as a trigger-less superuser, run ``nrhub audit verify``, then put the row back."""
    conn = await superuser(url)
    try:
        assert await conn.execute(edit[0], *edit[1]) == "UPDATE 1"
        try:
            run = await nrhub("audit", "verify", database_url=url)
        finally:
            assert await conn.execute(restore[0], *restore[1]) == "UPDATE 1"
    finally:
        await conn.close()
    return run


@pytest.mark.parametrize("column", ["after", "subject"])
async def test_an_edited_audit_entry_is_named(tampered: Tampered, nrhub, column: str) -> None:
    async with asyncio.timeout(60):
        conn = await asyncpg.connect(tampered.url)
        try:
            # A middle entry: the second report's saved values, not the head of the log.
            seq = await entry_seq(conn, "submission.values", f"submission:{tampered.submissions[1]}")
            original = await conn.fetchrow("SELECT subject, after::text FROM audit_entry WHERE seq = $1", seq)
            head = await conn.fetchval("SELECT max(seq) FROM audit_entry")
        finally:
            await conn.close()
        assert seq < head
        if column == "after":
            after = orjson.loads(original["after"])
            after[sorted(after)[0]] = "1"  # a figure made to look better in the record of what was saved
            sql = "UPDATE audit_entry SET after = $2::text::jsonb WHERE seq = $1"
            edit, restore = (sql, (seq, orjson.dumps(after).decode())), (sql, (seq, original["after"]))
        else:
            sql = "UPDATE audit_entry SET subject = $2 WHERE seq = $1"
            # The change attributed to another report.
            edit = (sql, (seq, f"submission:{tampered.submissions[0]}"))
            restore = (sql, (seq, original["subject"]))
        run = await _edit_and_verify(tampered.url, nrhub, edit, restore)
        line = assert_names_entry(run, seq)
        assert "altered" in line
        assert (await nrhub("audit", "verify", database_url=tampered.url)).returncode == 0


async def test_an_edited_value_of_an_accepted_report_names_the_acceptance(tampered: Tampered, nrhub) -> None:
    async with asyncio.timeout(60):
        submission = tampered.submissions[1]
        conn = await asyncpg.connect(tampered.url)
        try:
            seq = await entry_seq(conn, "submission.accept", f"submission:{submission}")
            revision = await conn.fetchval(
                "SELECT min(id) FROM observation_revision WHERE submission_id = $1", submission
            )
        finally:
            await conn.close()
        run = await _edit_and_verify(
            tampered.url,
            nrhub,
            ("UPDATE observation_revision SET value = value + 1 WHERE id = $1", (revision,)),
            ("UPDATE observation_revision SET value = value - 1 WHERE id = $1", (revision,)),
        )
        line = assert_names_entry(run, seq)
        assert "values it covers were altered" in line
        assert (await nrhub("audit", "verify", database_url=tampered.url)).returncode == 0


async def test_an_edited_demo_loaded_value_names_the_load(tampered: Tampered, nrhub) -> None:
    async with asyncio.timeout(60):
        conn = await asyncpg.connect(tampered.url)
        try:
            revision = await conn.fetchval(
                "SELECT id FROM observation_revision WHERE source = 'demo-synthetic' ORDER BY id OFFSET 1000 LIMIT 1"
            )
            seq = await conn.fetchval(
                "SELECT seq FROM audit_entry WHERE action = 'observations.load'"
                " AND (after->'revision_range'->>0)::bigint <= $1 AND (after->'revision_range'->>1)::bigint >= $1",
                revision,
            )
        finally:
            await conn.close()
        assert revision is not None and seq is not None
        # Addition keeps the numeric's scale, so subtracting restores the very same text.
        run = await _edit_and_verify(
            tampered.url,
            nrhub,
            ("UPDATE observation_revision SET value = value + 7 WHERE id = $1", (revision,)),
            ("UPDATE observation_revision SET value = value - 7 WHERE id = $1", (revision,)),
        )
        assert_names_entry(run, seq)
        assert (await nrhub("audit", "verify", database_url=tampered.url)).returncode == 0


async def _rewrite_tail(conn: asyncpg.Connection, first: int, revision: int) -> None:
    """What a careful forger does: change a published value, its entry's digest, and rehash every entry after."""
    await conn.execute("UPDATE observation_revision SET value = value + 1000 WHERE id = $1", revision)
    # And the served copies, which verify recomputes from the revisions (tests/trust/test_verify_served.py).
    for table in ("observation_current", "observation_latest"):
        await conn.execute(f"UPDATE {table} SET value = value + 1000 WHERE revision_id = $1", revision)
    rows = await conn.fetch(
        "SELECT seq, occurred_at, actor_agency, actor_client, actor_user, action, subject, before::text,"
        " after::text, request_id, hash FROM audit_entry ORDER BY seq"
    )
    prev = GENESIS if first == 1 else bytes(rows[first - 2]["hash"])
    for row in rows[first - 1 :]:
        after = _loads(row["after"])
        if row["seq"] == first:
            after["revision_digest"] = await revision_digest(conn, after["revisions"])
        actor = Actor(row["actor_agency"], row["actor_client"], row["actor_user"], row["request_id"])
        canonical = _canonical(
            row["seq"], row["occurred_at"], actor, row["action"], row["subject"], _loads(row["before"]), after
        )
        digest = entry_hash(prev, canonical)
        await conn.execute(
            "UPDATE audit_entry SET after = $2::text::jsonb, prev_hash = $3, hash = $4 WHERE seq = $1",
            row["seq"],
            orjson.dumps(after).decode(),
            prev,
            digest,
        )
        prev = digest


async def test_a_rewritten_tail_is_caught_by_a_checkpoint_taken_before(clone_demo, nrhub, tmp_path: Path) -> None:
    async with asyncio.timeout(90):
        url = await clone_demo()
        conn = await asyncpg.connect(url)
        try:
            provinces = (await reporters(conn, MONTHLY))[:4]
            early = [await accepted_report(conn, p, "2026-M09", NOW, base=700) for p in provinces[:2]]
            checkpoint = tmp_path / "checkpoint.jws"
            run = await nrhub("audit", "checkpoint", str(checkpoint), database_url=url)
            assert run.returncode == 0, run.stderr
            written = re.search(r": (\d+) entries, head ([0-9a-f]{64})", run.stdout)
            assert written is not None, run.stdout
            k = int(written.group(1))
            stored = await conn.fetchval("SELECT hash FROM audit_entry WHERE seq = $1", k)
            assert bytes(stored).hex() == written.group(2)
            for p in provinces[2:]:
                await accepted_report(conn, p, "2026-M09", NOW, base=800)
            assert await conn.fetchval("SELECT count(*) FROM audit_entry") > k
            assert (await nrhub("audit", "verify", "--checkpoint", str(checkpoint), database_url=url)).returncode == 0

            # Rewrite everything from the first report's acceptance (j < k) onward, consistently.
            j = await entry_seq(conn, "submission.accept", f"submission:{early[0]}")
            assert j < k
            revision = await conn.fetchval(
                "SELECT min(id) FROM observation_revision WHERE submission_id = $1", early[0]
            )
            forger = await superuser(url)
            try:
                async with forger.transaction():
                    await _rewrite_tail(forger, j, revision)
            finally:
                await forger.close()
            result = await verify_chain(conn)
            assert result.problem is None, result.problem
            rewritten_head = bytes(await conn.fetchval("SELECT hash FROM audit_entry WHERE seq = $1", k)).hex()
            kid = await conn.fetchval("SELECT kid FROM signing_key ORDER BY created_at DESC LIMIT 1")
        finally:
            await conn.close()

        # The chain alone cannot tell.
        alone = await nrhub("audit", "verify", database_url=url)
        assert alone.returncode == 0, alone.stderr
        # The checkpoint can, and names its own entry.
        caught = await nrhub("audit", "verify", "--checkpoint", str(checkpoint), database_url=url)
        line = assert_names_entry(caught, k)
        assert "rewritten" in line

        # Nor can the forger make a checkpoint of the rewritten log: another key's signature is refused,
        # even under the hub key's kid.
        forged_key = ECKey.generate_key("P-256")
        claims = {"entries": k, "head_hash": rewritten_head, "created_at": int(time.time())}
        forged = tmp_path / "forged.jws"
        forged.write_text(
            jws.serialize_compact(
                {"alg": "ES256", "kid": kid, "typ": "nrhub-audit-checkpoint"},
                orjson.dumps(claims),
                forged_key,
                algorithms=["ES256"],
            )
            + "\n"
        )
        refused = await nrhub("audit", "verify", "--checkpoint", str(forged), database_url=url)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert "not signed by a hub key" in refused.stderr


async def test_request_connections_cannot_rewrite_history(database_url: str) -> None:
    """The hub's pool (nrhub.db.pools.create_pool, as the running hub opens it) runs as nrhub_app."""
    async with asyncio.timeout(30):
        pool = await create_pool(Settings(pool_min_size=1, pool_max_size=1), database_url)
        try:
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT current_user") == APP_ROLE
                for table in ("audit_entry", "observation_revision"):
                    for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
                        assert not await conn.fetchval(
                            "SELECT has_table_privilege($1, $2, $3)", APP_ROLE, table, privilege
                        ), f"{APP_ROLE} holds {privilege} on {table}"
                    assert await conn.fetchval("SELECT has_table_privilege($1, $2, 'INSERT')", APP_ROLE, table)
                statements = [
                    "UPDATE audit_entry SET subject = subject WHERE seq = 1",
                    "DELETE FROM audit_entry WHERE seq = (SELECT max(seq) FROM audit_entry)",
                    "TRUNCATE audit_entry",
                    "UPDATE observation_revision SET value = value WHERE id = 1",
                    "DELETE FROM observation_revision WHERE id = 1",
                    "TRUNCATE observation_revision",
                ]
                for statement in statements:
                    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                        async with conn.transaction():
                            await conn.execute(statement)

                # Appending is what the role is for.
                head = await conn.fetchval("SELECT max(seq) FROM audit_entry")
                async with conn.transaction():
                    seq = await append_entry(
                        conn,
                        Actor(agency="VPCP", client=None, user="role-test"),
                        "test.role_check",
                        "audit_entry",
                        after={"checked": "append as nrhub_app"},
                        at=datetime.now(UTC),
                    )
                assert seq == head + 1
                assert await assert_linear_chain(conn) == seq
        finally:
            await pool.close()

        # The trigger is the second layer: even the administrator's own connection is refused.
        admin = await asyncpg.connect(database_url)
        try:
            # Verified as `nrhub audit verify` does, as the owner: the request role reads only the revisions
            # its grants reach (row-level security, migration 0013), so it cannot recompute their digests.
            result = await verify_chain(admin)
            assert result.problem is None and result.entries == seq
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await admin.execute("UPDATE audit_entry SET subject = subject WHERE seq = 1")
        finally:
            await admin.close()


def _client_id(token: str) -> str:
    payload = token.split(".")[1]
    return str(orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["client_id"])


AUDIT_TRAIL = """query($subject: String, $first: Int) {
  auditTrail(subject: $subject, first: $first) {
    edges { node { seq occurredAt actorAgency actorClient actorUser action subject before after requestId hash } }
  }
}"""


async def test_audit_trail_for_audit_read_only(report_hub: str, token_for, gql, clock, pool) -> None:
    async with asyncio.timeout(60):
        province = (await reporters(pool, MONTHLY))[-1]
        submitter = await token_for(province, "reports:submit")
        auditor = await token_for("VPCP", "audit:read")
        reviewer = await token_for("VPCP", "reports:review data:read field:growth")
        clock.now = datetime(2026, 8, 16, 2, 0, tzinfo=UTC)
        request_id = uuid.uuid4().hex
        async with httpx.AsyncClient(timeout=30) as http:
            opened = (
                await http.post(
                    f"{report_hub}/graphql",
                    json={"query": OPEN, "variables": {"r": MONTHLY, "p": "2026-M07", "k": key()}},
                    headers={"Authorization": f"Bearer {submitter}", "X-Request-Id": request_id},
                )
            ).json()
        submission = opened["data"]["openDraft"]["submissionId"]
        values = cell_values(MONTHLY, 40)
        saved = await gql(submitter, SAVE, s=submission, v=values, k=key())
        assert saved["data"]["saveValues"]["problems"] == []

        mine = await gql(auditor, AUDIT_TRAIL, subject=f"submission:{submission}")
        assert "errors" not in mine, mine
        entries = [e["node"] for e in mine["data"]["auditTrail"]["edges"]]
        assert [e["action"] for e in entries] == ["submission.values", "submission.open"]  # newest first
        assert entries[0]["seq"] > entries[1]["seq"]
        client = _client_id(submitter)
        for entry in entries:
            assert (entry["actorAgency"], entry["actorClient"]) == (province, client)
            assert entry["subject"] == f"submission:{submission}"
            assert len(entry["hash"]) == 64
        values_entry, open_entry = entries
        assert open_entry["requestId"] == request_id
        assert open_entry["after"]["period"] == "2026-M07" and open_entry["after"]["regime"] == MONTHLY
        assert open_entry["before"] is None
        # Saved cells: before (empty cells) and after, by cell.
        by_indicator = {cell.split("|")[-2]: v for cell, v in values_entry["after"].items()}
        assert by_indicator == {v["indicator"]: v["value"] for v in values}
        assert set(values_entry["before"]) == set(values_entry["after"])
        assert set(values_entry["before"].values()) == {None}

        latest = await gql(auditor, AUDIT_TRAIL, first=3)
        seqs = [e["node"]["seq"] for e in latest["data"]["auditTrail"]["edges"]]
        assert seqs == sorted(seqs, reverse=True) and len(seqs) == 3
        assert seqs[0] == await pool.fetchval("SELECT max(seq) FROM audit_entry")

        for token in (submitter, reviewer):
            refused = await gql(token, AUDIT_TRAIL, first=5)
            assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            assert (refused.get("data") or {}).get("auditTrail") is None
