"""The demo's validation rules: what a statistics office checks of the demo regimes' figures.

They are created once, through the audited path of ``nrhub rules import``; a rule an operator
changed or deleted stays so when the demo is loaded again. Run over the demo's stored data
(``nrhub rules analyse --from 2021 --to 2025``) the two WARNING rules find the province-years whose
synthetic rates pass 100 % (health insurance coverage, waste treated): implausible figures.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from nrhub.resolvers.audit import SYSTEM
from nrhub.resolvers.rules import RuleSpec, upsert_rule

MONTHLY, QUARTERLY, ANNUAL = "BC_KTXH_THANG", "BC_BO_QUY", "BC_KTXH_NAM"

RULES = [
    RuleSpec(
        "DOSSIERS_ONLINE_LE_TOTAL",
        "Hồ sơ trực tuyến không vượt tổng số hồ sơ",
        "Online dossiers do not exceed all dossiers",
        "DOSSIERS_ONLINE",
        "<=",
        "DOSSIERS_TOTAL",
        "ERROR",
        regimes=[MONTHLY],
    ),
    RuleSpec(
        "FOREST_AREA_LE_LAND_AREA",
        "Diện tích rừng không vượt diện tích đất",
        "Forest area does not exceed land area",
        "FOREST_AREA",
        "<=",
        "LAND_AREA",
        "ERROR",
        regimes=[ANNUAL],
    ),
    RuleSpec(
        "POOR_HH_LE_HOUSEHOLDS",
        "Hộ nghèo không vượt tổng số hộ",
        "Poor households do not exceed all households",
        "POOR_HH",
        "<=",
        "HOUSEHOLDS",
        "ERROR",
        regimes=[ANNUAL],
    ),
    # People insured where they work or study can exceed the resident base: unusual, not impossible.
    RuleSpec(
        "HI_INSURED_LE_POP_BASE",
        "Người có thẻ BHYT không vượt dân số",
        "People with health insurance do not exceed the population",
        "HI_INSURED",
        "<=",
        "POP_COVER_BASE",
        "WARNING",
        regimes=[ANNUAL],
    ),
    RuleSpec(
        "UNEMPLOYED_LE_LABOUR_FORCE",
        "Người thất nghiệp không vượt lực lượng lao động",
        "The unemployed do not exceed the labour force",
        "UNEMPLOYED",
        "<=",
        "LABOUR_FORCE",
        "ERROR",
        regimes=[QUARTERLY],
    ),
    # Parts add to totals: checked wherever a report or the store holds both parts and the total.
    RuleSpec(
        "UNEMPLOYED_SEX_PARTS",
        "Thất nghiệp nam và nữ cộng lại bằng tổng",
        "Unemployed men and women add up to the total",
        "UNEMPLOYED[SEX=M] + UNEMPLOYED[SEX=F]",
        "==",
        "UNEMPLOYED",
        "ERROR",
    ),
    RuleSpec(
        "POPULATION_URBAN_PARTS",
        "Dân số thành thị và nông thôn cộng lại bằng tổng",
        "Urban and rural population add up to the total",
        "POPULATION[URBANISATION=U] + POPULATION[URBANISATION=R]",
        "==",
        "POPULATION",
        "ERROR",
    ),
    # Treated waste cannot exceed what was generated, unless stocks from earlier years were treated.
    RuleSpec(
        "WASTE_TREATED_LE_GENERATED",
        "Chất thải được xử lý không vượt chất thải phát sinh",
        "Waste treated does not exceed waste generated",
        "WASTE_TREATED",
        "<=",
        "WASTE_GENERATED",
        "WARNING",
    ),
]


async def load_rules(conn: asyncpg.Connection) -> None:
    """Create the demo rules once (inside the caller's transaction). Once any rule was ever defined,
    changed or deleted, the rules are the operators': a later load neither restores nor changes one."""
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM audit_entry WHERE action LIKE 'rule.%')"):
        return
    now = datetime.now(UTC)
    for spec in RULES:
        await upsert_rule(conn, SYSTEM, spec, now=now)
