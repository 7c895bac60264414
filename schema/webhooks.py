"""Webhooks for reminders: an agency registers its own, lists them and sees each delivery's status.

Who: a token of an agency's client holding ``reports:submit`` (a reporter) or ``reports:review`` (a
receiving agency), the two that reminders concern. What: only the caller's own agency's webhooks; the
agency is the token's, never an argument, and another agency's webhook is NOT_FOUND as if it did
not exist. The secret is returned once, by the registration that made it (docs/reports.md,
"Reminders and webhooks").
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import orjson
import strawberry
from strawberry.scalars import JSON

from nrhub.resolvers import webhooks as rows
from nrhub.resolvers.errors import Forbidden
from nrhub.resolvers.pagination import page_request
from nrhub.schema.context import Info
from nrhub.schema.mutating import Key, actor_of, run_idempotent
from nrhub.schema.relay import Connection, Node, global_id


@strawberry.enum(description="What a webhook is told of.")
class ReminderKind(Enum):
    BEFORE_DEADLINE = "BEFORE_DEADLINE"
    OVERDUE = "OVERDUE"


@strawberry.enum(description="PENDING: not yet delivered (attempts go on); DELIVERED: answered 2xx; FAILED: given up.")
class DeliveryStatus(Enum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


@strawberry.type(description="An agency's endpoint for reminders.")
class Webhook(Node):
    webhook_id: int
    url: str
    events: list[ReminderKind]
    disabled: bool
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, w: rows.Webhook) -> Webhook:
        return cls(
            id=global_id("Webhook", w.id),
            webhook_id=w.id,
            url=w.url,
            events=[ReminderKind(e) for e in w.events],
            disabled=w.disabled,
            created_by=w.created_by,
            created_at=w.created_at,
        )


@strawberry.type(description="One reminder sent (or being sent) to a webhook, with its status.")
class WebhookDelivery:
    delivery_id: int = strawberry.field(description="The X-Hub-Delivery header: the same on every attempt.")
    event: str
    payload: JSON = strawberry.field(description="The body sent, without its delivery field.")
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = strawberry.field(description="Null once DELIVERED or FAILED.")
    last_status_code: int | None = strawberry.field(description="The receiver's last HTTP status, if it answered.")
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: rows.Delivery) -> WebhookDelivery:
        return cls(
            delivery_id=d.id,
            event=d.event,
            payload=orjson.loads(d.payload),
            status=DeliveryStatus(d.status),
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "PENDING" else None,
            last_status_code=d.last_status,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )


@strawberry.type(description="A new webhook and its signing secret.")
class RegisteredWebhook:
    webhook: Webhook
    secret: str | None = strawberry.field(
        description="The HMAC key of X-Hub-Signature-256. Shown once: null when the request is a replay of "
        "an earlier one (same idempotencyKey); disable that webhook and register again if it was lost."
    )


def _agency(info: Info) -> str:
    """The caller's agency, if its token may manage webhooks: FORBIDDEN otherwise, before any read."""
    p = info.context.principal
    allowed = p.has_scope("reports:submit") or p.has_scope("reports:review")
    if not allowed or p.agency_code is None or p.client_id is None:
        raise Forbidden("webhooks need the reports:submit or reports:review scope, on a token of an agency's client")
    return p.agency_code


async def _webhook(info: Info, agency: str, webhook_id: int) -> Webhook:
    found = await rows.fetch_webhook(info.context.db, webhook_id)
    assert found is not None and found.agency_code == agency  # made (or replayed) just now, by this agency's client
    return Webhook.of(found)


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="Your agency's webhooks, disabled ones included.")
    async def webhooks(self, info: Info) -> list[Webhook]:
        agency = _agency(info)
        return [Webhook.of(w) for w in await rows.list_webhooks(info.context.db, agency)]

    @strawberry.field(description="Deliveries to one of your agency's webhooks, newest first.")
    async def webhook_deliveries(
        self,
        info: Info,
        webhook_id: int,
        status: DeliveryStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[WebhookDelivery]:
        agency = _agency(info)
        request = page_request(first, after, info.context.max_page_size)
        page = await rows.list_deliveries(
            info.context.db, agency, webhook_id, status.value if status else None, request
        )
        return Connection.of(page, WebhookDelivery)  # type: ignore[arg-type]


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="Register a webhook of your agency for reminders; the answer holds its secret, shown once. "
        "The URL is https (or http on loopback, for development)."
    )
    async def register_webhook(
        self, info: Info, url: str, idempotency_key: Key, events: list[ReminderKind] | None = None
    ) -> RegisteredWebhook | None:
        agency = _agency(info)
        actor, now = actor_of(info), info.context.clock()
        kinds = sorted({e.value for e in (list(ReminderKind) if events is None else events)})
        made: dict[str, str] = {}

        async def change(conn: Any) -> dict[str, Any]:
            webhook, made["secret"] = await rows.register_webhook(conn, actor, url, kinds, now=now)
            return {"webhook": webhook.id}  # the secret is not kept with the replayable result

        request = {"url": url, "events": kinds}
        result = await run_idempotent(info, idempotency_key, "registerWebhook", request, change)
        webhook = await _webhook(info, agency, int(result["webhook"]))
        return RegisteredWebhook(webhook=webhook, secret=made.get("secret"))

    @strawberry.mutation(description="Stop a webhook of your agency; its pending deliveries are not sent.")
    async def disable_webhook(self, info: Info, webhook_id: int, idempotency_key: Key) -> Webhook | None:
        agency = _agency(info)
        actor, now = actor_of(info), info.context.clock()

        async def change(conn: Any) -> dict[str, Any]:
            return {"webhook": (await rows.disable_webhook(conn, actor, webhook_id, now=now)).id}

        result = await run_idempotent(info, idempotency_key, "disableWebhook", {"webhook": webhook_id}, change)
        return await _webhook(info, agency, int(result["webhook"]))
