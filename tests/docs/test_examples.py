"""Every example in README.md and docs/*.md, run verbatim against the demo (tests/docs/conftest.py).

- Each ```graphql block is posted to the demo hub with the token of docs/api.md's command-centre
  reader (READER_SCOPE) and must answer without errors; a block whose fence says ``error=CODE``
  (```graphql error=BAD_USER_INPUT) shows an error and must answer with that code, and only that.
- Each page's ```sh blocks run in order in one bash session, so a variable one sets ($TOKEN) is there
  for the next. Every command must exit 0, and the output of each command that starts with ``curl``
  must be JSON without ``errors`` (GraphQL) or ``error`` (OAuth2).
- ```toml blocks are settings files: each must load as `nrhub --config` loads one.
- A block that cannot run here is marked in its fence, ```sh not-run (`make run`, a server that does
  not stop, a placeholder), and is reported as skipped. An unmarked block of a new page or a new
  example is picked up by the enumeration below; a fence of another language fails.

One rewrite only: http://127.0.0.1:8000, the address `make run` serves on, becomes the test hub's.
The shell has HUB_DATABASE_URL set to the demo database (where `make run` would use its embedded one).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nrhub.config.settings import load_settings
from tests.conftest import ROOT
from tests.docs.conftest import shell_environment

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SERVED_AT = "http://127.0.0.1:8000"
LANGUAGES = {"graphql", "sh", "toml"}
NOT_RUN = "not-run"
ERROR = re.compile(r"error=([A-Z_]+)")


@dataclass(frozen=True)
class Example:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    markers: tuple[str, ...]
    text: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return NOT_RUN not in self.markers


def read_examples(page: Path) -> list[Example]:
    """The fenced blocks of a page, in order; the fence's info string is its language and markers."""
    found: list[Example] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    opened: tuple[int, list[str]] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.startswith("```"):
            body.append(line)
            continue
        if opened is None:
            opened, body = (number, line[3:].split()), []
        else:
            start, info = opened
            found.append(Example(page, start, info[0] if info else "", tuple(info[1:]), "\n".join(body) + "\n"))
            opened = None
    assert opened is None, f"{page.name}: the fence opened on line {opened[0]} is never closed"
    return found


EXAMPLES = [example for page in PAGES for example in read_examples(page)]
GRAPHQL = [e for e in EXAMPLES if e.language == "graphql"]
SHELL_PAGES = sorted({e.page for e in EXAMPLES if e.language == "sh" and e.runs})
NOT_RUN_EXAMPLES = [e for e in EXAMPLES if not e.runs]


def test_every_example_has_a_language_this_test_knows() -> None:
    assert PAGES[1:], "docs/*.md are missing"
    unknown = [(e.name, e.language, e.markers) for e in EXAMPLES if e.language not in LANGUAGES]
    assert not unknown, f"fences this test does not run: {unknown}"
    markers = [(e.name, m) for e in EXAMPLES for m in e.markers if m != NOT_RUN and not ERROR.fullmatch(m)]
    assert not markers, f"unknown fence markers: {markers}"
    assert GRAPHQL and SHELL_PAGES, "the enumeration found no examples"


@pytest.mark.parametrize("example", NOT_RUN_EXAMPLES, ids=lambda e: e.name)
def test_examples_marked_not_run(example: Example) -> None:
    pytest.skip(f"{example.name}: ```{example.language} {NOT_RUN} (first line: {example.text.splitlines()[0]!r})")


@pytest.mark.parametrize("example", GRAPHQL, ids=lambda e: e.name)
async def test_graphql_example(example: Example, demo_hub: str, reader_token: str) -> None:
    if not example.runs:
        pytest.skip(f"{example.name} is marked {NOT_RUN} (it needs another caller's token; a test of its own runs it)")
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            f"{demo_hub}/graphql",
            json={"query": example.text},
            headers={"Authorization": f"Bearer {reader_token}", "Accept": "application/json"},
        )
    result = answer.json()
    expected = [m[1] for m in map(ERROR.fullmatch, example.markers) if m]
    if expected:
        codes = {e.get("extensions", {}).get("code") for e in result.get("errors", [])}
        assert codes == set(expected), (example.name, result)
    else:
        assert answer.status_code == 200 and "errors" not in result, (example.name, result)
        assert result["data"], (example.name, result)


def shell_commands(example: Example) -> list[str]:
    """The block's commands: lines joined across trailing backslashes, comments and blank lines left out."""
    commands: list[str] = []
    pending = ""
    for line in example.text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line + "\n"
        if not line.endswith("\\"):
            commands.append(pending.rstrip("\n"))
            pending = ""
    assert not pending, f"{example.name}: a command ends with a backslash"
    return commands


@dataclass(frozen=True)
class Ran:
    example: str
    command: str
    status: int
    output: str


MARK = "\x1enrhub-docs"


async def run_in_one_shell(commands: list[tuple[str, str]], environ: dict[str, str]) -> list[Ran]:
    """Run (example name, command) pairs in one bash, in order, stopping at the first failure."""
    script = []
    for index, (_, command) in enumerate(commands):
        script += [command, f"status=$?; printf '\\n{MARK} {index} %d\\n' $status; [ $status = 0 ] || exit $status"]
    process = await asyncio.create_subprocess_exec(
        "bash", "--noprofile", "--norc", "-c", "\n".join(script), cwd=ROOT, env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 300)
    ran: list[Ran] = []
    rest = out.decode()
    for index, (name, command) in enumerate(commands):
        output, marker, rest = rest.partition(f"\n{MARK} {index} ")
        if not marker:
            raise AssertionError(f"{name}: the shell stopped before `{command}`: {err.decode()[-2000:]}")
        status, _, rest = rest.partition("\n")
        ran.append(Ran(name, command, int(status), output))
    return ran


def json_errors(output: str) -> Any:
    """None when the output is JSON without errors; else what is wrong with it."""
    try:
        answer = json.loads(output)
    except ValueError:
        return f"not JSON: {output[:500]!r}"
    if isinstance(answer, dict) and ("errors" in answer or "error" in answer):
        return answer
    return None


@pytest.mark.parametrize("page", SHELL_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
async def test_shell_examples_of_a_page(page: Path, demo_hub: str, demo_database: str) -> None:
    commands = [
        (example.name, command.replace(SERVED_AT, demo_hub))
        for example in EXAMPLES
        if example.page == page and example.language == "sh" and example.runs
        for command in shell_commands(example)
    ]
    for ran in await run_in_one_shell(commands, shell_environment(demo_database)):
        assert ran.status == 0, (ran.example, ran.command, ran.output[-2000:])
        if ran.command.startswith("curl"):
            assert json_errors(ran.output) is None, (ran.example, ran.command, json_errors(ran.output))


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.language == "toml"], ids=lambda e: e.name)
def test_toml_example_is_a_valid_settings_file(example: Example, tmp_path: Path) -> None:
    path = tmp_path / "example.toml"
    path.write_text(example.text, encoding="utf-8")
    load_settings(path, environ={})
