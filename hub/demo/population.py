"""The demo's national population database: a separate PostgreSQL database, ``popdb``, on the
hub's own server, that the hub reads as the federated source ``popdb`` (hub/demo/sources.toml).

It stands for the national population database (Cơ sở dữ liệu quốc gia về dân cư): residents by
commune, month and sex, in that database's own tables and naming, which the source's SQL maps to
the hub's shape. Every figure is synthetic (from a fixed seed), for the demo's synthetic communes,
from July 2025 (when the current communes came into force) to the demo's last month.
"""

from __future__ import annotations

import random
from datetime import date

import asyncpg

from nrhub.config.sources import same_server
from nrhub.db.pools import connect
from nrhub.demo.synthetic import LAST_MONTH, REFORM, SEED
from nrhub.resolvers.periods import period_range

DATABASE = "popdb"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commune (
    code          text PRIMARY KEY,
    province_code text NOT NULL,
    name          text NOT NULL
);
CREATE TABLE IF NOT EXISTS resident_count (
    commune_code text NOT NULL REFERENCES commune (code),
    month        date NOT NULL CHECK (extract(day FROM month) = 1),
    sex          char(1) NOT NULL CHECK (sex IN ('M', 'F')),
    persons      integer NOT NULL CHECK (persons >= 0),
    PRIMARY KEY (commune_code, month, sex)
);
"""
_COMMUNES = """
SELECT c.code, p.code AS province_code, c.name_vi FROM admin_unit c JOIN admin_unit p ON p.id = c.parent_id
WHERE c.level = 'COMMUNE' AND c.valid_to IS NULL ORDER BY c.code
"""
_INSERT_COUNTS = """
INSERT INTO resident_count (commune_code, month, sex, persons)
SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::int[])
ON CONFLICT DO NOTHING
"""


async def load_population(hub_url: str, database: str = DATABASE) -> dict[str, object]:
    """Create (or complete) ``popdb`` beside the hub's database; idempotent like the rest of the demo."""
    conn = await connect(hub_url)
    try:
        communes = await conn.fetch(_COMMUNES)
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{database}"')
            except asyncpg.DuplicateDatabaseError:
                pass  # another loader created it meanwhile
            except asyncpg.InsufficientPrivilegeError:
                return {"population database": "not created (no CREATEDB privilege)"}
    finally:
        await conn.close()
    pop = await connect(same_server(hub_url, database))
    try:
        async with pop.transaction():
            await pop.execute(_SCHEMA)
            await pop.executemany(
                "INSERT INTO commune (code, province_code, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                [(r["code"], r["province_code"], r["name_vi"]) for r in communes],
            )
            await pop.execute(_INSERT_COUNTS, *_columns([r["code"] for r in communes]))
        rows = await pop.fetchval("SELECT count(*) FROM resident_count")
    finally:
        await pop.close()
    return {"population database": f"{database}, {rows} resident counts"}


def _columns(communes: list[str]) -> tuple[list[str], list[date], list[str], list[int]]:
    codes: list[str] = []
    months: list[date] = []
    sexes: list[str] = []
    persons: list[int] = []
    for code in communes:
        rng = random.Random(f"{SEED}:popdb:{code}")
        base = rng.uniform(15_000, 250_000)
        female = rng.uniform(0.49, 0.52)
        for n, month in enumerate(period_range(REFORM, LAST_MONTH)):
            total = base * (1 + 0.0008 * n) * rng.uniform(0.999, 1.001)
            for sex, share in (("F", female), ("M", 1 - female)):
                codes.append(code)
                months.append(month.start)
                sexes.append(sex)
                persons.append(round(total * share))
    return codes, months, sexes, persons
