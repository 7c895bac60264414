"""Outlier methods and min-max bounds in GraphQL: choosing a regime's method and generating its
bounds (admin), and reading the bounds (under the caller's grants). Part of the rules' queries and
mutations (schema/validation_rules.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry

from nrhub.resolvers import outlier_bounds, units
from nrhub.resolvers.errors import NotFound
from nrhub.schema.context import Info
from nrhub.schema.mutating import Key, actor_of, require_scope, run_idempotent
from nrhub.schema.scalars import DecimalValue, Period


@strawberry.enum(
    description="How a regime's reports are checked against each unit's own history: the modified z-score "
    "(the default), min-max bounds generated beforehand (generateOutlierBounds), or not at all."
)
class OutlierMethod(Enum):
    Z_SCORE = "Z_SCORE"
    MIN_MAX = "MIN_MAX"
    NONE = "NONE"


assert {m.value for m in OutlierMethod} == set(outlier_bounds.OUTLIER_METHODS)  # one list, in the resolvers


@strawberry.type(description="The min-max bounds of one cell: mean ± k standard deviations of its history.")
class OutlierBound:
    indicator: str
    unit: str
    disaggregation: str
    min: DecimalValue  # type: ignore[valid-type]
    max: DecimalValue  # type: ignore[valid-type]
    mean: DecimalValue  # type: ignore[valid-type]
    standard_deviation: DecimalValue = strawberry.field(description="Of the population of the history's values.")  # type: ignore[valid-type]
    k: DecimalValue  # type: ignore[valid-type]
    history_size: int = strawberry.field(description="How many periods the bounds were generated from.")
    first_period: Period  # type: ignore[valid-type]
    last_period: Period  # type: ignore[valid-type]
    generated_by: str
    generated_at: datetime

    @classmethod
    def of(cls, b: outlier_bounds.StoredBounds) -> OutlierBound:
        return cls(
            indicator=b.indicator_code,
            unit=b.unit_code,
            disaggregation=b.dims,
            min=DecimalValue(b.min_value),
            max=DecimalValue(b.max_value),
            mean=DecimalValue(b.mean),
            standard_deviation=DecimalValue(b.std_dev),
            k=DecimalValue(b.k),
            history_size=b.history_size,
            first_period=Period(b.first_period),
            last_period=Period(b.last_period),
            generated_by=b.generated_by,
            generated_at=b.generated_at,
        )


@strawberry.type(description="A regime's outlier method and the min-max bounds stored for it that you may read.")
class OutlierBounds:
    regime: str
    method: OutlierMethod
    bounds: list[OutlierBound] = strawberry.field(description="By unit code, indicator, disaggregation.")


@strawberry.type(description="What a generation of min-max bounds did.")
class OutlierGeneration:
    regime: str
    unit: str | None = strawberry.field(description="Null: every reporter's unit.")
    k: DecimalValue  # type: ignore[valid-type]
    cells: int = strawberry.field(description="Cells that got bounds (those of these units before are replaced).")
    skipped: int = strawberry.field(description="Cells with fewer than 6 periods of history: no bounds.")
    generated_at: datetime


@strawberry.type
class OutlierQueries:
    @strawberry.field(
        description="A regime's outlier method and its min-max bounds (of one unit), those of the indicators "
        "you may read in the units your grants cover."
    )
    async def outlier_bounds(self, info: Info, regime: str, unit: str | None = None) -> OutlierBounds:
        db = info.context.db
        await outlier_bounds.require_regime(db, regime)
        unit_id = None
        if unit is not None:
            found = await units.fetch_unit(db, unit, info.context.today)
            if found is None:
                raise NotFound(f"there is no unit {unit} in force today")
            unit_id = found.id
        method = await outlier_bounds.outlier_method(db, regime)
        stored = await outlier_bounds.list_bounds(db, info.context.scope, regime, unit_id)
        return OutlierBounds(regime=regime, method=OutlierMethod(method), bounds=[OutlierBound.of(b) for b in stored])


@strawberry.type
class OutlierMutations:
    @strawberry.mutation(description="Choose how a regime's reports are checked for outliers (admin); audited.")
    async def set_outlier_method(
        self, info: Info, regime: str, method: OutlierMethod, idempotency_key: Key
    ) -> OutlierMethod:
        require_scope(info, "admin")
        actor, now = actor_of(info), info.context.clock()

        async def change(conn: Any) -> dict[str, str]:
            return {"method": await outlier_bounds.set_outlier_method(conn, actor, regime, method.value, now=now)}

        request = {"regime": regime, "method": method.value}
        done = await run_idempotent(info, idempotency_key, "setOutlierMethod", request, change)
        return OutlierMethod(done["method"])

    @strawberry.mutation(
        description="Generate a regime's min-max bounds (admin): for each cell of its form and each reporter's "
        "unit (or `unit` only), the mean of its last 24 periods ± k standard deviations (default 3), rounded "
        "outward to the indicator's decimals; replaces those units' bounds; audited."
    )
    async def generate_outlier_bounds(
        self,
        info: Info,
        regime: str,
        idempotency_key: Key,
        unit: str | None = None,
        k: DecimalValue | None = None,  # type: ignore[valid-type]
    ) -> OutlierGeneration:
        require_scope(info, "admin")
        actor, now = actor_of(info), info.context.clock()
        factor = outlier_bounds.DEFAULT_K if k is None else Decimal(k)

        async def change(conn: Any) -> dict[str, Any]:
            done = await outlier_bounds.generate_bounds(conn, actor, regime, unit=unit, k=factor, now=now)
            return {"cells": done.cells, "skipped": done.skipped, "at": done.generated_at.isoformat()}

        request = {"regime": regime, "unit": unit, "k": str(factor)}
        done = await run_idempotent(info, idempotency_key, "generateOutlierBounds", request, change)
        return OutlierGeneration(
            regime=regime,
            unit=unit,
            k=DecimalValue(factor),
            cells=int(done["cells"]),
            skipped=int(done["skipped"]),
            generated_at=datetime.fromisoformat(done["at"]),
        )
