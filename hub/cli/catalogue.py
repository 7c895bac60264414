"""``nrhub catalogue import FILE`` and ``nrhub catalogue seal``: the catalogue's audited way in.

    [[indicator]]                 # an existing indicator; only the columns given change
    code = "GDP_GROWTH"
    sensitivity = "PUBLIC"        # PUBLIC, INTERNAL or RESTRICTED
    source = "hub"                # or a federated source's name
    aggregation = "NONE"          # SUM, AVERAGE, LAST, NONE or RATIO (with numerator_code,
                                  # denominator_code and ratio_factor)

    [[unit]]                      # an existing unit, by code and the day it came into force
    code = "79"
    valid_from = 2025-07-01
    name_en = "Ho Chi Minh City"  # name_vi, name_en, kind, legal_basis, valid_to

    [[dimension_value]]           # a new value of a dimension, or a new name for one
    dimension = "SEX"
    code = "X"
    name_vi = "Khác"
    name_en = "Other"

Everything is applied in one transaction, each changed row audited with its values before and
after, and the catalogue sealed; when anything is wrong nothing is imported. ``seal`` records the
catalogue as it is now, naming the rows changed since the last seal, for a catalogue changed
otherwise (migrations, SQL by hand): ``nrhub audit verify`` names every row changed since a seal.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from nrhub.auth.operator_errors import OperatorError
from nrhub.config.settings import Settings
from nrhub.config.toml_files import read_toml
from nrhub.db.pools import connect
from nrhub.resolvers.audit import Actor
from nrhub.resolvers.catalogue_admin import (
    catalogue_rows,
    change_dimension_value,
    change_indicator,
    change_unit,
    last_seal,
    seal,
    unsealed,
)
from nrhub.resolvers.errors import HubError

WithDatabase = Callable[[Settings, Callable[[str], Any]], Any]


class CatalogueFileError(OperatorError):
    """The catalogue file cannot be read or applied; the message says where."""


def add_catalogue_commands(commands: argparse._SubParsersAction, with_database: WithDatabase) -> None:
    catalogue = commands.add_parser(
        "catalogue", help="indicators, units and dimension values", description="Catalogue commands."
    )
    sub = catalogue.add_subparsers(title="catalogue commands", metavar="COMMAND")
    load = sub.add_parser(
        "import",
        help="change indicators, units and dimension values from a TOML file, audited",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("file", type=Path)
    load.set_defaults(run=lambda settings, args: _import(settings, args.file, with_database))
    sealing = sub.add_parser(
        "seal",
        help="record the catalogue as it is now (audited), naming what changed since the last seal",
        description="Record the catalogue as it is now in the audit trail, with the rows changed since "
        "the last seal named in the entry; `nrhub audit verify` checks the catalogue against it.",
    )
    sealing.set_defaults(run=lambda settings, args: _seal(settings, with_database))
    catalogue.set_defaults(run=lambda settings, args: catalogue.print_help() or 2)


def _import(settings: Settings, file: Path, with_database: WithDatabase) -> int:
    data = read_toml(file, CatalogueFileError)
    unknown = set(data) - {"indicator", "unit", "dimension_value"}
    if unknown:
        raise CatalogueFileError(f"{file}: unknown table {', '.join(sorted(unknown))}")
    actor = Actor(agency=None, client=None, user="nrhub catalogue import")

    async def apply(url: str) -> list[str]:
        conn = await connect(url)
        now = datetime.now(UTC)
        try:
            async with conn.transaction():
                done = []
                for raw in data.get("indicator", []):
                    code, changes = _take(raw, file, "code")
                    if "ratio_factor" in changes:
                        changes["ratio_factor"] = Decimal(str(changes["ratio_factor"]))
                    if await change_indicator(conn, actor, code, changes, now=now):
                        done.append(f"changed indicator {code}")
                for raw in data.get("unit", []):
                    code, changes = _take(raw, file, "code")
                    valid_from = changes.pop("valid_from", None)
                    if not isinstance(valid_from, date):
                        raise CatalogueFileError(f"{file}: unit {code} needs valid_from = YYYY-MM-DD")
                    if await change_unit(conn, actor, code, valid_from, changes, now=now):
                        done.append(f"changed unit {code}@{valid_from}")
                for raw in data.get("dimension_value", []):
                    dimension, changes = _take(raw, file, "dimension")
                    code = str(changes.pop("code", ""))
                    if await change_dimension_value(conn, actor, dimension, code, changes, now=now):
                        done.append(f"changed dimension value {dimension}={code}")
                await seal(conn, actor, str(file), now=now)
                return done or ["no change"]
        except HubError as exc:
            raise CatalogueFileError(f"{file}: {exc.message}; nothing was imported") from None
        finally:
            await conn.close()

    for line in with_database(settings, apply):
        print(line)
    return 0


def _take(raw: Any, file: Path, key: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(raw, dict) or not isinstance(raw.get(key), str):
        raise CatalogueFileError(f'{file}: every entry needs {key} = "..."')
    changes = dict(raw)
    return str(changes.pop(key)), changes


def _seal(settings: Settings, with_database: WithDatabase) -> int:
    actor = Actor(agency=None, client=None, user="nrhub catalogue seal")

    async def apply(url: str) -> list[str]:
        conn = await connect(url)
        try:
            async with conn.transaction():
                sealed = await last_seal(conn)
                changed = unsealed(sealed, await catalogue_rows(conn)) if sealed is not None else []
                seq = await seal(conn, actor, "nrhub catalogue seal", now=datetime.now(UTC), unsealed=changed)
        finally:
            await conn.close()
        return [f"catalogue sealed in audit entry {seq}", *(f"  since the last seal: {c}" for c in changed)]

    for line in with_database(settings, apply):
        print(line)
    return 0
