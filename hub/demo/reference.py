"""Real reference data (shipped CSVs) and the demo catalogue built on it, loaded idempotently.

Units, lineage and agencies come from ``data/*.csv`` as published (see the README there). The
hub adds what the references leave open, each marked as the hub's own: a numerator and a
denominator for every RATIO indicator (so rates aggregate correctly), provincial people's
committees as reporting agencies, synthetic communes, and three reporting regimes.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from importlib import resources

import asyncpg

REFORM_DATE = date(2025, 7, 1)
REFORM_BASIS = "Resolution 202/2025/QH15"
OLD_PROVINCES_FROM = date(2008, 8, 1)  # the 63-province map, after Ha Tay joined Ha Noi
AGENCIES_FROM = date(2025, 3, 1)  # Resolution 176/2025/QH15
NATION = "VN"

FIELDS = {
    "growth": ("Tăng trưởng kinh tế", "Economic growth"),
    "macro_stability": ("Ổn định kinh tế vĩ mô", "Macroeconomic stability"),
    "business_environment": ("Môi trường kinh doanh", "Business environment"),
    "public_finance": ("Tài chính công", "Public finance"),
    "labour": ("Lao động, việc làm", "Labour and employment"),
    "social": ("Phát triển xã hội", "Social development"),
    "environment": ("Môi trường", "Environment"),
    "public_administration": ("Hành chính công", "Public administration"),
    "infrastructure": ("Kết cấu hạ tầng", "Infrastructure"),
}

DIMENSIONS = {
    "SEX": (("Giới tính", "Sex"), {"M": ("Nam", "Male"), "F": ("Nữ", "Female")}),
    "URBANISATION": (
        ("Thành thị, nông thôn", "Urban or rural"),
        {"U": ("Thành thị", "Urban"), "R": ("Nông thôn", "Rural")},
    ),
    "ECON_SECTOR": (
        ("Khu vực kinh tế", "Economic sector"),
        {
            "AGR": ("Nông, lâm nghiệp và thủy sản", "Agriculture, forestry and fishing"),
            "IND": ("Công nghiệp và xây dựng", "Industry and construction"),
            "SRV": ("Dịch vụ", "Services"),
            "TAX": ("Thuế sản phẩm trừ trợ cấp", "Product taxes less subsidies"),
        },
    ),
    "OWNERSHIP": (
        ("Loại hình kinh tế", "Ownership"),
        {
            "STATE": ("Nhà nước", "State"),
            "NONSTATE": ("Ngoài nhà nước", "Non-state"),
            "FDI": ("Có vốn đầu tư nước ngoài", "Foreign-invested"),
        },
    ),
}
TOTAL = ("Tổng số", "Total")
# Who may read each indicator. The reference list classifies none, so the demo does, as a statistics
# office would: the headline figures it publishes openly are PUBLIC (read without a token where public
# reading is on), monetary aggregates the State Bank releases on its own schedule are RESTRICTED, and
# everything else, the hub's components included, is INTERNAL. The classification is the demo's own,
# like its synthetic values.
PUBLIC_INDICATORS = frozenset({"GDP_GROWTH", "CPI_YOY", "POPULATION"})
RESTRICTED_INDICATORS = frozenset({"CREDIT_GR", "M2_GR"})
_COUNT_UNITS = {"persons", "enterprises", "arrivals", "households", "dossiers", "beds"}


@dataclass(frozen=True, slots=True)
class IndicatorRow:
    code: str
    name_vi: str
    name_en: str
    field: str
    unit: str
    periodicity: str
    aggregation: str
    responsible: str
    dimensions: tuple[str, ...]
    source_note: str
    numerator: str | None = None
    denominator: str | None = None
    factor: int | None = None
    source: str = "hub"  # or the federated source that serves its values

    @property
    def value_type(self) -> str:
        return "INTEGER" if self.unit in _COUNT_UNITS else "DECIMAL"

    @property
    def decimals(self) -> int:
        return 0 if self.value_type == "INTEGER" else 2

    @property
    def sensitivity(self) -> str:
        if self.code in PUBLIC_INDICATORS:
            return "PUBLIC"
        return "RESTRICTED" if self.code in RESTRICTED_INDICATORS else "INTERNAL"


# The demo's federated indicators (README, Federation): their values are not loaded into the hub
# but read, when asked for, from the two example sources configured in hub/demo/sources.toml.
FEDERATED = {"INTL_VISITORS": "tourism"}
POP_MONTHLY = IndicatorRow(
    "POP_MONTHLY",
    "Dân số theo tháng (Cơ sở dữ liệu quốc gia về dân cư)",
    "Resident population by month (national population database)",
    "social",
    "persons",
    "M",
    # A stock, counted at each month's end: a quarter's or a year's value is its last month's
    # (summing months would count everyone three or twelve times); across units LAST adds up.
    "LAST",
    "BCA",
    ("SEX",),
    "residents at the end of the month, from the national population database; indicator added by the hub",
    source="popdb",
)


def read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("nrhub.demo").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def indicator_rows() -> list[IndicatorRow]:
    """The 36 reference indicators, the hub's numerator/denominator components, and POP_MONTHLY."""
    components = {r["ratio_code"]: r for r in read_csv("ratio_components.csv")}
    rows: list[IndicatorRow] = []
    for r in read_csv("indicators.csv"):
        dims = tuple(d for d in r["suggested_disaggregation"].split(";") if d)
        freq = "A" if r["frequency"] == "A" else r["frequency"]
        comp = components.get(r["code"])
        for part in ("numerator", "denominator") if comp else ():
            rows.append(
                IndicatorRow(
                    comp[f"{part}_code"],
                    comp[f"{part}_vi"],
                    comp[f"{part}_en"],
                    r["field"],
                    comp[f"{part}_unit"],
                    freq,
                    "SUM",
                    r["responsible"],
                    dims,
                    f"{part} of {r['code']}; component added by the hub",
                )
            )
        rows.append(
            IndicatorRow(
                r["code"],
                r["name_vi"],
                r["name_en"],
                r["field"],
                r["unit"],
                freq,
                r["aggregation"],
                r["responsible"],
                dims,
                r["source_note"] or "",
                comp["numerator_code"] if comp else None,
                comp["denominator_code"] if comp else None,
                int(comp["factor"]) if comp else None,
                FEDERATED.get(r["code"], "hub"),
            )
        )
    return [*rows, POP_MONTHLY]


