"""Three demo reporting regimes under Decree 09/2019/NĐ-CP (codes and forms are the hub's own)."""

from __future__ import annotations

import asyncpg

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
    provinces = [
        r["code"] for r in await conn.fetch("SELECT code FROM agency WHERE kind = 'PROVINCIAL_COMMITTEE' ORDER BY code")
    ]
    for code, vi, en, basis, freq, rule, value, reporters, items in REGIMES:
        await conn.execute(
            """
            INSERT INTO regime (code, name_vi, name_en, legal_basis, issuing_agency,
                                receiving_agency, frequency, deadline_rule, deadline_value,
                                jump_threshold)
            VALUES ($1, $2, $3, $4, 'VPCP', 'VPCP', $5, $6, $7, 0.5)
            ON CONFLICT (code) DO NOTHING
            """,
            code,
            vi,
            en,
            basis,
            freq,
            rule,
            value,
        )
        agencies = provinces if reporters == "PROVINCES" else reporters
        await conn.executemany(
            "INSERT INTO regime_reporter (regime_code, agency_code) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [(code, a) for a in agencies],
        )
        await conn.executemany(
            "INSERT INTO regime_item (regime_code, indicator_code, dims, required, min_value)"
            " VALUES ($1, $2, '', true, 0) ON CONFLICT DO NOTHING",
            [(code, i) for i in items],
        )
