"""``nrhub locks open`` and ``nrhub locks list``: lock exceptions from the command line.

    nrhub locks open --regime BC_KTXH_THANG --agency UBND_79 --period 2026-M10 \\
        --until 2026-12-20T23:59:59+07:00 --reason "Figures delayed by the flood" --as VPCP
    nrhub locks list [--regime CODE] [--period PERIOD] [--at INSTANT] [--json]

An operator opens an exception for the regime's receiving agency, named with --as, exactly as that
agency would with openLockException (resolvers/period_locks.py): the same checks (only the
receiving agency, a reporter of the regime, a period of its frequency, a reason, at most 90 days),
and the same audit entry (lock_exception.open), naming the operator's command as who opened it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nrhub.auth.operator_errors import OperatorError
from nrhub.cli import usage
from nrhub.config.settings import Settings
from nrhub.db.pools import connect
from nrhub.resolvers.audit import Actor
from nrhub.resolvers.errors import HubError
from nrhub.resolvers.hub_time import given, shown
from nrhub.resolvers.lock_exceptions import ListedException, list_exceptions
from nrhub.resolvers.period_locks import open_exception

WithDatabase = Callable[[Settings, Callable[[str], Any]], Any]


class LockCommandError(OperatorError):
    """A lock command cannot run; the message says why."""


def add_lock_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], with_database: WithDatabase
) -> None:
    locks = commands.add_parser(
        "locks", help="report locks", description="Lock exceptions: reprieves from a report's lock."
    )
    sub = locks.add_subparsers(title="locks commands", metavar="COMMAND")
    opening = sub.add_parser(
        "open",
        help="open a lock exception for one reporter and period",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    opening.add_argument("--regime", required=True, metavar="CODE")
    opening.add_argument("--agency", required=True, metavar="CODE", help="the reporting agency")
    opening.add_argument("--period", required=True, help="e.g. 2026-M10")
    opening.add_argument("--until", required=True, metavar="INSTANT", help="ISO 8601 with an offset")
    opening.add_argument("--reason", required=True, metavar="TEXT")
    opening.add_argument(
        "--as", dest="acting", required=True, metavar="AGENCY", help="the regime's receiving agency, acted for"
    )
    opening.set_defaults(run=lambda settings, args: _run(settings, with_database, lambda conn: _open(conn, args)))
    listing = sub.add_parser(
        "list",
        help="list lock exceptions and whether each report is locked",
        description="List lock exceptions, oldest first, one a line: id, regime, agency, period, expiry, whether "
        "the exception is in force and whether the report is locked (at --at, default now), who opened it, why.",
    )
    listing.add_argument("--regime", metavar="CODE", help="only this regime's")
    listing.add_argument("--period", help="only this period's")
    listing.add_argument("--at", metavar="INSTANT", help="judge at this instant (ISO 8601 with an offset)")
    listing.add_argument("--json", action="store_true", help="print a JSON array of objects")
    listing.set_defaults(run=lambda settings, args: _run(settings, with_database, lambda conn: _list(conn, args)))
    locks.set_defaults(run=lambda settings, args: usage(locks))


def _run(settings: Settings, with_database: WithDatabase, action: Callable[[Any], Any]) -> int:
    async def run(url: str) -> list[str]:
        conn = await connect(url)
        try:
            async with conn.transaction():
                lines: list[str] = await action(conn)
                return lines
        except HubError as exc:
            raise LockCommandError(exc.message) from None
        finally:
            await conn.close()

    for line in with_database(settings, run):
        print(line)
    return 0


def _instant(text: str, option: str) -> datetime:
    try:
        return given(text)
    except ValueError as exc:
        raise LockCommandError(f"{option}: {exc}") from None


async def _open(conn: Any, args: argparse.Namespace) -> list[str]:
    until = _instant(args.until, "--until")
    actor = Actor(agency=args.acting, client=None, user="nrhub locks open")
    opened = await open_exception(
        conn,
        actor,
        regime=args.regime,
        agency=args.agency,
        period=args.period,
        reason=args.reason,
        until=until,
        now=datetime.now(UTC),
    )
    return [
        f"lock exception {opened.id}: {opened.regime_code} {opened.agency_code} {opened.period} "
        f"may change until {shown(opened.expires_at)}"
    ]


async def _list(conn: Any, args: argparse.Namespace) -> list[str]:
    at = _instant(args.at, "--at") if args.at else datetime.now(UTC)
    found = await list_exceptions(conn, regime=args.regime, period=args.period, at=at)
    if args.json:
        return [json.dumps([_json(x) for x in found], ensure_ascii=False)]
    return [
        f"{x.exception.id}\t{x.exception.regime_code}\t{x.exception.agency_code}\t{x.exception.period}"
        f"\tuntil {shown(x.exception.expires_at)}\t{'in force' if x.in_force else 'not in force'}\t{_report(x)}"
        f"\t{x.exception.opened_by}\t{x.exception.reason}"
        for x in found
    ]


def _report(x: ListedException) -> str:
    if x.report_lock.locks_at is None:
        return "report never locks"
    return "report locked" if x.report_lock.locked else "report open"


def _json(x: ListedException) -> dict[str, Any]:
    e, lock = x.exception, x.report_lock
    return {
        "id": e.id,
        "regime": e.regime_code,
        "agency": e.agency_code,
        "period": e.period,
        "reason": e.reason,
        "opened_by": e.opened_by,
        "opened_at": shown(e.opened_at),
        "expires_at": shown(e.expires_at),
        "in_force": x.in_force,
        "report_locks_at": shown(lock.locks_at) if lock.locks_at else None,
        "report_locked": lock.locked,
    }