async def load_reference(conn: asyncpg.Connection) -> None:
    """Upsert fields, dimensions, units, lineage, agencies and indicators."""
    await conn.executemany(
        "INSERT INTO indicator_field (code, name_vi, name_en) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING",
        [(code, vi, en) for code, (vi, en) in FIELDS.items()],
    )
    for dim, ((vi, en), values) in DIMENSIONS.items():
        await conn.execute(
            "INSERT INTO dimension (code, name_vi, name_en) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING",
            dim,
            vi,
            en,
        )
        await conn.executemany(
            "INSERT INTO dimension_value (dimension_code, code, name_vi, name_en)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            [(dim, "_T", *TOTAL)] + [(dim, c, v, e) for c, (v, e) in values.items()],
        )
    await _load_units(conn)
    await _load_agencies(conn)
    await _load_indicators(conn)


_INSERT_UNIT = """
INSERT INTO admin_unit (code, name_vi, name_en, level, kind, parent_id, valid_from, valid_to,
                        legal_basis, synthetic)
VALUES ($1, $2, $3, $4, $5, (SELECT id FROM admin_unit WHERE code = 'VN'), $6, $7, $8, false)
ON CONFLICT (code, valid_from) DO NOTHING
"""


async def _load_units(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO admin_unit (code, name_vi, name_en, level, kind, valid_from, legal_basis)"
        " VALUES ('VN', 'Việt Nam', 'Viet Nam', 'NATION', 'nation', '1976-07-02', NULL)"
        " ON CONFLICT (code, valid_from) DO NOTHING"
    )
    old = read_csv("provinces_2004.csv")
    await conn.executemany(
        _INSERT_UNIT,
        [
            (
                r["old_code"],
                r["name_vi"],
                r["name_en"],
                "PROVINCE",
                "province",
                OLD_PROVINCES_FROM,
                date(2025, 6, 30),
                "Decision 124/2004/QĐ-TTg",
            )
            for r in old
        ],
    )
    await conn.executemany(
        _INSERT_UNIT,
        [
            (
                r["code"],
                r["name_vi"],
                r["name_en"],
                "PROVINCE",
                r["unit_type"],
                date.fromisoformat(r["valid_from"]),
                None,
                r["legal_basis"],
            )
            for r in read_csv("provinces.csv")
        ],
    )
    await conn.executemany(
        """
        INSERT INTO unit_lineage (old_unit_id, new_unit_id, relation, effective_date, legal_basis)
        SELECT o.id, n.id, $3, $4, $5 FROM admin_unit o, admin_unit n
        WHERE o.code = $1 AND o.valid_to = '2025-06-30' AND o.level = 'PROVINCE'
          AND n.code = $2 AND n.valid_from = $4 AND n.level = 'PROVINCE'
        ON CONFLICT DO NOTHING
        """,
        [(r["old_code"], r["new_code"], r["relation"], REFORM_DATE, REFORM_BASIS) for r in old],
    )


