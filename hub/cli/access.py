"""``nrhub clients``, ``nrhub users`` and ``nrhub keys``: the operator's OAuth commands.

A client secret is printed once, at creation or rotation, and stored only as a hash.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nrhub.auth.clients import create_client, disable_client, list_clients, rotate_secret
from nrhub.auth.keys import rotate_key
from nrhub.auth.scopes import parse_scope
from nrhub.auth.users import Account, create_user, disable_user, list_accounts
from nrhub.config.settings import Settings
from nrhub.db.pools import connect
from nrhub.resolvers.audit import Actor, append_entry

OPERATOR = Actor(agency=None, client=None, user="nrhub (operator)")
WithDatabase = Callable[[Settings, Callable[[str], Any]], Any]


def add_auth_commands(commands: argparse._SubParsersAction, with_database: WithDatabase) -> None:
    def on_connection(action: Callable[..., Any]) -> Callable[[Settings, argparse.Namespace], int]:
        def run(settings: Settings, args: argparse.Namespace) -> int:
            async def go(url: str) -> int:
                conn = await connect(url)
                try:
                    # The change and its audit entry commit together.
                    async with conn.transaction():
                        return int(await action(conn, settings, args))
                finally:
                    await conn.close()

            return int(with_database(settings, go))

        return run

    clients = commands.add_parser(
        "clients",
        help="register and manage OAuth clients",
        description="Register and manage the OAuth clients of agencies.",
    )
    sub = clients.add_subparsers(title="clients commands", metavar="COMMAND")
    create = sub.add_parser(
        "create",
        help="register a client and print its secret once",
        description="Register a client for an agency with the scopes it may ask for. "
        "Prints the client id and secret once; only a hash of the secret is kept.",
    )
    create.add_argument("--agency", required=True, help="agency code, e.g. BTC or UBND_79")
    create.add_argument("--scope", required=True, help='space-separated scopes, e.g. "data:read field:labour"')
    create.add_argument("--redirect-uri", action="append", default=[], help="for browser sign-in (repeatable)")
    create.add_argument("--name", help="a name operators recognise")
    create.add_argument("--public", action="store_true", help="a browser client without a secret (PKCE only)")
    create.add_argument("--json", action="store_true", help="print client_id and client_secret as JSON")
    create.set_defaults(run=on_connection(_create))
    listing = sub.add_parser("list", help="list clients", description="List registered clients (never secrets).")
    listing.set_defaults(run=on_connection(_list))
    disable = sub.add_parser(
        "disable",
        help="disable a client; its tokens stop working at once",
        description="Disable a client. Its tokens are refused from the next request on.",
    )
    disable.add_argument("client_id")
    disable.set_defaults(run=on_connection(_disable))
    rotate = sub.add_parser(
        "rotate-secret",
        help="give a client a new secret (printed once)",
        description="Replace a client's secret; the old one stops working at once.",
    )
    rotate.add_argument("client_id")
    rotate.add_argument("--json", action="store_true", help="print client_id and client_secret as JSON")
    rotate.set_defaults(run=on_connection(_rotate))
    clients.set_defaults(run=lambda settings, args: clients.print_help() or 2)

    users = commands.add_parser("users", help="manage people who sign in", description="People who sign in.")
    users_sub = users.add_subparsers(title="users commands", metavar="COMMAND")
    user_create = users_sub.add_parser(
        "create",
        help="add a person (password read from standard input or prompted)",
        description="Add a person of an agency with the scopes they are granted. The password (12+ "
        "characters) is read from standard input when it is not a terminal, else prompted; it is stored "
        "as an scrypt hash.",
    )
    user_create.add_argument("--username", required=True)
    user_create.add_argument("--agency", required=True, help="agency code")
    user_create.add_argument("--scope", required=True, help="space-separated scopes the person is granted")
    user_create.set_defaults(run=on_connection(_create_user))
    user_list = users_sub.add_parser(
        "list",
        help="list people (never password hashes)",
        description="List the people who may sign in: username, agency, whether disabled, when created, scopes.",
    )
    user_list.add_argument("--json", action="store_true", help="print a JSON array of objects")
    user_list.set_defaults(run=on_connection(_list_users))
    user_disable = users_sub.add_parser(
        "disable",
        help="disable a person; they cannot sign in and their sessions end at once",
        description="Disable a person. They can no longer sign in; their refresh tokens are revoked, with "
        "the access tokens issued beside them, and any token of theirs is refused from the next request on.",
    )
    user_disable.add_argument("username")
    user_disable.set_defaults(run=on_connection(_disable_user))
    users.set_defaults(run=lambda settings, args: users.print_help() or 2)

    keys = commands.add_parser("keys", help="manage token signing keys", description="Token signing keys.")
    keys_sub = keys.add_subparsers(title="keys commands", metavar="COMMAND")
    key_rotate = keys_sub.add_parser(
        "rotate",
        help="add a new signing key; old public keys stay published until their tokens expire",
        description="Sign new tokens with a new key. The previous key stays in the JWKS for one token "
        "lifetime plus two minutes, so tokens signed before the rotation still verify.",
    )
    key_rotate.set_defaults(run=on_connection(_rotate_key))
    keys.set_defaults(run=lambda settings, args: keys.print_help() or 2)


async def _create(conn: Any, settings: Settings, args: argparse.Namespace) -> int:
    client, secret = await create_client(
        conn,
        agency=args.agency,
        scopes=parse_scope(args.scope),
        name=args.name,
        redirect_uris=args.redirect_uri,
        public=args.public,
    )
    await _audit(
        conn,
        "client.create",
        f"client:{client.client_id}",
        after={
            "agency": client.agency_code,
            "scopes": list(client.scopes),
            "redirect_uris": list(client.redirect_uris),
            "confidential": client.confidential,
        },
    )
    _print_secret(client.client_id, secret, as_json=args.json)
    return 0


async def _create_user(conn: Any, settings: Settings, args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("Password: ")
    user = await create_user(
        conn, username=args.username, password=password, agency=args.agency, scopes=parse_scope(args.scope)
    )
    await _audit(
        conn, "user.create", f"user:{user.username}", after={"agency": user.agency_code, "scopes": sorted(user.scopes)}
    )
    print(f"user {user.username} of {user.agency_code} created")
    return 0


async def _list_users(conn: Any, settings: Settings, args: argparse.Namespace) -> int:
    accounts = await list_accounts(conn)
    if args.json:
        print(json.dumps([_account_json(a) for a in accounts], ensure_ascii=False))
        return 0
    for a in accounts:
        state = "disabled" if a.disabled else "active"
        created = a.created_at.isoformat(timespec="seconds")
        print(f"{a.username}\t{a.agency_code}\t{state}\t{created}\t{' '.join(a.scopes)}")
    return 0


def _account_json(account: Account) -> dict[str, Any]:
    return {
        "username": account.username,
        "agency": account.agency_code,
        "scopes": list(account.scopes),
        "disabled": account.disabled,
        "created_at": account.created_at.isoformat(),
    }


async def _disable_user(conn: Any, settings: Settings, args: argparse.Namespace) -> int:
    was_disabled, revoked = await disable_user(conn, args.username)
    await _audit(
        conn,
        "user.disable",
        f"user:{args.username}",
        after={"disabled": True, "was_disabled": was_disabled, "sign_ins_revoked": revoked},
    )
    print(f"user {args.username} disabled; {revoked} sign-in(s) revoked")
    return 0


async def _list(conn: Any, settings: Settings, args: argparse.Namespace) -> int:
    for c in await list_clients(conn):
        state = "disabled" if c.disabled else "active"
        kind = "confidential" if c.confidential else "public"
        print(f"{c.client_id}\t{c.agency_code}\t{state}\t{kind}\t{' '.join(c.scopes)}")
    return 0


async def _disable(conn: Any, settings: Settings, args: argparse.Namespace) -> int:
    await disable_client(conn, args.client_id)
    await _audit(conn, "client.disable", f"client:{args.client_id}", after={"disabled": True})
    print(f"client {args.client_id} disabled")
    return 0


async def _rotate(conn: Any, settings: Settings, args: argparse.Namespace) -> int:
    secret = await rotate_secret(conn, args.client_id)
    await _audit(conn, "client.rotate_secret", f"client:{args.client_id}", after={"secret": "replaced"})
    _print_secret(args.client_id, secret, as_json=args.json)
    return 0


async def _rotate_key(conn: Any, settings: Settings, args: argparse.Namespace) -> int:
    kid = await rotate_key(conn, settings.token_lifetime)
    await _audit(conn, "key.rotate", f"key:{kid}", after={"kid": kid})
    print(f"signing with new key {kid}")
    return 0


async def _audit(conn: Any, action: str, subject: str, *, after: dict[str, Any]) -> None:
    """Operators' changes to clients, people and keys go into the audit chain (never a secret)."""
    await append_entry(conn, OPERATOR, action, subject, after=after, at=datetime.now(UTC))


def _print_secret(client_id: str, secret: str | None, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"client_id": client_id, "client_secret": secret}))
        return
    print(f"client_id:     {client_id}")
    if secret:
        print(f"client_secret: {secret}")
        print("The secret is shown only now; store it safely.", file=sys.stderr)
