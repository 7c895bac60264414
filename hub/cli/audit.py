"""``nrhub audit verify [--checkpoint FILE]`` and ``nrhub audit checkpoint FILE``.

A checkpoint is a JWS (ES256, signed with the hub's current signing key) over the entry count and
the head hash. Verifying against it catches what the chain alone cannot: a tail rewritten in full,
with every hash recomputed, no longer ends in the head the checkpoint recorded.

Verify also proves what is served (resolvers.audit.verify_served): the API reads observation_current
and observation_latest, not the chain, so a figure edited there, or a revision added without its
audit entry, must fail verify as surely as an edited entry. So must a catalogue changed since its
last seal (resolvers.catalogue_admin): an indicator made PUBLIC or a source repointed by SQL.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from nrhub.auth.keys import ALGORITHM, rotate_key
from nrhub.auth.operator_errors import OperatorError
from nrhub.config.settings import Settings
from nrhub.db.pools import connect
from nrhub.resolvers.audit import verify_chain, verify_served
from nrhub.resolvers.catalogue_admin import verify_catalogue

WithDatabase = Callable[[Settings, Callable[[str], Any]], Any]


class AuditFailure(OperatorError):
    """The audit log does not verify; the message names the first bad entry."""


def add_audit_commands(commands: argparse._SubParsersAction, with_database: WithDatabase) -> None:
    audit = commands.add_parser(
        "audit",
        help="verify the audit chain, write signed checkpoints",
        description="The append-only, hash-chained audit log.",
    )
    sub = audit.add_subparsers(title="audit commands", metavar="COMMAND")
    verify = sub.add_parser(
        "verify",
        help="recompute the chain, the values it covers and the served tables; name the first problem",
        description="Recompute every entry's hash and the digests of the observation values entries cover; "
        "check that every observation revision is covered by an entry, and that observation_current and "
        "observation_latest (what the API serves) are exactly what the revisions say, and that the catalogue "
        "(indicators, units, dimensions, agencies) is as last sealed by `nrhub catalogue`. Exit 0 when all "
        "verify; else exit 1 naming the first bad entry, or the revisions and served rows that differ. With "
        "--checkpoint, also check that the chain still passes through the checkpoint's head.",
    )
    verify.add_argument("--checkpoint", type=Path, help="a file written by `nrhub audit checkpoint`")
    verify.set_defaults(
        run=lambda settings, args: with_database(settings, lambda url: _verify(url, _read_checkpoint(args.checkpoint)))
    )
    checkpoint = sub.add_parser(
        "checkpoint",
        help="write a signed checkpoint (entry count, head hash) to a file",
        description="Verify the chain, then write its entry count and head hash, signed with the hub's "
        "signing key, to FILE. Keep checkpoints away from the database.",
    )
    checkpoint.add_argument("file", type=Path)
    checkpoint.set_defaults(run=lambda settings, args: _write_checkpoint(settings, args.file, with_database))
    audit.set_defaults(run=lambda settings, args: audit.print_help() or 2)


def _read_checkpoint(file: Path | None) -> str | None:
    if file is None:
        return None
    try:
        return file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AuditFailure(f"cannot read checkpoint {file}: {exc.strerror}") from None


def _write_checkpoint(settings: Settings, file: Path, with_database: WithDatabase) -> int:
    token, entries, head = with_database(settings, lambda url: _checkpoint(url, settings.token_lifetime))
    file.write_text(token + "\n", encoding="utf-8")
    print(f"checkpoint written to {file}: {entries} entries, head {head}")
    return 0


async def _verify(url: str, checkpoint: str | None) -> int:
    conn = await connect(url)
    try:
        # One snapshot for every check: a report accepted meanwhile is seen whole or not at all.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            result = await verify_chain(conn)
            if result.problem:
                raise AuditFailure(result.problem)
            if checkpoint is not None:
                await _check_checkpoint(conn, checkpoint)
            problem = await verify_served(conn)
            if problem:
                raise AuditFailure(problem)
            seal, problem = await verify_catalogue(conn)
            if problem:
                raise AuditFailure(problem)
    finally:
        await conn.close()
    catalogue = f"the catalogue matches its seal (entry {seal})" if seal else "the catalogue was never sealed"
    print(
        f"audit chain verifies: {result.entries} entries, head {result.head_hash.hex()};"
        f" every revision is audited and the served tables match them; {catalogue}"
    )
    return 0


async def _checkpoint(url: str, token_lifetime: int) -> tuple[str, int, str]:
    conn = await connect(url)
    try:
        result = await verify_chain(conn)
        if result.problem:
            raise AuditFailure(f"no checkpoint written: {result.problem}")
        row = await conn.fetchrow(
            "SELECT kid, private_jwk FROM signing_key WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1"
        )
        if row is None:
            await rotate_key(conn, token_lifetime)
            row = await conn.fetchrow("SELECT kid, private_jwk FROM signing_key WHERE retired_at IS NULL")
        key = ECKey.import_key(_json(row["private_jwk"]))
        claims = {"entries": result.entries, "head_hash": result.head_hash.hex(), "created_at": int(time.time())}
        token = jws.serialize_compact(
            {"alg": ALGORITHM, "kid": row["kid"], "typ": "nrhub-audit-checkpoint"},
            orjson.dumps(claims),
            key,
            algorithms=[ALGORITHM],
        )
    finally:
        await conn.close()
    return token, result.entries, result.head_hash.hex()


async def _check_checkpoint(conn: asyncpg.Connection, token: str) -> None:
    # Every key the hub ever had: checkpoints outlive the JWKS publication of their key.
    keys = KeySet(
        [ECKey.import_key(_json(r["public_jwk"])) for r in await conn.fetch("SELECT public_jwk FROM signing_key")]
    )
    try:
        claims = orjson.loads(jws.deserialize_compact(token, keys, algorithms=[ALGORITHM]).payload)
    except (JoseError, ValueError) as exc:
        raise AuditFailure(f"the checkpoint is not signed by a hub key: {exc}") from None
    count, head = int(claims["entries"]), claims["head_hash"]
    if count == 0:
        return  # a checkpoint of the empty log: any log extends it
    stored = await conn.fetchval("SELECT hash FROM audit_entry WHERE seq = $1", count)
    if stored is None:
        raise AuditFailure(f"the log has fewer entries than the checkpoint's {count}: entries were removed")
    if bytes(stored).hex() != head:
        raise AuditFailure(
            f"entry {count} no longer has the hash the checkpoint recorded: the log was rewritten up to entry {count}"
        )


def _json(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else dict(orjson.loads(value))
