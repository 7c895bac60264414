"""``nrhub regimes import FILE [--replace-holidays]``: regimes and holidays from TOML, each change audited.

    [[holiday]]
    day = 2026-09-02
    name = "National Day"

    [[regime]]
    code = "BC_THUONG_MAI_THANG"
    name_vi = "Báo cáo thương mại tháng"
    name_en = "Monthly trade report"
    legal_basis = "Decree 09/2019/NĐ-CP"
    issuing_agency = "VPCP"
    receiving_agency = "VPCP"
    frequency = "M"                      # M, Q, S, A or W; every item's indicator has this periodicity
    cutoff_start_day = 15                # optional; Decree 09/2019 default
    cutoff_end_day = 14                  # optional
    deadline = { rule = "WORKING_DAYS_AFTER_CUTOFF", days = 2 }   # or DAYS_AFTER_CUTOFF, DAY_OF_NEXT_MONTH
    observation_status = "OFFICIAL"      # optional
    jump_threshold = 0.5                 # optional: warn when a value moves more than 50 %
    allow_early = false                  # optional: drafts before the cut-off window opens
    expiry_days = 15                     # optional: a report locks 15 days after its deadline (default: never)
    reporters = "PROVINCES"              # or a list of agency codes
    items = [ { indicator = "RETAIL", min = 0 }, { indicator = "EXPORT", disaggregation = "OWNERSHIP=FDI" } ]

A weekly regime (frequency = "W", periods 2026-W05) has the week as its cut-off window (leave the
cut-off days out) and counts DAYS_AFTER_CUTOFF or WORKING_DAYS_AFTER_CUTOFF from the week's Sunday;
DAY_OF_NEXT_MONTH is refused. An ad-hoc (đột xuất) regime is a one-off request for one period by one
instant: no cut-off days, no deadline rule, holidays do not move it; its items have the period's
periodicity.

    [[regime]]
    code = "BC_THIET_HAI_BAO_10"
    # ... names, legal basis, agencies, reporters and items as above
    frequency = "ADHOC"
    period = "2026-M10"                  # the one period it asks for: any period
    deadline = 2026-11-05T17:00:00+07:00  # the one-off deadline, with its offset (or the same, quoted)

A regime names its approval chain, level 1 first (none: the receiving agency decides alone), the level
whose approval publishes the values (default: the last), and the regime it consolidates:

    [[regime]]
    code = "BC_TINH_THANG"
    # ... as above
    consolidates = "BC_XA_THANG"         # optional: consolidateReport combines its communes' reports
    publish_level = 3                    # optional
    levels = [
      { name_vi = "UBND tỉnh phê duyệt", name_en = "Provincial committee approves", acted_by = "REPORTER" },
      { name_vi = "Bộ tiếp nhận", name_en = "Ministry accepts", acted_by = "AGENCY", agency = "BNV" },
      { name_vi = "Văn phòng Chính phủ", name_en = "Government Office", acted_by = "AGENCY", agency = "VPCP" },
    ]                                    # acted_by: REPORTER, UNIT_ABOVE (the unit above's committee) or AGENCY

A regime named in the file is written whole: its reporters, form and levels become the file's. Holidays in
the file are added to the stored list (a day already there takes the file's name) and no day is
removed; with --replace-holidays the file's list becomes the whole list, and a stored day it does
not name stops being a holiday. Either way the output says how many days the list held before and
after, and how many drafts' deadlines moved with it. Everything is applied in one transaction; a file
that is refused changes nothing and ends with one line and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from nrhub.auth.operator_errors import OperatorError
from nrhub.config.settings import Settings
from nrhub.config.toml_files import read_toml
from nrhub.db.pools import connect
from nrhub.resolvers.approval_levels import Level
from nrhub.resolvers.audit import Actor, append_entry
from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.regime_admin import (
    HolidayChange,
    ItemSpec,
    RegimeSpec,
    merge_holidays,
    replace_holidays,
    upsert_regime,
)

WithDatabase = Callable[[Settings, Callable[[str], Any]], Any]
OPERATOR = Actor(agency=None, client=None, user="nrhub regimes import")


class RegimeFileError(OperatorError):
    """The regimes file cannot be read or applied; the message says where."""


def add_regime_commands(commands: argparse._SubParsersAction, with_database: WithDatabase) -> None:
    regimes = commands.add_parser("regimes", help="reporting regimes", description="Reporting regimes.")
    sub = regimes.add_subparsers(title="regimes commands", metavar="COMMAND")
    load = sub.add_parser(
        "import",
        help="create or replace regimes (and holidays) from a TOML file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("file", type=Path)
    load.add_argument(
        "--replace-holidays",
        action="store_true",
        help="make the file's holidays the whole stored list (default: add them to it)",
    )
    load.set_defaults(run=lambda settings, args: _refused(_import, settings, args, with_database))
    regimes.set_defaults(run=lambda settings, args: regimes.print_help() or 2)


def _refused(command: Callable[..., int], *args: Any) -> int:
    """A file the hub refuses is the operator's input to fix, as argparse's own errors are: exit status 2."""
    try:
        return command(*args)
    except RegimeFileError as exc:
        print(f"nrhub: error: {exc}", file=sys.stderr)
        return 2


def _import(settings: Settings, args: argparse.Namespace, with_database: WithDatabase) -> int:
    file: Path = args.file
    data = read_toml(file, RegimeFileError)
    specs = [_spec(r, file) for r in data.get("regime", [])]
    holidays = {_date(h, file): str(h.get("name", "")) for h in data.get("holiday", [])} if "holiday" in data else None

    async def apply(url: str) -> list[str]:
        conn = await connect(url)
        now = datetime.now(UTC)
        try:
            async with conn.transaction():
                done = [f"{await upsert_regime(conn, OPERATOR, s, now=now)} {s.code}" for s in specs]
                if holidays is not None:
                    store = replace_holidays if args.replace_holidays else merge_holidays
                    done.append(_said(await store(conn, OPERATOR, holidays, now=now), args.replace_holidays))
                if not done:
                    await append_entry(conn, OPERATOR, "regimes.import", str(file), after={"changes": 0}, at=now)
                return done
        except BadUserInput as exc:
            raise RegimeFileError(f"{file}: {exc.message}; nothing was imported") from None
        finally:
            await conn.close()

    for line in with_database(settings, apply):
        print(line)
    return 0


def _said(change: HolidayChange, replaced: bool) -> str:
    how = "replaced the stored list" if replaced else "added to the stored list"
    return (
        f"holidays: {how}, {change.before} day(s) before, {change.after} after; {change.drafts} draft deadline(s) moved"
    )


def _spec(raw: dict[str, Any], file: Path) -> RegimeSpec:
    known = {
        "code",
        "name_vi",
        "name_en",
        "legal_basis",
        "issuing_agency",
        "receiving_agency",
        "frequency",
        "cutoff_start_day",
        "cutoff_end_day",
        "deadline",
        "period",
        "observation_status",
        "jump_threshold",
        "allow_early",
        "expiry_days",
        "reporters",
        "items",
        "levels",
        "publish_level",
        "consolidates",
    }
    try:
        rule, days, one_off = _deadline(raw.get("deadline"), raw.get("code", "?"), file)
        reporters = raw["reporters"]
        return RegimeSpec(
            code=raw["code"],
            name_vi=raw["name_vi"],
            name_en=raw["name_en"],
            legal_basis=raw["legal_basis"],
            issuing_agency=raw["issuing_agency"],
            receiving_agency=raw["receiving_agency"],
            frequency=raw["frequency"],
            deadline_rule=rule,
            deadline_value=days,
            reporters=["PROVINCES"] if reporters == "PROVINCES" else list(reporters),
            items=[
                ItemSpec(
                    i["indicator"],
                    i.get("disaggregation", ""),
                    bool(i.get("required", True)),
                    _decimal(i.get("min")),
                    _decimal(i.get("max")),
                )
                for i in raw["items"]
            ],
            cutoff_start_day=int(raw.get("cutoff_start_day", 15)),
            cutoff_end_day=int(raw.get("cutoff_end_day", 14)),
            observation_status=raw.get("observation_status", "OFFICIAL"),
            jump_threshold=_decimal(raw.get("jump_threshold")),
            allow_early=bool(raw.get("allow_early", False)),
            expiry_days=None if raw.get("expiry_days") is None else int(raw["expiry_days"]),
            period=None if raw.get("period") is None else str(raw["period"]),
            deadline=one_off,
            levels=[
                Level(n, lv["name_vi"], lv["name_en"], lv["acted_by"], lv.get("agency"))
                for n, lv in enumerate(raw.get("levels", []), start=1)
            ],
            publish_level=None if raw.get("publish_level") is None else int(raw["publish_level"]),
            consolidates=raw.get("consolidates"),
            extra={k: v for k, v in raw.items() if k not in known},
        )
    except (KeyError, TypeError) as exc:
        raise RegimeFileError(f"{file}: regime {raw.get('code', '?')} lacks or mistypes {exc}") from None


def _deadline(raw: Any, code: str, file: Path) -> tuple[str | None, int | None, datetime | None]:
    """(rule, days, None) from a recurring regime's ``{ rule = ..., days = N }``; (None, None, instant)
    from an ad-hoc one's instant, a TOML offset date-time or the same written as a string. An instant
    without an offset is passed on, for upsert_regime to refuse with the others' reasons."""
    if raw is None:
        return None, None, None
    if isinstance(raw, dict):
        days: Any = raw.get("days", raw.get("day", 0))
        return raw.get("rule"), int(days), None
    if isinstance(raw, str):
        try:
            return None, None, datetime.fromisoformat(raw)
        except ValueError:
            pass
    elif isinstance(raw, datetime):
        return None, None, raw
    raise RegimeFileError(
        f"{file}: regime {code}: deadline is either {{ rule = ..., days = N }} or an instant with its offset,"
        f" e.g. 2026-11-05T17:00:00+07:00; got {raw!r}"
    )


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _date(raw: dict[str, Any], file: Path) -> date:
    day = raw.get("day")
    if not isinstance(day, date):
        raise RegimeFileError(f"{file}: every holiday needs a day = YYYY-MM-DD")
    return day
