"""Synthetic, deterministic observations for the demo catalogue. Every value here is made up.

The shape is realistic so that the API's rules show: sums add up from communes to provinces to
the nation; rates are stored with their numerator and denominator so they re-aggregate as ratios
of sums; before the 2025 reform values belong to the 63 old provinces, after it to the 34 new ones
(a period belongs to the map in force on its last day). Values depend only on the seed and the key.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from nrhub.demo.reference import DIMENSIONS, IndicatorRow
from nrhub.resolvers.periods import Period, period_range

SEED = 20250701
LAST_MONTH = Period(2026, 10, "M")  # the demo's "now": data through October 2026
REFORM = Period(2025, 7, "M")

# Where each family's leaf values are generated; sums and ratios are derived above that.
NATIONAL = {
    "GDP_GROWTH",
    "GDP_CUR",
    "GDP_STRUCT",
    "LAB_PROD_GR",
    "CPI_AVG",
    "EXPORT",
    "IMPORT",
    "TRADE_BAL",
    "FDI_REG",
    "FDI_DISB",
    "CREDIT_GR",
    "M2_GR",
    "INTL_VISITORS",
    "EXPRESSWAY_KM",
    "LAB_PROD",
}
COMMUNE_SMALL = {"UNEMP", "ONLINE_PS", "POPULATION"}
COMMUNE_LARGE = COMMUNE_SMALL | {
    "RETAIL",
    "NEW_ENT",
    "TRAFFIC_DEATHS",
    "BUDGET_REV",
    "BUDGET_EXP",
    "PUB_INV_DISB",
}

# A typical value for one province and one period: the level of a rate, or the size of a total.
BASE = {
    "GDP_GROWTH": 6.5,
    "GDP_CUR": 2_600_000,
    "GDP_STRUCT": 25,
    "GRDP_GROWTH": 7.0,
    "LAB_PROD_GR": 5.0,
    "IIP": 108,
    "CPI_YOY": 103.5,
    "CPI_AVG": 3.5,
    "RETAIL": 15_000,
    "EXPORT": 33_000,
    "IMPORT": 31_000,
    "TRADE_BAL": 2_000,
    "FDI_REG": 3_000,
    "FDI_DISB": 1_900,
    "INV_TOTAL": 30_000,
    "BUDGET_REV": 6_000,
    "BUDGET_EXP": 5_000,
    "CREDIT_GR": 8.0,
    "M2_GR": 7.0,
    "NEW_ENT": 400,
    "INTL_VISITORS": 1_500_000,
    "TRAFFIC_DEATHS": 25,
    "EXPRESSWAY_KM": 2_000,
    "POPULATION": 3_000_000,
    # denominators
    "EMPLOYED": 51_000_000,
    "PUB_INV_PLAN": 1_500,
    "LABOUR_FORCE": 1_500_000,
    "EMPLOYED_Q": 1_450_000,
    "HOUSEHOLDS": 800_000,
    "POP_COVER_BASE": 3_000_000,
    "LABOUR_FORCE_A": 1_500_000,
    "POP_BED_BASE": 3_000_000,
    "LAND_AREA": 900_000,
    "WASTE_GENERATED": 300_000,
    "DOSSIERS_TOTAL": 40_000,
    "POP_URBAN_BASE": 3_000_000,
}
# The level of each rate, which sets its numerator from its denominator.
RATE = {
    "LAB_PROD": 200,
    "PUB_INV_DISB": 60,
    "UNEMP": 2.3,
    "TRAINED_LAB": 28,
    "POVERTY": 3,
    "HI_COVER": 93,
    "SI_COVER": 40,
    "HOSP_BEDS": 32,
    "FOREST_COVER": 42,
    "WASTE_COLL": 96,
    "ONLINE_PS": 45,
    "URBAN_RATE": 40,
}


@dataclass(frozen=True, slots=True)
class Unit:
    id: int
    code: str
    level: str
    parent_code: str | None  # the province a commune belongs to


@dataclass(frozen=True, slots=True)
class Geography:
    nation: Unit
    old_provinces: list[Unit]
    new_provinces: list[Unit]
    communes: list[Unit]


Row = tuple[str, int, str, str, Decimal, str]  # indicator, unit id, period, dims, value, status


def generate(indicators: list[IndicatorRow], geo: Geography, *, large: bool) -> Iterator[Row]:
    """Every synthetic observation of the demo set, one family (an indicator and its parts) at a time."""
    by_code = {i.code: i for i in indicators}
    components = {c for i in indicators if i.aggregation == "RATIO" for c in (i.numerator, i.denominator)}
    first_year = 2011 if large else 2021
    commune_level = COMMUNE_LARGE if large else COMMUNE_SMALL
    for ind in indicators:
        if ind.code in components or ind.source != "hub":
            continue  # generated with their ratio, or served by a federated source
        level = "NATION" if ind.code in NATIONAL else "COMMUNE" if ind.code in commune_level else "PROVINCE"
        family = _Family(ind, by_code, geo, first_year, level, backcast=large)
        yield from family.rows()


class _Family:
    def __init__(
        self,
        ind: IndicatorRow,
        by_code: dict[str, IndicatorRow],
        geo: Geography,
        first_year: int,
        level: str,
        backcast: bool,
    ) -> None:
        self.ind = ind
        self.num = by_code.get(ind.numerator or "")
        self.den = by_code.get(ind.denominator or "")
        self.geo = geo
        self.level = level
        self.backcast = backcast
        last = _last_period(ind.periodicity)
        self.periods = period_range(_first_period(first_year, ind.periodicity), last)
        self.leaves, self.cells = _cells(ind.dimensions)
        self.statuses = {str(p): _status(i, len(self.periods)) for i, p in enumerate(reversed(self.periods))}

    def rows(self) -> Iterator[Row]:
        for period in self.periods:
            reformed = _after_reform(period)
            provinces = self.geo.new_provinces if reformed else self.geo.old_provinces
            if self.level == "NATION":
                yield from self._emit([self.geo.nation], period, {})
                continue
            if self.level == "COMMUNE" and (reformed or self.backcast):
                communes = self.geo.communes
                leaf = {u.code: self._leaf_values(u, period, 1 / _communes_per(self.geo)) for u in communes}
                yield from self._emit_values(communes, period, leaf)
                if reformed:
                    summed = {
                        p.code: self._sum([leaf[c.code] for c in communes if c.parent_code == p.code])
                        for p in provinces
                    }
                    yield from self._emit_values(provinces, period, summed)
                    yield from self._emit_values([self.geo.nation], period, {"VN": self._sum(list(summed.values()))})
                    continue
            leaf = {u.code: self._leaf_values(u, period, 1.0) for u in provinces}
            yield from self._emit_values(provinces, period, leaf)
            yield from self._emit([self.geo.nation], period, leaf)

    def _emit(self, units: list[Unit], period: Period, below: dict) -> Iterator[Row]:
        """National rows: summed from ``below`` when the family adds up, else generated."""
        if below and self.ind.aggregation in ("SUM", "RATIO"):
            values = {"VN": self._sum(list(below.values()))}
        else:
            values = {u.code: self._leaf_values(u, period, 1.0) for u in units}
        yield from self._emit_values(units, period, values)

    def _emit_values(self, units: list[Unit], period: Period, values: dict) -> Iterator[Row]:
        status = self.statuses[str(period)]
        p = str(period)
        for unit in units:
            for code, cells in self._with_ratio(values[unit.code]).items():
                for dims, value in cells.items():
                    yield code, unit.id, p, dims, value, status

    def _leaf_values(self, unit: Unit, period: Period, size: float) -> dict[str, dict[str, Decimal]]:
        """Values of every cell for one unit and period: {indicator code: {dims: value}}."""
        rng = random.Random(f"{SEED}:{self.ind.code}:{unit.code}:{period}")
        unit_size = 1.0 if unit.level == "NATION" else random.Random(f"{SEED}:size:{unit.code}").uniform(0.4, 2.5)
        trend = 1.06 ** ((period.year - 2020) + period.start_month / 12)
        if self.ind.aggregation == "RATIO":
            assert self.num is not None and self.den is not None
            dens = {
                leaf: BASE[self.den.code] * size * unit_size * share * rng.uniform(0.97, 1.03)
                for leaf, share in self.leaves
            }
            rate = RATE[self.ind.code] * rng.uniform(0.6, 1.4)
            nums = {leaf: d * rate / self.ind.factor * rng.uniform(0.9, 1.1) for leaf, d in dens.items()}
            return {self.num.code: self._totals(nums, self.num), self.den.code: self._totals(dens, self.den)}
        if self.ind.aggregation == "SUM":
            leaves = {
                leaf: BASE[self.ind.code] * size * unit_size * share * trend * rng.uniform(0.85, 1.15)
                for leaf, share in self.leaves
            }
            return {self.ind.code: self._totals(leaves, self.ind)}
        # A level (growth rate, index): every cell on its own, not summed.
        return {
            self.ind.code: {
                dims: _quantize(BASE[self.ind.code] * rng.uniform(0.85, 1.15), self.ind) for dims in self.cells
            }
        }

    def _totals(self, leaves: dict[str, float], ind: IndicatorRow) -> dict[str, Decimal]:
        exact = {leaf: _quantize(v, ind) for leaf, v in leaves.items()}
        out: dict[str, Decimal] = {}
        for cell in self.cells:
            wanted = dict(part.split("=") for part in cell.split("|") if part)
            out[cell] = sum(
                (v for leaf, v in exact.items() if all(f"{k}={c}" in leaf.split("|") for k, c in wanted.items())),
                Decimal(0),
            )
        return out

    def _sum(self, values: list[dict[str, dict[str, Decimal]]]) -> dict[str, dict[str, Decimal]]:
        """Add unit values cell by cell; ratios are recomputed from their summed parts."""
        out: dict[str, dict[str, Decimal]] = {}
        for value in values:
            for code, cells in value.items():
                target = out.setdefault(code, {})
                for dims, v in cells.items():
                    target[dims] = target.get(dims, Decimal(0)) + v
        return out

    def _with_ratio(self, value: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
        """Add the rate's own cells, computed from the unit's parts: sum(num) / sum(den) x factor."""
        if self.ind.aggregation != "RATIO":
            return value
        assert self.num is not None and self.den is not None and self.ind.factor is not None
        nums, dens = value[self.num.code], value[self.den.code]
        exp = Decimal(1).scaleb(-self.ind.decimals)
        ratio = {
            dims: (nums[dims] * self.ind.factor / dens[dims]).quantize(exp, ROUND_HALF_UP)
            for dims in self.cells
            if dens[dims]
        }
        return {**value, self.ind.code: ratio}


def _cells(dimensions: tuple[str, ...]) -> tuple[list[tuple[str, float]], list[str]]:
    """Leaf cells with their shares, and every cell key (totals included) for the dimensions."""
    if not dimensions:
        return [("", 1.0)], [""]
    options = [[f"{d}={c}" for c in DIMENSIONS[d][1]] for d in sorted(dimensions)]
    leaves = []
    for combo in itertools.product(*options):
        share = 1.0
        for part in combo:
            share /= len(DIMENSIONS[part.split("=")[0]][1])
        leaves.append(("|".join(combo), share))
    cells = set()
    for combo in itertools.product(*[[*o, ""] for o in options]):
        cells.add("|".join(p for p in combo if p))
    return leaves, sorted(cells)


def _quantize(value: float, ind: IndicatorRow) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-ind.decimals), ROUND_HALF_UP)


def _first_period(year: int, frequency: str) -> Period:
    return Period.parse(str(year) if frequency == "A" else f"{year}-{frequency}{'01' if frequency == 'M' else '1'}")


def _last_period(frequency: str) -> Period:
    return {"M": LAST_MONTH, "Q": Period(2026, 7, "Q"), "S": Period(2026, 1, "S"), "A": Period(2025, 1, "A")}[frequency]


def _after_reform(period: Period) -> bool:
    """A period belongs to the map in force on its last day."""
    return period.end_month >= (REFORM.year, REFORM.start_month)


def _communes_per(geo: Geography) -> int:
    return max(1, len(geo.communes) // max(1, len(geo.new_provinces)))


def _status(age: int, count: int) -> str:
    return "ESTIMATE" if age == 0 else "PRELIMINARY" if age <= 2 else "OFFICIAL"
