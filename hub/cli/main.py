"""The ``nrhub`` command line: serve, migrate, load demo data, report status.

Every expected failure (bad configuration, unreachable database, edited migration, port in use)
is an ``OperatorError`` (auth/operator_errors.py draws the tree) and ends with one line on stderr
naming the problem and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from nrhub.auth.operator_errors import OperatorError
from nrhub.cli.access import add_auth_commands
from nrhub.cli.agencies import add_agency_commands
from nrhub.cli.audit import add_audit_commands
from nrhub.cli.catalogue import add_catalogue_commands
from nrhub.cli.locks import add_lock_commands
from nrhub.cli.regimes import add_regime_commands
from nrhub.cli.rules import add_rule_commands
from nrhub.cli.webhooks import add_webhook_commands
from nrhub.config.settings import Settings, load_settings
from nrhub.db.embedded import database_url
from nrhub.db.migrate import migrate, pending_migrations
from nrhub.db.pools import connect
from nrhub.web.collector import settle_collector


class PortInUse(OperatorError):
    """The configured address cannot be bound."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        settings = load_settings(args.config)
        result: int = args.run(settings, args)
        return result
    except OperatorError as exc:  # every expected failure, whichever layer raised it (auth/operator_errors.py)
        print(f"nrhub: error: {exc}", file=sys.stderr)
        return 1
    except asyncpg.UndefinedTableError as exc:  # a command run before the database was migrated
        print(f"nrhub: error: the database is not migrated ({exc}): run `nrhub migrate`", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`nrhub clients list | head`): nothing to say to it. Python's own recipe:
        # point stdout at devnull so that flushing at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nrhub",
        description="The national reporting hub: one GraphQL API over national data and reports.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (default: $HUB_CONFIG)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="migrate the database and serve the API",
        description="Serve the hub over HTTP. Starts the embedded PostgreSQL when HUB_DATABASE_URL "
        "is unset, applies pending migrations, and stops everything on Ctrl-C or SIGTERM.",
    )
    serve.add_argument("--host", help="address to bind (default: setting host)")
    serve.add_argument("--port", type=int, help="port to bind (default: setting port)")
    serve.set_defaults(run=_serve)

    mig = commands.add_parser(
        "migrate",
        help="apply pending database migrations",
        description="Apply the numbered SQL migrations not yet applied, in order, each in its own "
        "transaction. Refuses to run when an applied migration file was edited.",
    )
    mig.set_defaults(run=_migrate)

    status = commands.add_parser(
        "status",
        help="show database, migration and data status",
        description="Report whether the database is reachable, which migrations are pending, "
        "and how many units, indicators and observations it holds.",
    )
    status.set_defaults(run=_status)

    demo = commands.add_parser("demo", help="demo data", description="Demo data commands.")
    demo_commands = demo.add_subparsers(title="demo commands", metavar="COMMAND")
    load = demo_commands.add_parser(
        "load",
        help="load reference data and synthetic demo observations",
        description="Load the real reference data (provinces, the 2025 lineage, agencies, "
        "indicators), synthetic communes, reporting regimes and synthetic observations. "
        "Idempotent: loading twice leaves the same rows.",
    )
    load.add_argument(
        "--scale",
        choices=["small", "large"],
        default="small",
        help="small (default, seconds) or large (10 million+ observations)",
    )
    load.set_defaults(run=_demo_load)
    demo.set_defaults(run=lambda settings, args: demo.print_help() or 2)

    schema = commands.add_parser("schema", help="the GraphQL schema", description="GraphQL schema commands.")
    schema_commands = schema.add_subparsers(title="schema commands", metavar="COMMAND")
    printer = schema_commands.add_parser(
        "print",
        help="print the schema's SDL",
        description="Print the schema in SDL, as committed in schema.graphql (needs no database).",
    )
    printer.set_defaults(run=_print_schema)
    schema.set_defaults(run=lambda settings, args: schema.print_help() or 2)
    add_auth_commands(commands, _with_database)
    add_audit_commands(commands, _with_database)
    add_regime_commands(commands, _with_database)
    add_rule_commands(commands, _with_database)
    add_webhook_commands(commands, _with_database)
    add_lock_commands(commands, _with_database)
    add_catalogue_commands(commands, _with_database)
    add_agency_commands(commands, _with_database)
    return parser


def _print_schema(settings: Settings, args: argparse.Namespace) -> int:
    from nrhub.schema.build import print_schema

    sys.stdout.write(print_schema())
    return 0


def _with_database(settings: Settings, action: Callable[[str], Any]) -> Any:
    with database_url(settings) as url:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(action(url))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (uvicorn[standard] brings it): a cheaper event loop for serving."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT, then stop gracefully and return 0 (nrhub.web.server.HubServer)."""
    from nrhub.web.app import create_app
    from nrhub.web.server import HubServer, server_config

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = settings.replace(**overrides)
    # Bind before starting anything, so a taken port fails fast and in plain words.
    sock = _bind(settings.host, settings.port)
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")

    async def run(url: str) -> int:
        if settings.migrate_on_start:
            await _apply_migrations(url)
        else:
            # Fail here, in one line, rather than in the app's lifespan with uvicorn's traceback.
            conn = await connect(url)
            await conn.close()
        server = HubServer(server_config(create_app(settings, url, after_start=settle_collector), settings))
        print(f"nrhub: serving on http://{settings.host}:{settings.port}", file=sys.stderr, flush=True)
        await server.serve(sockets=[sock])
        return 0 if server.started else 1

    try:
        return int(_with_database(settings, run))
    finally:
        sock.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets it knows are TCP, and without
    # it small responses on kept-alive connections wait ~40 ms for delayed ACKs (measured in bench/).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def _apply_migrations(url: str) -> list[str]:
    conn = await connect(url)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    for name in applied:
        print(f"nrhub: applied {name}", file=sys.stderr)
    return applied


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    applied = _with_database(settings, _apply_migrations)
    print(f"{len(applied)} migration(s) applied" if applied else "database is up to date")
    return 0


def _status(settings: Settings, args: argparse.Namespace) -> int:
    async def report(url: str) -> int:
        conn = await connect(url)
        try:
            pending = await pending_migrations(conn)
            print(f"database: reachable ({'embedded' if settings.embedded else 'configured'})")
            print(f"migrations pending: {', '.join(pending) if pending else 'none'}")
            if pending:
                return 1
            counts = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM admin_unit) AS units,"
                " (SELECT count(*) FROM indicator) AS indicators,"
                " (SELECT count(*) FROM observation_current) AS observations,"
                " (SELECT count(*) FROM submission) AS submissions"
            )
            for key, value in counts.items():
                print(f"{key}: {value}")
            return 0
        finally:
            await conn.close()

    return int(_with_database(settings, report))


def _demo_load(settings: Settings, args: argparse.Namespace) -> int:
    from nrhub.demo.load import load_demo
    from nrhub.demo.population import load_population

    async def run(url: str) -> int:
        await _apply_migrations(url)
        conn = await connect(url)
        try:
            summary = await load_demo(conn, scale=args.scale)
        finally:
            await conn.close()
        # The demo's national population database, a federated source (README, Federation).
        summary.update(await load_population(url))
        for key, value in summary.items():
            print(f"{key}: {value}")
        return 0

    return int(_with_database(settings, run))


if __name__ == "__main__":
    sys.exit(main())
