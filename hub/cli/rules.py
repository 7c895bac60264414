"""``nrhub rules import FILE`` and ``nrhub rules analyse``: validation rules from TOML, and their
analysis over the stored data (``rules outliers`` and ``rules bounds``: hub/cli/outlier_bounds.py).

    [[rule]]
    code = "DOSSIERS_ONLINE_LE_TOTAL"
    name_vi = "Hồ sơ trực tuyến không vượt tổng số hồ sơ"
    name_en = "Online dossiers do not exceed all dossiers"
    expression = "DOSSIERS_ONLINE <= DOSSIERS_TOTAL"   # or left = "...", operator = "<=", right = "..."
    importance = "ERROR"                     # ERROR blocks submission; WARNING needs an explanation
    missing_value = "SKIP_IF_ANY_VALUE_MISSING"   # optional; or SKIP_IF_ALL_VALUES_MISSING, NEVER_SKIP
    regimes = ["BC_KTXH_THANG"]              # optional; none: every regime whose form holds its indicators

    [[rule]]
    code = "POPULATION_SEX_PARTS"
    name_vi = "Dân số nam và nữ cộng lại bằng tổng"
    name_en = "Male and female population add up to the total"
    expression = "POPULATION[SEX=M] + POPULATION[SEX=F] == POPULATION"
    importance = "WARNING"

A cell is INDICATOR or INDICATOR[DIMENSION=VALUE, ...]; sides are arithmetic (+ - * / parentheses).
Rules are created or replaced, each change audited, all in one transaction: a bad rule imports nothing.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nrhub.auth.operator_errors import OperatorError
from nrhub.cli import usage
from nrhub.cli.outlier_bounds import add_outlier_commands
from nrhub.config.settings import Settings
from nrhub.config.toml_files import read_toml
from nrhub.db.pools import connect
from nrhub.resolvers.audit import Actor, append_entry
from nrhub.resolvers.errors import HubError
from nrhub.resolvers.exact import written
from nrhub.resolvers.periods import Period, period_range
from nrhub.resolvers.rule_analysis import analyse, select_rules
from nrhub.resolvers.rules import RuleSpec, upsert_rule
from nrhub.resolvers.scope import Scope

WithDatabase = Callable[[Settings, Callable[[str], Any]], Any]
OPERATOR = Actor(agency=None, client=None, user="nrhub rules import")
_COMPARISON = re.compile(r"(<=|>=|==|!=|<|>)")


class RuleFileError(OperatorError):
    """The rules file cannot be read or applied, or an analysis cannot run; the message says why."""


def add_rule_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], with_database: WithDatabase
) -> None:
    rules = commands.add_parser("rules", help="validation rules", description="Validation rules.")
    sub = rules.add_subparsers(title="rules commands", metavar="COMMAND")
    load = sub.add_parser(
        "import",
        help="create or replace validation rules from a TOML file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("file", type=Path)
    load.set_defaults(run=lambda settings, args: _import(settings, args.file, with_database))
    analysis = sub.add_parser(
        "analyse",
        help="list what breaches the rules in the stored data",
        description="Run validation rules over current observations (every indicator: the operator's view), "
        "one breach a line: rule, unit, period, left value, operator, right value.",
    )
    analysis.add_argument("--from", dest="first", required=True, help="first period, e.g. 2021")
    analysis.add_argument("--to", dest="last", required=True, help="last period, of the same frequency")
    analysis.add_argument("--unit", default="VN", help="the unit whose subtree is analysed (default VN)")
    analysis.add_argument("--rule", action="append", help="a rule code (repeatable; default: every rule)")
    analysis.add_argument("--regime", action="append", help="rules checked under this regime (repeatable)")
    analysis.set_defaults(run=lambda settings, args: _analyse(settings, args, with_database))
    add_outlier_commands(sub, with_database)
    rules.set_defaults(run=lambda settings, args: usage(rules))


def _import(settings: Settings, file: Path, with_database: WithDatabase) -> int:
    specs = [_spec(r, file) for r in read_toml(file, RuleFileError).get("rule", [])]

    async def apply(url: str) -> list[str]:
        conn = await connect(url)
        now = datetime.now(UTC)
        try:
            async with conn.transaction():
                done = [f"{await upsert_rule(conn, OPERATOR, s, now=now)} {s.code}" for s in specs]
                if not done:
                    await append_entry(conn, OPERATOR, "rules.import", str(file), after={"changes": 0}, at=now)
                return done
        except HubError as exc:
            raise RuleFileError(f"{file}: {exc.message}; nothing was imported") from None
        finally:
            await conn.close()

    for line in with_database(settings, apply):
        print(line)
    return 0


def _spec(raw: Any, file: Path) -> RuleSpec:
    known = {"code", "name_vi", "name_en", "expression", "left", "operator", "right", "importance"}
    known |= {"missing_value", "regimes"}
    if not isinstance(raw, dict):
        raise RuleFileError(f"{file}: every [[rule]] must be a table")
    try:
        if "expression" in raw:
            left, operator, right = _split(str(raw["expression"]), file)
        else:
            left, operator, right = str(raw["left"]), str(raw["operator"]), str(raw["right"])
        return RuleSpec(
            code=str(raw["code"]),
            name_vi=str(raw["name_vi"]),
            name_en=str(raw["name_en"]),
            left_side=left,
            operator=operator,
            right_side=right,
            importance=str(raw["importance"]),
            missing_value=str(raw.get("missing_value", "SKIP_IF_ANY_VALUE_MISSING")),
            regimes=[str(r) for r in raw.get("regimes", [])],
            extra={k: v for k, v in raw.items() if k not in known},
        )
    except (KeyError, TypeError) as exc:
        raise RuleFileError(f"{file}: rule {raw.get('code', '?')} lacks or mistypes {exc}") from None


def _split(expression: str, file: Path) -> tuple[str, str, str]:
    parts = _COMPARISON.split(expression)
    if len(parts) != 3:
        raise RuleFileError(f"{file}: {expression!r} must hold exactly one of == != < <= > >=")
    return parts[0].strip(), parts[1], parts[2].strip()


def _analyse(settings: Settings, args: argparse.Namespace, with_database: WithDatabase) -> int:
    try:
        first, last = Period.parse(args.first), Period.parse(args.last)
    except HubError as exc:
        raise RuleFileError(exc.message) from None
    if first.frequency != last.frequency:
        raise RuleFileError("--from and --to must be periods of the same frequency")
    periods = [str(p) for p in period_range(first, last)]

    async def run(url: str) -> list[str]:
        conn = await connect(url)
        try:
            codes = [r["code"] for r in await conn.fetch("SELECT code FROM indicator ORDER BY code")]
            everything = Scope(tuple(codes), None, frozenset(codes))
            unit_id = await conn.fetchval(
                "SELECT id FROM admin_unit WHERE code = $1 ORDER BY valid_to IS NULL DESC, valid_from DESC LIMIT 1",
                args.unit,
            )
            if unit_id is None:
                raise RuleFileError(f"there is no unit {args.unit}")
            rules, skipped = await select_rules(conn, everything, args.rule, args.regime)
            found = await analyse(conn, everything, rules, skipped, periods, unit_id)
        except HubError as exc:
            raise RuleFileError(exc.message) from None
        finally:
            await conn.close()
        lines = [
            f"{v.rule.code} {v.unit_code} {v.period}: {written(v.left)} {v.rule.operator} {written(v.right)} is false"
            for v in found.violations
        ]
        more = " (truncated)" if found.truncated else ""
        return [*lines, f"{len(found.violations)} breach(es) of {len(found.rules_run)} rule(s){more}"]

    for line in with_database(settings, run):
        print(line)
    return 0
