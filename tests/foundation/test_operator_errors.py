"""One root for the errors that end an ``nrhub`` command in one line (auth/operator_errors.py).

``nrhub.cli.main`` catches that root alone, so each kind of operator error must derive from it: one left out
would end its command in a traceback. The one-line output of each kind is tested where the kind is
(tests/foundation/test_config.py, test_migrate.py, tests/auth/test_scope_words.py, tests/reports, ...).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import sys
from pathlib import Path

import pytest

import nrhub.cli.main as cli_main
from nrhub.auth.clients import ClientError
from nrhub.auth.operator_errors import OperatorError
from nrhub.auth.scopes import ScopeError
from nrhub.cli.agencies import AgencyError
from nrhub.cli.audit import AuditFailure
from nrhub.cli.catalogue import CatalogueFileError
from nrhub.cli.main import PortInUse
from nrhub.cli.regimes import RegimeFileError
from nrhub.config.errors import ConfigError
from nrhub.db.embedded import EmbeddedStartError
from nrhub.db.migrate import MigrationError
from nrhub.db.pools import DatabaseUnreachable, UnsafeRequestRole
from nrhub.demo.load import DemoScaleMismatch
from tests.conftest import run_nrhub

ROOT = Path(__file__).resolve().parents[2]
KINDS = [
    ConfigError,
    DatabaseUnreachable,
    UnsafeRequestRole,
    MigrationError,
    EmbeddedStartError,
    DemoScaleMismatch,
    PortInUse,
    AuditFailure,
    RegimeFileError,
    CatalogueFileError,
    AgencyError,
    ClientError,
    ScopeError,
]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_every_kind_of_operator_error_derives_from_the_root(kind: type[Exception]) -> None:
    assert issubclass(kind, OperatorError)


def test_the_root_draws_every_kind_in_its_tree() -> None:
    tree = inspect.getdoc(inspect.getmodule(OperatorError))
    assert tree is not None
    assert [k.__name__ for k in KINDS if k.__name__ not in tree] == []


def test_the_command_line_catches_the_root_alone() -> None:
    """Not a list of kinds, which a new kind would have to join (and did not, before the root).

    Besides the root: a database nobody migrated yet, Ctrl-C, and a reader that left the pipe.
    """
    main = next(
        n
        for n in ast.walk(ast.parse(inspect.getsource(cli_main)))
        if isinstance(n, ast.FunctionDef) and n.name == "main"
    )
    caught = [ast.unparse(h.type) for h in ast.walk(main) if isinstance(h, ast.ExceptHandler) and h.type is not None]
    assert caught == ["OperatorError", "asyncpg.UndefinedTableError", "KeyboardInterrupt", "BrokenPipeError"]


async def test_an_operator_error_from_the_auth_layer_ends_in_one_line(database_url: str) -> None:
    run = await run_nrhub("clients", "disable", "no-such-client", database_url=database_url)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.splitlines() == ["nrhub: error: there is no client no-such-client"]


async def test_a_command_on_a_database_never_migrated_says_so_in_one_line(new_database) -> None:
    url = await new_database()
    run = await run_nrhub("clients", "list", database_url=url)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.splitlines() == [
        'nrhub: error: the database is not migrated (relation "oauth_client" does not exist): run `nrhub migrate`'
    ]


async def test_a_reader_leaving_the_pipe_ends_the_command_without_a_traceback() -> None:
    """``nrhub schema print | true``: the reader is gone before the command writes, so the write fails."""
    shell = await asyncio.create_subprocess_shell(
        f"{sys.executable} -m nrhub.cli schema print | true",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    _, err = await asyncio.wait_for(shell.communicate(), 60)
    assert err.decode() == ""
