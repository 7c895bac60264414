"""The wheel a non-editable install gets: one top-level package, with its migrations and data.

Built for real (``pip wheel``), so that what is checked is what an operator installs.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"hub": "nrhub", "schema": "nrhub/schema", "resolvers": "nrhub/resolvers", "auth": "nrhub/auth"}


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("nrhub-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_package(wheel_names):
    tops = {name.split("/")[0] for name in wheel_names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"nrhub"}


@pytest.mark.slow
def test_the_wheel_holds_every_module_migration_and_data_file(wheel_names):
    expected = {
        f"{FOLDERS[folder]}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder in FOLDERS
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".py", ".csv", ".js", ".css", ".toml"} and "__pycache__" not in path.parts
    }
    expected |= {
        f"nrhub/migrations/{path.relative_to(ROOT / 'migrations').as_posix()}"
        for path in (ROOT / "migrations").rglob("*")
        if path.suffix in {".py", ".sql"}
    }
    assert expected - wheel_names == set()
