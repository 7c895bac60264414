"""Limits on a GraphQL document, checked during validation, before any resolver runs.

The rules are classes built once at start-up (their limits bound in by ``make_limit_rules``), so the
validation cache stays valid. Depth and alias counts follow fragment spreads: a fragment spread
N times counts N times, which is what stops alias amplification through fragments.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    ASTValidationRule,
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValidationContext,
)


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_directives: int
    max_string_length: int


def too_complex(message: str, node: object) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": "QUERY_TOO_COMPLEX"})  # type: ignore[arg-type]


def bad_input(message: str, node: object) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": "BAD_USER_INPUT"})  # type: ignore[arg-type]


def make_limit_rules(limits: Limits) -> tuple[type[ASTValidationRule], ...]:
    class OperationLimits(ASTValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
            fragments = {
                f.name.value: f for f in self.context.document.definitions if isinstance(f, FragmentDefinitionNode)
            }
            walk = _Walk(fragments, limits)
            walk.selection_set(node.selection_set, 1, frozenset())
            walk.directives += len(node.directives or ())
            if walk.depth > limits.max_depth:
                self.report_error(
                    too_complex(f"the query is nested {walk.depth} deep; the limit is {limits.max_depth}", node)
                )
            if walk.aliases > limits.max_aliases:
                self.report_error(
                    too_complex(f"the query uses {walk.aliases} aliases; the limit is {limits.max_aliases}", node)
                )
            if walk.directives > limits.max_directives:
                self.report_error(
                    too_complex(
                        f"the query uses {walk.directives} directives; the limit is {limits.max_directives}",
                        node,
                    )
                )

    class StringLiterals(ASTValidationRule):
        def enter_string_value(self, node: StringValueNode, *_: object) -> None:
            problem = string_problem(node.value, limits.max_string_length)
            if problem:
                self.report_error(bad_input(problem, node))

    return OperationLimits, StringLiterals


def string_problem(value: str, max_length: int) -> str | None:
    """Why a string argument cannot be accepted, or None. PostgreSQL text cannot hold NUL."""
    if len(value) > max_length:
        return f"a string argument is {len(value)} characters long; the limit is {max_length}"
    if "\x00" in value:
        return "a string argument contains a NUL character"
    if any("\ud800" <= c <= "\udfff" for c in value):
        return "a string argument contains a lone surrogate (invalid Unicode)"
    return None


class _Walk:
    """Depth, alias and directive counts of one operation, following fragment spreads."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode], limits: Limits) -> None:
        self.fragments = fragments
        self.limits = limits
        self.depth = 0
        self.aliases = 0
        self.directives = 0

    def selection_set(self, node: SelectionSetNode, depth: int, visiting: frozenset[str]) -> None:
        # Stop early once a limit is exceeded: the error is certain and the walk stays bounded.
        if self.aliases > self.limits.max_aliases or self.depth > self.limits.max_depth:
            return
        for selection in node.selections:
            self.directives += _count(selection.directives)
            if isinstance(selection, FieldNode):
                self.depth = max(self.depth, depth)
                self.aliases += selection.alias is not None
                # Introspection is gated by its own rule; its standard query nests 13 deep (ofType).
                if selection.selection_set and selection.name.value not in ("__schema", "__type"):
                    self.selection_set(selection.selection_set, depth + 1, visiting)
            elif isinstance(selection, InlineFragmentNode):
                self.selection_set(selection.selection_set, depth, visiting)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in visiting:  # cycles are reported by another rule
                    self.directives += _count(fragment.directives)
                    self.selection_set(fragment.selection_set, depth, visiting | {name})


def _count(directives: tuple[DirectiveNode, ...] | None) -> int:
    return len(directives or ())


__all__ = ["Limits", "ValidationContext", "make_limit_rules", "string_problem"]
