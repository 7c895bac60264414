"""``_entities`` for a federation router: each representation checked before strawberry resolves it.

Strawberry's resolver pops ``__typename`` from whatever it is given and calls the type's
``resolve_reference`` with the remaining fields as keyword arguments, so a malformed representation
(a string, an unknown type, a missing or extra key, a number for a code) became a masked INTERNAL
error, and one raised midway left the other representations' lookups never awaited. Here each
representation must be an object naming an entity type and exactly the fields of one of its
``@key`` directives, each a string; any other is a BAD_USER_INPUT at its own index, and the rest
resolve as usual.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from strawberry.federation.schema_directives import Key

from nrhub.resolvers.errors import BadUserInput


def entity_keys(types: list[type]) -> dict[str, list[frozenset[str]]]:
    """Each entity type's GraphQL name and the field sets of its ``@key`` directives."""
    keys = {}
    for cls in types:
        definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
        fields = [frozenset(d.fields.split()) for d in definition.directives if isinstance(d, Key)]
        if fields and hasattr(cls, "resolve_reference"):
            keys[definition.name] = fields
    return keys


def checked(representation: Any, keys: dict[str, list[frozenset[str]]]) -> dict[str, Any] | BadUserInput:
    """The representation when it can be resolved; else the error to answer at its index."""
    names = ", ".join(sorted(keys))
    if not isinstance(representation, dict) or representation.get("__typename") not in keys:
        return BadUserInput(f"a representation is an object whose __typename is one of {names}")
    typename = representation["__typename"]
    given = frozenset(representation) - {"__typename"}
    if given not in keys[typename] or not all(isinstance(representation[f], str) for f in given):
        wanted = " or ".join("{" + ", ".join(sorted(k)) + "}" for k in keys[typename])
        return BadUserInput(f"a {typename} representation has exactly the fields {wanted}, each a string")
    if "validFrom" in given:
        try:
            date.fromisoformat(representation["validFrom"])
        except ValueError:
            return BadUserInput(f"validFrom {representation['validFrom']!r} is not a date (YYYY-MM-DD)")
    return representation
