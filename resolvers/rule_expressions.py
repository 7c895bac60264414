"""The expressions of validation rules: a small parser and an exact evaluator, no ``eval``.

A side of a rule is arithmetic over numbers and cell references::

    side    := term (("+" | "-") term)*
    term    := factor (("*" | "/") factor)*
    factor  := NUMBER | CELL | "(" side ")" | "-" factor
    CELL    := INDICATOR ("[" DIMENSION "=" VALUE ("," DIMENSION "=" VALUE)* "]")?

``POPULATION[SEX=F]`` is the female cell of POPULATION, ``UNEMPLOYED[SEX=F, URBANISATION=U]`` the
urban women (``|`` separates parts too, as disaggregation keys are written); a value ``_T`` is the
total of its dimension, so ``POPULATION[SEX=_T]`` is ``POPULATION``. Each cell becomes the hub's
disaggregation key (migration 0002, ``is_dims_key``): parts sorted by dimension.

Parsing only checks the syntax; resolvers/rules.py checks the cells against the catalogue.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal, DivisionByZero, InvalidOperation

from nrhub.resolvers.errors import BadUserInput
from nrhub.resolvers.exact import EXACT, written

OPERATORS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
MISSING_VALUE_STRATEGIES = ("SKIP_IF_ANY_VALUE_MISSING", "SKIP_IF_ALL_VALUES_MISSING", "NEVER_SKIP")
MAX_LENGTH = 2000
MAX_DEPTH = 32  # parentheses and unary minus nest no deeper: the parser recurses once per level
# Sums and products are exact; a quotient keeps 34 significant digits (IEEE decimal128).
_QUOTIENT = Context(prec=34)

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<cell>[A-Za-z][A-Za-z0-9_]*(?:\s*\[[^\]]*\])?)|(?P<symbol>[-+*/()]))"
)
_CELL = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\s*(?:\[([^\]]*)\])?")
_PART = re.compile(r"\s*([A-Za-z][A-Za-z_]*)\s*=\s*([A-Za-z0-9_]+)\s*")


@dataclass(frozen=True, slots=True)
class Number:
    value: Decimal


@dataclass(frozen=True, slots=True)
class Cell:
    indicator: str
    dims: str  # a disaggregation key: '' is the total

    def __str__(self) -> str:
        return f"{self.indicator}[{', '.join(self.dims.split('|'))}]" if self.dims else self.indicator


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


Node = Number | Cell | Negate | Binary
Lookup = Callable[[Cell], Decimal | None]


class _Missing(Exception):
    """A side cannot be valued: a cell it needs is missing, or it divides by zero."""


@functools.lru_cache(maxsize=4096)
def parse_side(text: str) -> Node:
    """The expression tree of one side; BadUserInput saying where the text goes wrong."""
    if len(text) > MAX_LENGTH:
        raise BadUserInput(f"an expression is at most {MAX_LENGTH} characters")
    tokens = _tokens(text)
    parser = _Parser(text, tokens)
    node = parser.side(0)
    if parser.position < len(tokens):
        raise BadUserInput(f"unexpected {tokens[parser.position][1]!r} in {text!r}")
    return node


def cells(node: Node) -> list[Cell]:
    """The cells a side names, in order, each once."""
    found: dict[Cell, None] = {}

    def walk(n: Node) -> None:
        if isinstance(n, Cell):
            found[n] = None
        elif isinstance(n, Negate):
            walk(n.operand)
        elif isinstance(n, Binary):
            walk(n.left)
            walk(n.right)

    walk(node)
    return list(found)


def printed(node: Node, parent: int = 0) -> str:
    """The canonical text of a side: how rules are stored and shown."""
    if isinstance(node, Number):
        return written(node.value)
    if isinstance(node, Cell):
        return str(node)
    if isinstance(node, Negate):
        return f"-{printed(node.operand, 3)}"
    level = 1 if node.op in "+-" else 2
    # The right operand of - and / binds tighter: a - (b - c) keeps its parentheses.
    text = f"{printed(node.left, level)} {node.op} {printed(node.right, level + (node.op in '-/'))}"
    return f"({text})" if level < parent else text


def value_of(node: Node, lookup: Lookup, strategy: str) -> Decimal | None:
    """The side's value, or None when the rule is skipped for it (DHIS2's missing value strategy)."""
    needed = cells(node)
    missing = sum(lookup(c) is None for c in needed)
    if missing and strategy == "SKIP_IF_ANY_VALUE_MISSING":
        return None
    if needed and missing == len(needed) and strategy == "SKIP_IF_ALL_VALUES_MISSING":
        return None
    try:
        return _evaluate(node, lookup)
    except _Missing:
        return None


def _evaluate(node: Node, lookup: Lookup) -> Decimal:
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Cell):
        value = lookup(node)
        return Decimal(0) if value is None else value  # the strategy said a missing cell counts as 0
    if isinstance(node, Negate):
        return EXACT.minus(_evaluate(node.operand, lookup))
    left, right = _evaluate(node.left, lookup), _evaluate(node.right, lookup)
    if node.op == "+":
        return EXACT.add(left, right)
    if node.op == "-":
        return EXACT.subtract(left, right)
    if node.op == "*":
        return EXACT.multiply(left, right)
    try:
        return _QUOTIENT.divide(left, right)
    except (DivisionByZero, InvalidOperation):
        raise _Missing from None  # x / 0 says nothing about the figures: the rule is skipped


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    rest = text.rstrip()
    while position < len(rest):
        match = _TOKEN.match(rest, position)
        if match is None or match.end() == position:
            raise BadUserInput(f"cannot read {rest[position:].strip()[:20]!r} in {text!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match[kind]))
        position = match.end()
    if not tokens:
        raise BadUserInput("an expression cannot be empty")
    return tokens


class _Parser:
    """Recursive descent over the token list, one method per grammar rule."""

    def __init__(self, text: str, tokens: list[tuple[str, str]]) -> None:
        self.text, self.tokens, self.position = text, tokens, 0

    def _peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def side(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise BadUserInput(f"{self.text!r} nests deeper than {MAX_DEPTH} levels")
        node = self.term(depth)
        while self._peek() in ("+", "-"):
            op = self.tokens[self.position][1]
            self.position += 1
            node = Binary(op, node, self.term(depth))
        return node

    def term(self, depth: int) -> Node:
        node = self.factor(depth)
        while self._peek() in ("*", "/"):
            op = self.tokens[self.position][1]
            self.position += 1
            node = Binary(op, node, self.factor(depth))
        return node

    def factor(self, depth: int) -> Node:
        if self.position >= len(self.tokens):
            raise BadUserInput(f"{self.text!r} ends where a number or a cell was expected")
        kind, token = self.tokens[self.position]
        self.position += 1
        if kind == "number":
            return Number(Decimal(token))
        if kind == "cell":
            return _cell(token)
        if token == "-":
            if depth + 1 > MAX_DEPTH:
                raise BadUserInput(f"{self.text!r} nests deeper than {MAX_DEPTH} levels")
            return Negate(self.factor(depth + 1))
        if token == "(":
            node = self.side(depth + 1)
            if self._peek() != ")":
                raise BadUserInput(f"a parenthesis is not closed in {self.text!r}")
            self.position += 1
            return node
        raise BadUserInput(f"unexpected {token!r} in {self.text!r}")


def _cell(token: str) -> Cell:
    match = _CELL.fullmatch(token)
    assert match is not None  # the tokenizer matched the same shape
    indicator, inside = match[1], match[2]
    if inside is None:
        return Cell(indicator, "")
    parts: dict[str, str] = {}
    for written_part in re.split(r"[,|]", inside):
        part = _PART.fullmatch(written_part)
        if part is None:
            raise BadUserInput(f"{token!r}: write a disaggregation as [DIMENSION=VALUE, ...], e.g. POPULATION[SEX=F]")
        dimension, value = part[1].upper(), part[2].upper()
        if dimension in parts:
            raise BadUserInput(f"{token!r} names the dimension {dimension} twice")
        parts[dimension] = value
    dims = "|".join(f"{d}={v}" for d, v in sorted(parts.items()) if v != "_T")
    return Cell(indicator, dims)
