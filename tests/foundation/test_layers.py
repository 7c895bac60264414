"""The architecture, read from the source.

The layers, top to bottom: ``hub`` → ``schema`` → ``resolvers`` → ``auth``, never upwards. Inside
``hub/``, its parts in the same way: ``cli`` → ``web`` and ``demo`` → ``db`` → ``config``. Only
``hub/`` reads the environment; ``resolvers/`` knows nothing of GraphQL or HTTP frameworks. No two
modules import each other, however indirectly (imports under ``if TYPE_CHECKING:`` aside, as they
never run). Every import names the installed package, ``nrhub.…``: a bare ``import schema`` would
load a second copy of the module from the checkout, or another distribution's ``schema``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("hub", "schema", "resolvers", "auth")  # top to bottom
PACKAGE = {"hub": "nrhub", "schema": "nrhub.schema", "resolvers": "nrhub.resolvers", "auth": "nrhub.auth"}
# hub's sub-packages, each with the ones it may import; its top-level modules (nrhub.errors) serve all.
HUB_PARTS = {
    "cli": {"web", "demo", "db", "config"},
    "web": {"db", "config"},
    "demo": {"db", "config"},
    "db": {"config"},
    "config": set(),
}
FRAMEWORKS = {"strawberry", "starlette"}
BARE = {"hub", "schema", "resolvers", "auth", "migrations"}


def layer_of(module: str) -> tuple[str, str | None] | None:
    """The layer of an ``nrhub`` module, and for hub's modules the part of hub it is in."""
    parts = module.split(".")
    if parts[0] != "nrhub":
        return None
    if len(parts) > 1 and parts[1] in {"schema", "resolvers", "auth", "migrations"}:
        return parts[1], None
    return "hub", parts[1] if len(parts) > 2 and parts[1] in HUB_PARTS else None


def _in_type_checking_block(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            return True
    return False


def imported_modules(tree: ast.AST, package: str, *, at_run_time: bool = False) -> list[tuple[int, str]]:
    """Every absolute module name a module imports (relative imports resolved against ``package``)."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if at_run_time and _in_type_checking_block(node, parents):
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # ``from nrhub import schema``-style imports name submodules in the alias list.
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _reads_environment(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
            if node.attr in {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}:
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            if {a.name for a in node.names} & {"environ", "environb", "getenv", "getenvb"}:
                lines.append(node.lineno)
    return lines


def layer_violations(source: str, package: str) -> list[str]:
    """What in ``source`` (a module of ``package``, e.g. ``nrhub.resolvers``) breaks the rules."""
    tree = ast.parse(source)
    here = layer_of(package + ".x")
    assert here is not None, package
    layer, part = here
    below = set(LAYERS[LAYERS.index(layer) + 1 :])
    problems = []
    for line, module in imported_modules(tree, package):
        top = module.split(".")[0]
        if top in BARE:
            problems.append(f"line {line}: imports {module}, not nrhub.{module.removeprefix('hub.')}")
        if layer == "resolvers" and top in FRAMEWORKS:
            problems.append(f"line {line}: resolvers imports {module}")
        there = layer_of(module)
        if there is None or there[0] == "migrations":
            continue
        if there[0] != layer and there[0] not in below:
            problems.append(f"line {line}: {layer} imports {module}, a layer above it")
        if layer == there[0] == "hub" and part and there[1] and there[1] != part and there[1] not in HUB_PARTS[part]:
            problems.append(f"line {line}: hub's {part} imports {module}, a part above it")
    if layer != "hub":
        problems += [f"line {line}: {layer} reads the environment" for line in _reads_environment(tree)]
    return problems


def _modules() -> dict[str, Path]:
    """Every module of the hub, by its installed name."""
    found = {}
    for folder, name in PACKAGE.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            found[".".join([name, *parts[: -1 if parts[-1] == "__init__" else None]])] = path
    return found


def _package(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rsplit(".", 1)[0]


MODULES = _modules()


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_only_what_is_below_it(module):
    path = MODULES[module]
    assert layer_violations(path.read_text(encoding="utf-8"), _package(module, path)) == []


def test_every_layer_and_every_part_of_hub_has_modules():
    assert {layer_of(m)[0] for m in MODULES} == set(LAYERS)
    assert {layer_of(m)[1] for m in MODULES} - {None} == set(HUB_PARTS)


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = stack[stack.index(node) :]
                del stack[stack.index(node) :]
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


def test_no_modules_import_each_other():
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[module] = set()
        for _, name in imported_modules(tree, _package(module, path), at_run_time=True):
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                graph[module].add(name)
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    ("source", "package"),
    [
        ("import nrhub.config.settings", "nrhub.schema"),
        ("from nrhub.schema import types", "nrhub.resolvers"),
        ("from nrhub.resolvers.periods import Period", "nrhub.auth"),
        ("from nrhub import web", "nrhub.auth"),
        ("def f():\n    from nrhub.config.settings import Settings", "nrhub.resolvers"),
        ("import strawberry", "nrhub.resolvers"),
        ("from starlette.requests import Request", "nrhub.resolvers"),
        ("import os\nURL = os.environ['X']", "nrhub.resolvers"),
        ("import os\nURL = os.getenv('X')", "nrhub.auth"),
        ("from os import environ", "nrhub.schema"),
        ("from resolvers.periods import Period", "nrhub.schema"),
        ("import hub.config.settings", "nrhub.cli"),
        ("from nrhub.web.app import create_app", "nrhub.config"),
        ("from nrhub.cli.main import main", "nrhub.web"),
        ("from nrhub.web import graphiql", "nrhub.demo"),
        ("from nrhub.demo import load", "nrhub.db"),
    ],
)
def test_the_checker_catches_what_the_rule_forbids(source, package):
    assert layer_violations(source, package) != []


@pytest.mark.parametrize(
    ("source", "package"),
    [
        ("from nrhub.schema import types\nfrom nrhub.auth.principal import Principal\nimport os\nos.environ", "nrhub"),
        ("import strawberry\nfrom nrhub.resolvers.periods import Period", "nrhub.schema"),
        ("from nrhub.auth.principal import Principal\nfrom . import periods", "nrhub.resolvers"),
        ("import os\nimport joserfc", "nrhub.auth"),
        ("from ..periods import Period\nfrom . import x", "nrhub.resolvers.sources"),
        ("from nrhub.web.app import create_app\nfrom nrhub.demo.load import load", "nrhub.cli"),
        ("from nrhub.db.pools import open_pools\nfrom nrhub.config.settings import Settings", "nrhub.web"),
        ("from nrhub.config.settings import Settings\nfrom nrhub.errors import OperatorError", "nrhub.db"),
    ],
)
def test_the_checker_allows_what_the_rule_allows(source, package):
    assert layer_violations(source, package) == []
