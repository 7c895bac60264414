"""The rule expression parser and evaluator, and the outlier test, without a database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.outliers import outlier
from nrhub.resolvers.rule_expressions import Cell, cells, parse_side, printed, value_of


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("DOSSIERS_ONLINE", "DOSSIERS_ONLINE"),
        ("a+b*c", "a + b * c"),
        ("(A + B) * C", "(A + B) * C"),
        ("A - (B - C)", "A - (B - C)"),
        ("A - B - C", "A - B - C"),
        ("A / (B * 2)", "A / (B * 2)"),
        ("-(A + 1.50)", "-(A + 1.50)"),
        ("POPULATION[urbanisation=u, sex=F]", "POPULATION[SEX=F, URBANISATION=U]"),
        ("POPULATION[SEX=F|URBANISATION=_T]", "POPULATION[SEX=F]"),
        ("POPULATION [ SEX = _T ]", "POPULATION"),
    ],
)
def test_sides_print_in_one_canonical_form(text: str, canonical: str) -> None:
    assert printed(parse_side(text)) == canonical
    assert printed(parse_side(canonical)) == canonical  # printing is a fixed point


def test_cells_become_disaggregation_keys_sorted_by_dimension() -> None:
    side = parse_side("UNEMPLOYED[URBANISATION=U, SEX=F] + UNEMPLOYED + UNEMPLOYED")
    assert cells(side) == [Cell("UNEMPLOYED", "SEX=F|URBANISATION=U"), Cell("UNEMPLOYED", "")]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "cannot be empty"),
        ("A +", "ends where"),
        ("(A + B", "not closed"),
        ("A B", "unexpected 'B'"),
        ("A <= B", "cannot read '<= B'"),
        ("__import__('os').system('id')", "cannot read"),
        ("A[SEX]", "write a disaggregation as"),
        ("A[SEX=F, SEX=M]", "names the dimension SEX twice"),
        ("(" * 40 + "A" + ")" * 40, "nests deeper"),
        ("-" * 40 + "A", "nests deeper"),
        ("A" + " + A" * 1000, "at most 2000 characters"),
    ],
)
def test_bad_sides_are_refused_saying_why(text: str, says: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        parse_side(text)
    assert says in refused.value.message


def _lookup(values: dict[str, Decimal]):
    return lambda cell: values.get(str(cell))


def test_sides_are_valued_exactly_and_skipped_as_the_strategy_says() -> None:
    side = parse_side("A + B * 2 - C / 4")
    full = {"A": Decimal("0.1"), "B": Decimal("0.2"), "C": Decimal("1")}
    assert value_of(side, _lookup(full), "SKIP_IF_ANY_VALUE_MISSING") == Decimal("0.25")
    partial = {"A": Decimal("0.1")}
    assert value_of(side, _lookup(partial), "SKIP_IF_ANY_VALUE_MISSING") is None
    assert value_of(side, _lookup(partial), "SKIP_IF_ALL_VALUES_MISSING") == Decimal("0.1")
    assert value_of(side, _lookup({}), "SKIP_IF_ALL_VALUES_MISSING") is None
    assert value_of(side, _lookup({}), "NEVER_SKIP") == 0
    # A constant side is never missing; dividing by zero skips the rule rather than guessing.
    assert value_of(parse_side("100"), _lookup({}), "SKIP_IF_ANY_VALUE_MISSING") == 100
    assert value_of(parse_side("A / (B - B)"), _lookup(full), "NEVER_SKIP") is None
    # 30-digit parts add exactly (the default context would round to 28 digits).
    big = {"A": Decimal("1" * 30), "B": Decimal("1")}
    assert value_of(parse_side("A + B"), _lookup(big), "NEVER_SKIP") == Decimal("1" * 29 + "2")


def test_outliers_use_the_median_and_mad_of_at_least_six_past_periods() -> None:
    history = [Decimal(v) for v in (100, 102, 98, 101, 99, 100, 103, 97)]
    # MAD = 1.5; z = 0.6745 * (108 - 100) / 1.5 = 3.6 > 3.5, while 107 gives 3.1.
    found = outlier(Decimal(108), history)
    assert found is not None and round(found.z, 2) == 3.6 and found.median == 100 and found.periods == 8
    assert outlier(Decimal(107), history) is None
    assert outlier(Decimal(92), history) is not None  # below as well as above
    assert outlier(Decimal(10_000), history[:5]) is None  # five past periods judge nothing
    # More than half the history one value: MAD is 0 and the mean absolute deviation stands in.
    flat = [Decimal(v) for v in (50, 50, 50, 50, 50, 60)]
    assert outlier(Decimal(70), flat) is not None and outlier(Decimal(55), flat) is None
    assert outlier(Decimal(51), [Decimal(50)] * 10) is None  # no spread at all: nothing to judge against
