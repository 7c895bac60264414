"""Rules the database itself enforces, whatever code writes to it.

Every test writes inside the ``conn`` fixture's transaction, which is rolled back, so the shared demo
database is left as it was. Each statement expected to fail runs in its own savepoint.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

import asyncpg
import pytest

_INSERT = """
INSERT INTO observation_revision (indicator_code, unit_id, period, dims, value, status, source,
                                  recorded_by, previous_id, reason)
VALUES ($1, $2, $3, $4, $5, 'OFFICIAL', 'test', 'test', $6, $7)
RETURNING id
"""
MONTHLY = "RETAIL"  # periodicity M in the reference catalogue
FUTURE = "2031-M01"  # a key the demo data has no value for


async def _unit(conn: asyncpg.Connection, code: str = "79") -> int:
    return await conn.fetchval("SELECT id FROM admin_unit WHERE code = $1 AND valid_to IS NULL", code)


async def _insert(
    conn: asyncpg.Connection,
    *,
    indicator: str = MONTHLY,
    unit: int,
    period: str = FUTURE,
    dims: str = "",
    value: object = Decimal("1.5"),
    previous: int | None = None,
    reason: str | None = None,
) -> int:
    async with conn.transaction():
        return await conn.fetchval(_INSERT, indicator, unit, period, dims, value, previous, reason)


async def _current(conn: asyncpg.Connection, unit: int, period: str = FUTURE) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT value, revision_id FROM observation_current"
        " WHERE indicator_code = $1 AND unit_id = $2 AND period = $3 AND dims = ''",
        MONTHLY,
        unit,
        period,
    )


async def test_a_revision_becomes_the_current_and_latest_value_and_a_correction_replaces_it(conn):
    unit = await _unit(conn)
    first = await _insert(conn, unit=unit, value=Decimal("10.25"))
    assert dict(await _current(conn, unit)) == {"value": Decimal("10.25"), "revision_id": first}

    second = await _insert(conn, unit=unit, value=Decimal("11.00"), previous=first, reason="typo")
    assert dict(await _current(conn, unit)) == {"value": Decimal("11.00"), "revision_id": second}
    latest = await conn.fetchrow(
        "SELECT period, revision_id FROM observation_latest WHERE indicator_code = $1 AND unit_id = $2 AND dims = ''",
        MONTHLY,
        unit,
    )
    assert dict(latest) == {"period": FUTURE, "revision_id": second}
    assert await conn.fetchval("SELECT count(*) FROM observation_revision WHERE id = ANY($1)", [first, second]) == 2


async def test_an_observation_of_an_unknown_indicator_or_unit_is_refused(conn):
    unit = await _unit(conn)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="indicator"):
        await _insert(conn, indicator="NO_SUCH_INDICATOR", unit=unit)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="admin_unit"):
        await _insert(conn, unit=-1)


@pytest.mark.parametrize("period", ["2026-M13", "2026Q1", "2026-Q5", "2026-M1", "26", "2026-H1", ""])
async def test_a_malformed_period_is_refused(conn, period):
    with pytest.raises(asyncpg.CheckViolationError, match="period"):
        await _insert(conn, unit=await _unit(conn), period=period)


async def test_a_period_of_another_frequency_than_the_indicator_is_refused(conn):
    unit = await _unit(conn)
    for period in ("2031-Q1", "2031", "2031-S1"):
        with pytest.raises(asyncpg.CheckViolationError, match="periodicity"):
            await _insert(conn, unit=unit, period=period)


async def test_a_second_current_value_for_one_key_is_refused(conn):
    unit = await _unit(conn)
    first = await _insert(conn, unit=unit)
    with pytest.raises(asyncpg.UniqueViolationError) as second_root:
        await _insert(conn, unit=unit, value=Decimal(2))
    assert second_root.value.constraint_name == "observation_revision_first"

    # Superseding a revision that was already superseded would fork the history.
    await _insert(conn, unit=unit, value=Decimal(2), previous=first, reason="revised")
    with pytest.raises(asyncpg.UniqueViolationError) as fork:
        await _insert(conn, unit=unit, value=Decimal(3), previous=first, reason="again")
    assert fork.value.constraint_name == "observation_revision_previous"

    # Nor can a second current row be written past the trigger: ``first`` is free to point at now.
    with pytest.raises(asyncpg.UniqueViolationError) as direct:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO observation_current (indicator_code, unit_id, period, dims, value, status,"
                " revision_id, source) VALUES ($1, $2, $3, '', 9, 'OFFICIAL', $4, 'test')",
                MONTHLY,
                unit,
                FUTURE,
                first,
            )
    assert direct.value.constraint_name == "observation_current_pkey"


async def test_a_correction_must_give_a_reason_and_keep_the_key(conn):
    unit = await _unit(conn)
    first = await _insert(conn, unit=unit)
    with pytest.raises(asyncpg.CheckViolationError):
        await _insert(conn, unit=unit, previous=first, reason=None)
    with pytest.raises(asyncpg.CheckViolationError):
        await _insert(conn, unit=unit, previous=first, reason="")
    with pytest.raises(asyncpg.CheckViolationError, match="same key"):
        await _insert(conn, unit=await _unit(conn, "01"), previous=first, reason="wrong key")


async def test_a_malformed_disaggregation_key_is_refused(conn):
    unit = await _unit(conn)
    for dims in ("sex=F", "SEX=F|", "SEX:F", "SEX=f"):
        with pytest.raises(asyncpg.CheckViolationError):
            await _insert(conn, unit=unit, dims=dims)


async def test_a_value_that_is_not_a_finite_number_is_refused(conn):
    for value in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(asyncpg.CheckViolationError):
            async with conn.transaction():
                await _insert(conn, unit=await _unit(conn), value=Decimal(value))


async def test_revisions_are_never_updated_deleted_or_truncated(conn):
    revision = await _insert(conn, unit=await _unit(conn))
    statements = [
        ("UPDATE observation_revision SET value = 0 WHERE id = $1", revision),
        ("DELETE FROM observation_revision WHERE id = $1", revision),
        ("TRUNCATE observation_revision CASCADE",),
    ]
    for statement, *args in statements:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            async with conn.transaction():
                await conn.execute(statement, *args)
    assert await conn.fetchval("SELECT value FROM observation_revision WHERE id = $1", revision) == Decimal("1.5")


async def test_audit_entries_are_never_updated_deleted_or_truncated(conn):
    seq = await conn.fetchval("SELECT coalesce(max(seq), 0) + 1 FROM audit_entry")
    await conn.execute(
        "INSERT INTO audit_entry (seq, occurred_at, action, subject, prev_hash, hash)"
        " VALUES ($1, now(), 'test.write', 'test', $2, $3)",
        seq,
        hashlib.sha256(b"previous").digest(),
        hashlib.sha256(b"this").digest(),
    )
    statements = [
        ("UPDATE audit_entry SET subject = 'altered' WHERE seq = $1", seq),
        ("DELETE FROM audit_entry WHERE seq = $1", seq),
        ("TRUNCATE audit_entry",),
    ]
    for statement, *args in statements:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            async with conn.transaction():
                await conn.execute(statement, *args)
    assert await conn.fetchval("SELECT subject FROM audit_entry WHERE seq = $1", seq) == "test"


async def test_one_unit_code_names_one_unit_on_any_day(conn):
    # The reform reused codes, so a code is unique only together with its validity.
    with pytest.raises(asyncpg.ExclusionViolationError, match="79"):
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO admin_unit (code, name_vi, name_en, level, parent_id, valid_from)"
                " SELECT '79', 'Trùng', 'Overlap', 'PROVINCE', id, '2030-01-01' FROM admin_unit"
                " WHERE code = 'VN'"
            )
