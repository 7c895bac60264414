"""The layering rule, read from the source: hub → schema → resolvers → auth, and never upwards.

Only ``hub/`` reads the environment; ``resolvers/`` knows nothing of GraphQL or HTTP frameworks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("hub", "schema", "resolvers", "auth")  # top to bottom
MAY_IMPORT = {layer: set(LAYERS[i + 1 :]) for i, layer in enumerate(LAYERS)}
FRAMEWORKS = {"strawberry", "starlette"}


def _imported_modules(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """Every absolute module name a module imports (relative imports resolved against ``package``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # ``from hub import schema``-style imports name submodules in the alias list.
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


def layer_violations(source: str, layer: str, package: str) -> list[str]:
    """What in ``source`` (a module of ``package``, in ``layer``) breaks the rules."""
    tree = ast.parse(source)
    problems = []
    for line, module in _imported_modules(tree, package):
        top = module.split(".")[0]
        if top in LAYERS and top != layer and top not in MAY_IMPORT[layer]:
            problems.append(f"line {line}: {layer} imports {module}, a layer above it")
        if layer == "resolvers" and top in FRAMEWORKS:
            problems.append(f"line {line}: resolvers imports {module}")
    if layer != "hub":
        problems += [f"line {line}: {layer} reads the environment" for line in _reads_environment(tree)]
    return problems


def _modules() -> list[tuple[str, Path]]:
    return [(layer, path) for layer in LAYERS for path in sorted((ROOT / layer).rglob("*.py"))]


@pytest.mark.parametrize(("layer", "path"), _modules(), ids=[str(p.relative_to(ROOT)) for _, p in _modules()])
def test_each_module_imports_only_layers_below_it(layer, path):
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    assert layer_violations(path.read_text(encoding="utf-8"), layer, package) == []


def test_every_layer_has_modules():
    assert {layer for layer, _ in _modules()} == set(LAYERS)


@pytest.mark.parametrize(
    ("source", "layer", "package"),
    [
        ("import hub.settings", "schema", "schema"),
        ("from schema import types", "resolvers", "resolvers"),
        ("from resolvers.periods import Period", "auth", "auth"),
        ("from hub import app", "auth", "auth"),
        ("def f():\n    from hub.settings import Settings", "resolvers", "resolvers"),
        ("import strawberry", "resolvers", "resolvers"),
        ("from starlette.requests import Request", "resolvers", "resolvers"),
        ("import os\nURL = os.environ['X']", "resolvers", "resolvers"),
        ("import os\nURL = os.getenv('X')", "auth", "auth"),
        ("from os import environ", "schema", "schema"),
    ],
)
def test_the_checker_catches_what_the_rule_forbids(source, layer, package):
    assert layer_violations(source, layer, package) != []


@pytest.mark.parametrize(
    ("source", "layer", "package"),
    [
        ("from schema import types\nfrom auth.principal import Principal\nimport os\nos.environ", "hub", "hub"),
        ("import strawberry\nfrom resolvers.periods import Period", "schema", "schema"),
        ("from auth.principal import Principal\nfrom . import periods", "resolvers", "resolvers"),
        ("import os\nimport joserfc", "auth", "auth"),
        ("from ..periods import Period\nfrom . import x", "resolvers", "resolvers.sources"),
    ],
)
def test_the_checker_allows_what_the_rule_allows(source, layer, package):
    assert layer_violations(source, layer, package) == []