async def _load_agencies(conn: asyncpg.Connection) -> None:
    await conn.executemany(
        "INSERT INTO agency (code, short_code, name_vi, name_en, kind, valid_from, legacy_eid, notes)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (code) DO NOTHING",
        [
            (
                r["code"],
                r["short_code"],
                r["name_vi"],
                r["name_en"],
                r["kind"],
                AGENCIES_FROM,
                r["legacy_eid"] or None,
                r["notes"] or None,
            )
            for r in read_csv("agencies.csv")
        ],
    )
    # The people's committee of each current province reports for it (synthetic codes UBND_NN).
    await conn.execute(
        """
        INSERT INTO agency (code, short_code, name_vi, name_en, kind, unit_id, valid_from, notes)
        SELECT 'UBND_' || code, 'UBND ' || code, 'Ủy ban nhân dân ' || name_vi,
               'People''s Committee of ' || name_en, 'PROVINCIAL_COMMITTEE', id, valid_from,
               'reporting agency of the province; code assigned by the hub'
        FROM admin_unit WHERE level = 'PROVINCE' AND valid_to IS NULL
        ON CONFLICT (code) DO NOTHING
        """
    )


async def _load_indicators(conn: asyncpg.Connection) -> None:
    rows = indicator_rows()
    # Components first: a RATIO row references its numerator and denominator. A database loaded
    # before the demo federated some indicators gets their new source; its sensitivities stay as they
    # are (they change through `nrhub catalogue import`, audited).
    await conn.executemany(
        """
        INSERT INTO indicator (code, name_vi, name_en, definition, field, unit_of_measure,
            value_type, decimals, periodicity, aggregation, numerator_code, denominator_code,
            ratio_factor, responsible_agency, sensitivity, source, source_note)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $17, $16, $15)
        ON CONFLICT (code) DO UPDATE SET source = EXCLUDED.source WHERE indicator.source <> EXCLUDED.source
        """,
        [
            (
                r.code,
                r.name_vi,
                r.name_en,
                _definition(r),
                r.field,
                r.unit,
                r.value_type,
                r.decimals,
                r.periodicity,
                r.aggregation,
                r.numerator,
                r.denominator,
                r.factor,
                r.responsible,
                r.source_note or None,
                r.source,
                r.sensitivity,
            )
            for r in rows
        ],
    )
    await conn.executemany(
        "INSERT INTO indicator_dimension (indicator_code, dimension_code, position)"
        " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(r.code, d, i) for r in rows for i, d in enumerate(r.dimensions)],
    )


def _definition(row: IndicatorRow) -> str:
    if row.aggregation == "RATIO":
        return f"{row.name_en}: {row.numerator} / {row.denominator} × {row.factor}, aggregated as the ratio of sums"
    return f"{row.name_en}, in {row.unit}"
