"""``nrhub agencies create`` and ``nrhub agencies list``: an agency added without SQL, audited.

An agency is part of the catalogue ``nrhub audit verify`` checks against its seal, so adding one
writes a ``catalogue.agency`` audit entry and seals the catalogue again, in the same transaction.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from nrhub.auth.operator_errors import OperatorError
from nrhub.config.settings import Settings
from nrhub.db.pools import connect
from nrhub.resolvers.agencies import Agency, AgencyKind, NewAgency, insert_agency, list_agencies
from nrhub.resolvers.audit import Actor
from nrhub.resolvers.catalogue_admin import catalogue_rows, last_seal, seal, unsealed
from nrhub.resolvers.errors import HubError
from nrhub.resolvers.pagination import PageRequest

WithDatabase = Callable[[Settings, Callable[[str], Any]], Any]
OPERATOR = Actor(agency=None, client=None, user="nrhub agencies create")
_LIST_PAGE = 500


class AgencyError(OperatorError):
    """An agency cannot be added; the message says why and nothing was changed."""


def add_agency_commands(commands: argparse._SubParsersAction, with_database: WithDatabase) -> None:
    agencies = commands.add_parser("agencies", help="agencies", description="Agencies that report and read.")
    sub = agencies.add_subparsers(title="agencies commands", metavar="COMMAND")
    create = sub.add_parser(
        "create",
        help="add an agency (audited; the catalogue is sealed again)",
        description="Add an agency, so that clients and people of it can be registered. A PROVINCIAL_COMMITTEE "
        "names the current province it reports for, a COMMUNE_COMMITTEE its commune (one committee per unit); other "
        "kinds name none. The addition is audited and the catalogue sealed again, so `nrhub audit verify` keeps "
        "passing.",
    )
    create.add_argument("--code", required=True, help="2-32 upper-case letters, digits or _, e.g. BKHCN")
    create.add_argument("--name-vi", required=True, help="the Vietnamese name")
    create.add_argument("--name-en", required=True, help="the English name")
    create.add_argument("--short-code", help="the abbreviation people use (default: the code)")
    create.add_argument("--kind", choices=[k.value for k in AgencyKind], default=AgencyKind.PARTNER.value)
    create.add_argument(
        "--unit",
        "--province",
        dest="unit",
        metavar="CODE",
        help="for a PROVINCIAL_COMMITTEE its province (e.g. 79), for a COMMUNE_COMMITTEE its commune (e.g. 26734)",
    )
    create.add_argument("--valid-from", type=_day, metavar="YYYY-MM-DD", help="in force from (default: today)")
    create.add_argument("--notes")
    create.set_defaults(run=lambda settings, args: with_database(settings, lambda url: _create(url, args)))
    listing = sub.add_parser("list", help="list agencies", description="List agencies, by code.")
    listing.add_argument("--kind", choices=[k.value for k in AgencyKind], help="only agencies of this kind")
    listing.add_argument("--json", action="store_true", help="print a JSON array of objects")
    listing.set_defaults(run=lambda settings, args: with_database(settings, lambda url: _list(url, args)))
    agencies.set_defaults(run=lambda settings, args: agencies.print_help() or 2)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


async def _create(url: str, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    new = NewAgency(
        code=args.code,
        short_code=args.short_code or args.code,
        name_vi=args.name_vi,
        name_en=args.name_en,
        kind=AgencyKind(args.kind),
        unit=args.unit,
        valid_from=args.valid_from or now.date(),
        notes=args.notes,
    )
    conn = await connect(url)
    try:
        async with conn.transaction():
            # Rows changed since the last seal by other means are named in the new seal, not hidden by it.
            sealed = await last_seal(conn)
            changed = unsealed(sealed, await catalogue_rows(conn)) if sealed is not None else []
            agency = await insert_agency(conn, OPERATOR, new, now=now)
            await seal(conn, OPERATOR, f"nrhub agencies create {agency.code}", now=now, unsealed=changed)
    except HubError as exc:
        raise AgencyError(f"{exc.message}; nothing was added") from None
    finally:
        await conn.close()
    print(f"agency {agency.code} ({agency.kind}) created")
    return 0


async def _list(url: str, args: argparse.Namespace) -> int:
    conn = await connect(url)
    try:
        agencies = await _all_agencies(conn, args.kind)
    finally:
        await conn.close()
    if args.json:
        print(json.dumps([_agency_json(a) for a in agencies], ensure_ascii=False))
        return 0
    for a in agencies:
        print(f"{a.code}\t{a.kind}\t{a.short_code}\t{a.name_en}\t{a.name_vi}")
    return 0


async def _all_agencies(conn: asyncpg.Connection, kind: str | None) -> list[Agency]:
    found: list[Agency] = []
    after: tuple[str, ...] | None = None
    while True:
        page = await list_agencies(conn, PageRequest(_LIST_PAGE, after), kind=kind)
        found += page.items
        if not page.has_next_page:
            return found
        after = (page.items[-1].code,)


def _agency_json(agency: Agency) -> dict[str, Any]:
    return {
        "code": agency.code,
        "short_code": agency.short_code,
        "name_vi": agency.name_vi,
        "name_en": agency.name_en,
        "kind": agency.kind,
        "valid_from": agency.valid_from.isoformat(),
        "valid_to": agency.valid_to.isoformat() if agency.valid_to else None,
        "notes": agency.notes,
    }
