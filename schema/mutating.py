"""What every mutation shares: the idempotency key argument, the scope check, the idempotent run.

The Mutation root (schema/mutation.py) and its parts in other modules (lock exceptions, rules,
webhooks) import these from here, so a mutation's rules live in one place.
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from nrhub.resolvers.audit import Actor
from nrhub.resolvers.errors import Forbidden
from nrhub.resolvers.idempotency import idempotent
from nrhub.schema.context import Info

Key = Annotated[
    str,
    strawberry.argument(
        description="A client-chosen key (e.g. a UUID): a retry with the same key "
        "and input returns the first result; other input is a CONFLICT."
    ),
]


def require_scope(info: Info, scope: str) -> None:
    """Mutations act for an agency: a token of an agency's client carrying ``scope``."""
    principal = info.context.principal
    if not principal.has_scope(scope) or principal.agency_code is None or principal.client_id is None:
        raise Forbidden(f"this needs the {scope} scope, on a token of an agency's client")


async def run_idempotent(info: Info, key: str, operation: str, request: dict[str, Any], change: Any) -> dict[str, Any]:
    """Run ``change(conn)`` once per (client, key) in a workflow transaction; a retry gets the first result."""
    client = info.context.principal.client_id
    assert client is not None
    return await idempotent(info.context.db, client, key, operation, request, change)


def actor_of(info: Info) -> Actor:
    """Who a mutation's audit entries name: the token's agency, client and person, and the request."""
    p = info.context.principal
    return Actor(agency=p.agency_code, client=p.client_id, user=p.user, request_id=info.context.request_id)
