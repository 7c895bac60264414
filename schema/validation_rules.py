"""Validation rules in GraphQL: defining them (admin), listing them, and analysing stored data;
with them, outlier methods and min-max bounds (schema/outlier_bounds.py)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import strawberry

from nrhub.resolvers import rule_analysis, rules, units
from nrhub.resolvers.errors import BadUserInput, Forbidden, NotFound
from nrhub.resolvers.periods import Period as PeriodValue
from nrhub.resolvers.periods import period_range
from nrhub.schema.context import Info
from nrhub.schema.mutating import Key, actor_of, require_scope, run_idempotent
from nrhub.schema.outlier_bounds import OutlierMutations, OutlierQueries
from nrhub.schema.scalars import DecimalValue, Period


@strawberry.enum(description="How a rule compares its left side with its right side (DHIS2's operators).")
class RuleOperator(Enum):
    EQUAL_TO = "=="
    NOT_EQUAL_TO = "!="
    LESS_THAN = "<"
    LESS_THAN_OR_EQUAL_TO = "<="
    GREATER_THAN = ">"
    GREATER_THAN_OR_EQUAL_TO = ">="


@strawberry.enum(description="ERROR: a report breaching the rule cannot be submitted. WARNING: it can, explained.")
class RuleImportance(Enum):
    ERROR = "ERROR"
    WARNING = "WARNING"


@strawberry.enum(description="When a side's cells are missing, skip the rule (when any or all are) or count them as 0.")
class MissingValueStrategy(Enum):
    SKIP_IF_ANY_VALUE_MISSING = "SKIP_IF_ANY_VALUE_MISSING"
    SKIP_IF_ALL_VALUES_MISSING = "SKIP_IF_ALL_VALUES_MISSING"
    NEVER_SKIP = "NEVER_SKIP"


@strawberry.type(description="A validation rule: leftSide operator rightSide, over indicator cells.")
class ValidationRule:
    code: str
    name_vi: str
    name_en: str
    left_side: str = strawberry.field(description="As the hub prints it, e.g. POPULATION[SEX=F] + 1.")
    operator: RuleOperator
    right_side: str
    expression: str = strawberry.field(description="The whole rule, e.g. DOSSIERS_ONLINE <= DOSSIERS_TOTAL.")
    importance: RuleImportance
    missing_value_strategy: MissingValueStrategy
    indicators: list[str] = strawberry.field(description="Every indicator the rule names.")
    regimes: list[str] = strawberry.field(
        description="The regimes it is checked under; empty: every regime whose form holds one of its indicators."
    )

    @classmethod
    def of(cls, r: rules.Rule) -> ValidationRule:
        return cls(
            code=r.code,
            name_vi=r.name_vi,
            name_en=r.name_en,
            left_side=r.left_side,
            operator=RuleOperator(r.operator),
            right_side=r.right_side,
            expression=r.text,
            importance=RuleImportance(r.importance),
            missing_value_strategy=MissingValueStrategy(r.missing_value),
            indicators=list(r.indicators),
            regimes=list(r.regimes),
        )


@strawberry.input(description="A whole validation rule; an existing one with this code is replaced.")
class ValidationRuleInput:
    code: str
    name_vi: str
    name_en: str
    left_side: str = strawberry.field(
        description="Arithmetic (+ - * / parentheses, numbers) over cells: INDICATOR, or "
        "INDICATOR[DIMENSION=VALUE, ...] for a disaggregation, e.g. POPULATION[SEX=F]."
    )
    operator: RuleOperator
    right_side: str
    importance: RuleImportance
    missing_value_strategy: MissingValueStrategy = MissingValueStrategy.SKIP_IF_ANY_VALUE_MISSING
    regimes: list[str] = strawberry.field(default_factory=list)


@strawberry.input(description="Why the report is submitted despite breaching a WARNING rule.")
class ExplanationInput:
    rule: str
    explanation: str


@strawberry.type(description="Why the report was submitted despite breaching a WARNING rule.")
class RuleExplanation:
    rule: str
    explanation: str


@strawberry.type(description="One breach of a rule by stored current values: both sides' values.")
class RuleViolation:
    rule: str
    importance: RuleImportance
    expression: str
    unit: str
    period: Period  # type: ignore[valid-type]
    left_value: DecimalValue  # type: ignore[valid-type]
    right_value: DecimalValue  # type: ignore[valid-type]


@strawberry.type(description="The rules run over stored data and what breaches them.")
class ValidationAnalysis:
    rules_run: list[str]
    rules_skipped: list[str] = strawberry.field(
        description="Rules found through the regimes asked for that name an indicator you may not read."
    )
    violations: list[RuleViolation] = strawberry.field(description="By rule, unit code, period.")
    truncated: bool = strawberry.field(description="True when more than 10,000 breaches were found.")


@strawberry.type
class RuleQueries(OutlierQueries):
    @strawberry.field(
        description="Validation rules by code (with regime, those checked under it): those whose every "
        "indicator you may read, or all of them for admin."
    )
    async def validation_rules(self, info: Info, regime: str | None = None) -> list[ValidationRule]:
        found = await (
            rules.rules_for_regimes(info.context.db, [regime]) if regime else rules.list_rules(info.context.db)
        )
        every, scope = info.context.principal.has_scope("admin"), info.context.scope
        return [ValidationRule.of(r) for r in found if every or all(scope.may_read(i) for i in r.indicators)]

    @strawberry.field(
        description="Run validation rules over current observations: rules by code, or those checked under "
        "the regimes, or every rule; for the periods from..to in the unit's subtree (default: the nation). "
        "Only rules whose indicators you may read run, over the units your grants cover."
    )
    async def validation_analysis(
        self,
        info: Info,
        from_: Annotated[Period, strawberry.argument(name="from")],  # type: ignore[valid-type]
        to: Period,  # type: ignore[valid-type]
        unit: str = "VN",
        rules_: Annotated[list[str] | None, strawberry.argument(name="rules")] = None,
        regimes: list[str] | None = None,
    ) -> ValidationAnalysis:
        first, last = PeriodValue.parse(from_), PeriodValue.parse(to)
        if first.frequency != last.frequency:
            raise BadUserInput("from and to must be periods of the same frequency")
        periods = [str(p) for p in period_range(first, last)]
        if len(periods) > rule_analysis.MAX_PERIODS:
            raise BadUserInput(f"analyse at most {rule_analysis.MAX_PERIODS} periods at once")
        row = await units.fetch_unit(info.context.db, unit, info.context.today)
        if row is None:
            raise NotFound(f"there is no unit {unit} in force today")
        if not info.context.scope.covers_unit(row.id):
            raise Forbidden(f"you may not read values for unit {unit}")
        scope = info.context.scope
        run, skipped = await rule_analysis.select_rules(info.context.db, scope, rules_, regimes)
        found = await rule_analysis.analyse(info.context.db, scope, run, skipped, periods, row.id)
        return ValidationAnalysis(
            rules_run=found.rules_run,
            rules_skipped=found.rules_skipped,
            violations=[
                RuleViolation(
                    rule=v.rule.code,
                    importance=RuleImportance(v.rule.importance),
                    expression=v.rule.text,
                    unit=v.unit_code,
                    period=Period(v.period),
                    left_value=DecimalValue(v.left),
                    right_value=DecimalValue(v.right),
                )
                for v in found.violations
            ],
            truncated=found.truncated,
        )


@strawberry.type
class RuleMutations(OutlierMutations):
    @strawberry.mutation(description="Create or replace a validation rule (admin); its cells are checked.")
    async def upsert_validation_rule(
        self, info: Info, input: ValidationRuleInput, idempotency_key: Key
    ) -> ValidationRule | None:
        require_scope(info, "admin")
        actor, now = actor_of(info), info.context.clock()
        spec = rules.RuleSpec(
            code=input.code,
            name_vi=input.name_vi,
            name_en=input.name_en,
            left_side=input.left_side,
            operator=input.operator.value,
            right_side=input.right_side,
            importance=input.importance.value,
            missing_value=input.missing_value_strategy.value,
            regimes=list(input.regimes),
        )

        async def change(conn: Any) -> dict[str, str]:
            return {"rule": spec.code, "action": await rules.upsert_rule(conn, actor, spec, now=now)}

        request = {k: getattr(spec, k) for k in ("code", "name_vi", "name_en", "left_side", "operator", "right_side")}
        request |= {"importance": spec.importance, "missing": spec.missing_value, "regimes": spec.regimes}
        result = await run_idempotent(info, idempotency_key, "upsertValidationRule", request, change)
        found = await rules.list_rules(info.context.db, [result["rule"]])
        return ValidationRule.of(found[0]) if found else None

    @strawberry.mutation(description="Delete a validation rule (admin); explanations given for it stay.")
    async def delete_validation_rule(self, info: Info, code: str, idempotency_key: Key) -> bool:
        require_scope(info, "admin")
        actor, now = actor_of(info), info.context.clock()

        async def change(conn: Any) -> dict[str, bool]:
            await rules.delete_rule(conn, actor, code, now=now)
            return {"deleted": True}

        result = await run_idempotent(info, idempotency_key, "deleteValidationRule", {"code": code}, change)
        return bool(result["deleted"])


def explanations_of(given: list[ExplanationInput] | None) -> dict[str, str]:
    """submitReport's explanations by rule code, each rule once."""
    explained: dict[str, str] = {}
    for e in given or []:
        if e.rule in explained:
            raise BadUserInput(f"rule {e.rule} is explained more than once")
        explained[e.rule] = e.explanation
    return explained


Explanations = Annotated[
    list[ExplanationInput] | None,
    strawberry.argument(description="Why, for each WARNING validation rule the report breaches (required to submit)."),
]
