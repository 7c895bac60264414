"""Run mypy and compare its errors with mypy-baseline.txt, so that the baseline only shrinks.

The baseline holds the errors the code had when mypy joined ``make test`` (issue 17), one a line,
normalised (no line or column numbers) so that edits elsewhere in a file do not churn it. The
check fails when mypy reports an error the baseline does not list (fix it), when a listed error no
longer occurs (delete its line: it was fixed), and when a strict module (listed in the
``[[tool.mypy.overrides]]`` of pyproject.toml that sets all of ``STRICT_FLAGS``) appears in the
baseline at all. Each line is counted: an error listed once and reported twice is one new error.

    python .ci/mypy_baseline.py            # check (make test, make mypy)
    python .ci/mypy_baseline.py --update   # rewrite the baseline from what mypy reports now (make mypy-baseline)

Standard library only, beside mypy itself, run as ``python -m mypy`` by the same interpreter.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "mypy-baseline.txt"
FOLDERS = ("schema", "resolvers", "auth", "migrations")  # the folders beside hub/ that install under nrhub/
HEADER = (
    "# mypy errors accepted for now (.ci/mypy_baseline.py); this list only shrinks.\n"
    "# One normalised error a line, without line numbers. Regenerate with `make mypy-baseline`.\n"
)
# path:line[:column]: error: message  [code]
_ERROR = re.compile(r"^(?P<path>[^:\s][^:]*):\d+(?::\d+)?: error: (?P<message>.*)$")
_ON_LINE = re.compile(r"\bon line \d+")  # "defined on line 12": the number moves with edits


TREE = ROOT / ".mypy_cache" / "installed"


def installed_layout() -> Path:
    """The package as a wheel installs it (nrhub/, nrhub/schema/, ...), as symlinks into the checkout.

    The checkout's folders install as ``nrhub.*`` through ``[tool.setuptools.package-dir]``, which an
    editable install serves with an import hook; mypy does not run import hooks, so it reads this.
    """
    nrhub = TREE / "nrhub"
    shutil.rmtree(TREE, ignore_errors=True)
    nrhub.mkdir(parents=True)
    for entry in (ROOT / "hub").iterdir():
        if entry.name != "__pycache__":
            (nrhub / entry.name).symlink_to(entry)
    for folder in FOLDERS:
        (nrhub / folder).symlink_to(ROOT / folder)
    return nrhub


def checkout_path(path: str) -> str:
    """A path in the installed layout as the checkout names it: nrhub/web/app.py -> hub/web/app.py."""
    prefix = f"{TREE.relative_to(ROOT).as_posix()}/nrhub/"
    if not path.startswith(prefix):
        return path
    inner = path[len(prefix) :]
    return inner if inner.split("/")[0] in FOLDERS else f"hub/{inner}"


def run_mypy() -> tuple[list[str], str, int]:
    """The normalised errors mypy reports with pyproject.toml's settings, its output, its exit status."""
    nrhub = installed_layout()
    process = subprocess.run(
        [
            *(sys.executable, "-m", "mypy", "--no-pretty", "--no-error-summary", "--hide-error-context"),
            *(str(nrhub.relative_to(ROOT)), ".ci/mypy_baseline.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    output = process.stdout + process.stderr
    errors = [normalise(line) for line in output.splitlines() if _ERROR.match(line)]
    return errors, output, process.returncode


def normalise(line: str) -> str:
    """``path: error: message  [code]``, the same wherever in the file the error sits."""
    match = _ERROR.match(line)
    assert match is not None
    return f"{checkout_path(match['path'])}: error: {_ON_LINE.sub('on line N', match['message'])}"


# What `mypy --strict` turns on per module. An override that sets them all marks its modules strict
# (`strict = true` in an override would turn them on for every module).
STRICT_FLAGS = {
    "disallow_any_generics": True,
    "disallow_subclassing_any": True,
    "disallow_untyped_calls": True,
    "disallow_untyped_defs": True,
    "disallow_incomplete_defs": True,
    "check_untyped_defs": True,
    "disallow_untyped_decorators": True,
    "warn_unused_ignores": True,
    "warn_return_any": True,
    "implicit_reexport": False,
    "strict_equality": True,
    "extra_checks": True,
}


def strict_modules() -> list[str]:
    """The module patterns of pyproject.toml's overrides that set every one of ``STRICT_FLAGS``."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    overrides = config.get("tool", {}).get("mypy", {}).get("overrides", [])
    patterns: list[str] = []
    for override in overrides:
        if all(override.get(flag) == value for flag, value in STRICT_FLAGS.items()):
            modules = override["module"]
            patterns.extend([modules] if isinstance(modules, str) else modules)
    return patterns


def module_of(path: str) -> str:
    """``schema/plan.py`` -> ``nrhub.schema.plan``, ``hub/web/app.py`` -> ``nrhub.web.app``; a script
    outside the packages by its file name."""
    parts = Path(path).with_suffix("").parts
    if parts[0].startswith("."):
        return parts[-1]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["nrhub", *(parts[1:] if parts[0] == "hub" else parts)])


def is_strict(path: str, patterns: list[str]) -> bool:
    module = module_of(path)
    return any(module == p or (p.endswith(".*") and module.startswith(p[:-1])) for p in patterns)


def read_baseline() -> Counter[str]:
    if not BASELINE.exists():
        return Counter()
    lines = BASELINE.read_text().splitlines()
    return Counter(line for line in lines if line.strip() and not line.startswith("#"))


def check(errors: list[str], strict: list[str]) -> list[str]:
    """What is wrong, one message a problem; empty when mypy and the baseline agree."""
    reported, accepted = Counter(errors), read_baseline()
    problems = []
    for line in sorted(accepted):
        if is_strict(line.split(":", 1)[0], strict):
            problems.append(f"strict module in {BASELINE.name}, fix the error and delete the line: {line}")
    for line, count in sorted((reported - accepted).items()):
        problems.extend([f"new mypy error: {line}"] * count)
    for line, count in sorted((accepted - reported).items()):
        problems.extend([f"fixed, delete this line from {BASELINE.name}: {line}"] * count)
    return problems


def update(errors: list[str], strict: list[str]) -> list[str]:
    """Write the baseline from ``errors``; a strict module's errors are never written, only reported."""
    kept = sorted(e for e in errors if not is_strict(e.split(":", 1)[0], strict))
    BASELINE.write_text(HEADER + "".join(f"{line}\n" for line in kept))
    print(f"{BASELINE.name}: {len(kept)} errors")
    return [f"strict module, fix it: {e}" for e in errors if is_strict(e.split(":", 1)[0], strict)]


def main() -> int:
    parser = argparse.ArgumentParser(description="mypy against mypy-baseline.txt")
    parser.add_argument("--update", action="store_true", help="rewrite the baseline from what mypy reports now")
    args = parser.parse_args()
    errors, output, status = run_mypy()
    if status not in (0, 1) or (status == 1 and not errors):  # a crash or a configuration error
        print(output, end="", file=sys.stderr)
        print(f"mypy failed (exit status {status})", file=sys.stderr)
        return 2
    strict = strict_modules()
    problems = update(errors, strict) if args.update else check(errors, strict)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    if not args.update:
        print(f"mypy: {len(errors)} errors, each in {BASELINE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
