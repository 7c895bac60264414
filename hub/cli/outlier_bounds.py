"""``nrhub rules outliers`` and ``nrhub rules bounds``: a regime's outlier method, and its min-max
bounds generated from each unit's history (resolvers/outlier_bounds.py), as the admin mutations do.

    nrhub rules outliers --regime BC_KTXH_THANG                    # prints the method
    nrhub rules outliers --regime BC_KTXH_THANG --method MIN_MAX   # sets it (audited)
    nrhub rules bounds generate --regime BC_KTXH_THANG [--unit 79] [--k 3]
    nrhub rules bounds list --regime BC_KTXH_THANG [--unit 79] [--json]

The operator reads every indicator: ``bounds list`` shows every stored bound.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from nrhub.auth.operator_errors import OperatorError
from nrhub.cli import usage
from nrhub.config.settings import Settings
from nrhub.db.pools import connect
from nrhub.resolvers.audit import Actor
from nrhub.resolvers.errors import HubError
from nrhub.resolvers.exact import written
from nrhub.resolvers.hub_time import shown
from nrhub.resolvers.outlier_bounds import (
    DEFAULT_K,
    OUTLIER_METHODS,
    generate_bounds,
    list_bounds,
    outlier_method,
    require_regime,
    set_outlier_method,
    unit_in_force,
)
from nrhub.resolvers.scope import Scope

WithDatabase = Callable[[Settings, Callable[[str], Any]], Any]


class OutlierCommandError(OperatorError):
    """An outlier method or bounds command cannot run; the message says why."""


def add_outlier_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], with_database: WithDatabase) -> None:
    """``outliers`` and ``bounds`` under ``nrhub rules``."""
    method = sub.add_parser(
        "outliers",
        help="show or set a regime's outlier method",
        description="Show a regime's outlier method, or set it with --method (audited): Z_SCORE (the default), "
        "MIN_MAX (the bounds `rules bounds generate` stores) or NONE.",
    )
    method.add_argument("--regime", required=True, metavar="CODE")
    method.add_argument("--method", choices=OUTLIER_METHODS, help="set this method")
    method.set_defaults(run=lambda settings, args: _run(settings, with_database, lambda conn: _method(conn, args)))

    bounds = sub.add_parser("bounds", help="min-max outlier bounds", description="Min-max outlier bounds.")
    commands = bounds.add_subparsers(title="bounds commands", metavar="COMMAND")
    generate = commands.add_parser(
        "generate",
        help="generate a regime's min-max bounds from history",
        description="For each cell of the regime's form and each reporter's unit (or --unit only): the mean of "
        "the cell's last 24 periods ± k population standard deviations, rounded outward to the indicator's "
        "decimals; a cell with fewer than 6 periods gets none. Replaces those units' bounds; audited.",
    )
    generate.add_argument("--regime", required=True, metavar="CODE")
    generate.add_argument("--unit", metavar="CODE", help="only this unit (in force today)")
    generate.add_argument("--k", default=str(DEFAULT_K), help="standard deviations either side (default 3)")
    generate.set_defaults(run=lambda settings, args: _run(settings, with_database, lambda conn: _generate(conn, args)))
    listing = commands.add_parser(
        "list",
        help="list a regime's stored bounds",
        description="List a regime's stored bounds, one cell a line: unit, indicator, disaggregation (- for the "
        "total), min, max, and the periods they were generated from.",
    )
    listing.add_argument("--regime", required=True, metavar="CODE")
    listing.add_argument("--unit", metavar="CODE", help="only this unit (in force today)")
    listing.add_argument("--json", action="store_true", help="print a JSON array of objects")
    listing.set_defaults(run=lambda settings, args: _run(settings, with_database, lambda conn: _list(conn, args)))
    bounds.set_defaults(run=lambda settings, args: usage(bounds))


def _run(settings: Settings, with_database: WithDatabase, action: Callable[[Any], Any]) -> int:
    async def run(url: str) -> list[str]:
        conn = await connect(url)
        try:
            async with conn.transaction():
                lines: list[str] = await action(conn)
                return lines
        except HubError as exc:
            raise OutlierCommandError(exc.message) from None
        finally:
            await conn.close()

    for line in with_database(settings, run):
        print(line)
    return 0


async def _method(conn: Any, args: argparse.Namespace) -> list[str]:
    if args.method is None:
        await require_regime(conn, args.regime)
        return [await outlier_method(conn, args.regime)]
    actor = Actor(agency=None, client=None, user="nrhub rules outliers")
    return [await set_outlier_method(conn, actor, args.regime, args.method, now=datetime.now(UTC))]


async def _generate(conn: Any, args: argparse.Namespace) -> list[str]:
    try:
        k = Decimal(args.k)
    except InvalidOperation:
        raise OutlierCommandError(f"--k {args.k} is not a number") from None
    actor = Actor(agency=None, client=None, user="nrhub rules bounds generate")
    done = await generate_bounds(conn, actor, args.regime, unit=args.unit, k=k, now=datetime.now(UTC))
    where = f"unit {args.unit}" if args.unit else "its reporters' units"
    return [
        f"{done.cells} cell(s) of {args.regime} got bounds (mean ± {written(k)} standard deviations) for {where}; "
        f"{done.skipped} had fewer than 6 periods of history"
    ]


async def _list(conn: Any, args: argparse.Namespace) -> list[str]:
    await require_regime(conn, args.regime)
    unit_id = await unit_in_force(conn, args.unit, datetime.now(UTC)) if args.unit else None
    codes = [r["code"] for r in await conn.fetch("SELECT code FROM indicator ORDER BY code")]
    found = await list_bounds(conn, Scope(tuple(codes), None, frozenset(codes)), args.regime, unit_id)
    if args.json:
        objects = [
            {
                "unit": b.unit_code,
                "indicator": b.indicator_code,
                "disaggregation": b.dims,
                "min": written(b.min_value),
                "max": written(b.max_value),
                "mean": written(b.mean),
                "standard_deviation": written(b.std_dev),
                "k": written(b.k),
                "history_size": b.history_size,
                "first_period": b.first_period,
                "last_period": b.last_period,
                "generated_by": b.generated_by,
                "generated_at": shown(b.generated_at),
            }
            for b in found
        ]
        return [json.dumps(objects, ensure_ascii=False)]
    return [
        f"{b.unit_code}\t{b.indicator_code}\t{b.dims or '-'}\t{written(b.min_value)}\t{written(b.max_value)}"
        f"\t{b.history_size} periods {b.first_period}..{b.last_period}"
        for b in found
    ]
