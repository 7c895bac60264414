"""Three demo reporting regimes under Decree 09/2019/NĐ-CP (codes and forms are the hub's own)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from nrhub.resolvers.audit import SYSTEM
from nrhub.resolvers.regime_admin import ItemSpec, RegimeSpec, upsert_regime

# code, name_vi, name_en, legal basis, frequency, deadline rule, deadline value, reporters, items
REGIMES = [
    (
        "BC_KTXH_THANG",
        "Báo cáo tình hình kinh tế - xã hội tháng",
        "Monthly socio-economic situation report",
        "Decree 09/2019/NĐ-CP; Circular 01/2020/TT-VPCP",
        "M",
        "WORKING_DAYS_AFTER_CUTOFF",
        2,
        "PROVINCES",
        [
            "RETAIL",
            "BUDGET_REV",
            "BUDGET_EXP",
            "NEW_ENT",
            "TRAFFIC_DEATHS",
            "DOSSIERS_ONLINE",
            "DOSSIERS_TOTAL",
        ],
    ),
    (
        "BC_BO_QUY",
        "Báo cáo quý của bộ, ngành",
        "Quarterly ministry report",
        "Decree 09/2019/NĐ-CP",
        "Q",
        "DAYS_AFTER_CUTOFF",
        5,
        ["BTC", "NHNN"],
        ["GDP_CUR", "INV_TOTAL", "UNEMPLOYED", "LABOUR_FORCE"],
    ),
    (
        "BC_KTXH_NAM",
        "Báo cáo kinh tế - xã hội năm",
        "Annual socio-economic report",
        "Decree 09/2019/NĐ-CP",
        "A",
        "DAY_OF_NEXT_MONTH",
        20,
        "PROVINCES",
        ["POOR_HH", "HOUSEHOLDS", "HI_INSURED", "POP_COVER_BASE", "FOREST_AREA", "LAND_AREA"],
    ),
]


async def load_regimes(conn: asyncpg.Connection) -> None:
    """Create each demo regime that does not exist yet, through the audited path operators use.

    A regime that exists is left as it is: an operator may have changed its form or reporters
    (`nrhub regimes import`, upsertRegime), and `nrhub demo load` runs on every `make run`.
    """
    now = datetime.now(UTC)
    for code, vi, en, basis, freq, rule, value, reporters, items in REGIMES:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM regime WHERE code = $1)", code):
            continue
        spec = RegimeSpec(
            code=code,
            name_vi=vi,
            name_en=en,
            legal_basis=basis,
            issuing_agency="VPCP",
            receiving_agency="VPCP",
            frequency=freq,
            deadline_rule=rule,
            deadline_value=value,
            reporters=["PROVINCES"] if reporters == "PROVINCES" else list(reporters),
            items=[ItemSpec(i, min_value=Decimal(0)) for i in items],
            jump_threshold=Decimal("0.5"),
        )
        await upsert_regime(conn, SYSTEM, spec, now=now)
