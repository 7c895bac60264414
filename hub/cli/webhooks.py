"""``nrhub webhooks list`` and ``nrhub webhooks deliveries``: where reminders go and how they fared.

Agencies register their webhooks over GraphQL (registerWebhook); operators see every agency's here,
read only. Secrets are never shown.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from nrhub.auth.operator_errors import OperatorError
from nrhub.cli import usage
from nrhub.config.settings import Settings
from nrhub.db.pools import connect
from nrhub.resolvers.errors import HubError
from nrhub.resolvers.hub_time import shown
from nrhub.resolvers.pagination import PageRequest
from nrhub.resolvers.webhooks import STATUSES, Delivery, Webhook, fetch_webhook, list_deliveries, list_webhooks

WithDatabase = Callable[[Settings, Callable[[str], Any]], Any]


class WebhookError(OperatorError):
    """A webhook command cannot answer; the message says why."""


def add_webhook_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], with_database: WithDatabase
) -> None:
    webhooks = commands.add_parser(
        "webhooks", help="webhooks", description="Agencies' webhooks for reminders, and their deliveries."
    )
    sub = webhooks.add_subparsers(title="webhooks commands", metavar="COMMAND")
    listing = sub.add_parser("list", help="list webhooks", description="List webhooks, by id (secrets never shown).")
    listing.add_argument("--agency", metavar="CODE", help="only this agency's")
    listing.add_argument("--json", action="store_true", help="print a JSON array of objects")
    listing.set_defaults(run=lambda settings, args: with_database(settings, lambda url: _list(url, args)))
    deliveries = sub.add_parser(
        "deliveries",
        help="list a webhook's deliveries",
        description="List a webhook's deliveries, newest first, with their status, attempts and last error.",
    )
    deliveries.add_argument("webhook", type=int, metavar="WEBHOOK_ID")
    deliveries.add_argument("--status", choices=STATUSES, help="only deliveries in this status")
    deliveries.add_argument("--limit", type=int, default=50, help="at most this many (default 50, at most 500)")
    deliveries.add_argument("--json", action="store_true", help="print a JSON array of objects")
    deliveries.set_defaults(run=lambda settings, args: with_database(settings, lambda url: _deliveries(url, args)))
    webhooks.set_defaults(run=lambda settings, args: usage(webhooks))


async def _list(url: str, args: argparse.Namespace) -> int:
    conn = await connect(url)
    try:
        found = await list_webhooks(conn, args.agency)
    finally:
        await conn.close()
    if args.json:
        print(json.dumps([_webhook_json(w) for w in found], ensure_ascii=False))
        return 0
    for w in found:
        state = "disabled" if w.disabled else "enabled"
        print(f"{w.id}\t{w.agency_code}\t{state}\t{','.join(w.events)}\t{w.url}")
    return 0


async def _deliveries(url: str, args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 500:
        raise WebhookError("--limit must be between 1 and 500")
    conn = await connect(url)
    try:
        webhook = await fetch_webhook(conn, args.webhook)
        if webhook is None:
            raise WebhookError(f"there is no webhook {args.webhook}")
        page = await list_deliveries(conn, webhook.agency_code, webhook.id, args.status, PageRequest(args.limit, None))
    except HubError as exc:
        raise WebhookError(exc.message) from None
    finally:
        await conn.close()
    if args.json:
        print(json.dumps([_delivery_json(d) for d in page.items], ensure_ascii=False))
        return 0
    for d in page.items:
        error = d.last_error or ""
        code = d.last_status if d.last_status is not None else "-"
        print(f"{d.id}\t{d.event}\t{d.status}\tattempts={d.attempts}\tlast={code}\t{error}")
    return 0


def _webhook_json(w: Webhook) -> dict[str, Any]:
    return {
        "id": w.id,
        "agency": w.agency_code,
        "url": w.url,
        "events": w.events,
        "disabled": w.disabled,
        "created_by": w.created_by,
        "created_at": shown(w.created_at),
    }


def _delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "webhook": d.webhook_id,
        "event": d.event,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": shown(d.next_attempt_at) if d.status == "PENDING" else None,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "created_at": shown(d.created_at),
        "delivered_at": shown(d.delivered_at) if d.delivered_at else None,
        "payload": json.loads(d.payload),
    }
