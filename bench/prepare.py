"""Load the large demo set into the benchmark's own data folder (default ``.hub-data/bench``).

Runs ``nrhub demo load --scale large`` with ``HUB_DATA_DIR`` set, unless ``nrhub status`` already
counts the large set there. About 14 million observations: it takes several minutes, longer than a
shell session may allow, so start it in the background and follow its log::

    nohup .venv/bin/python -m bench.prepare > .hub-data/bench-prepare.log 2>&1 &
    tail -f .hub-data/bench-prepare.log     # ends with "bench: ready"

The folder is kept between runs; delete it to start again.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from bench.servers import ROOT

LARGE_AT_LEAST = 10_000_000  # observations: the large set, not the small one (about 180,000)
LOAD_TIMEOUT = 3 * 3600  # seconds


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(data_dir), HUB_LOG_LEVEL="warning")
    return env


def _nrhub(tree: Path, *command: str) -> list[str]:
    # The entry point of the ``nrhub`` script, run with the code of ``tree`` (see bench/servers.py).
    return [sys.executable, "-m", "nrhub.cli", *command]


def observations(data_dir: Path, tree: Path) -> int | None:
    """How many observations ``nrhub status`` counts in ``data_dir``; None when there is no database yet.

    Migrations added since the data was loaded are applied first (the hub would apply them when it
    starts anyway): ``nrhub status`` counts nothing while any is pending.
    """
    if not (data_dir / "pg").is_dir():
        return None
    subprocess.run(_nrhub(tree, "migrate"), cwd=tree, env=_environment(data_dir), check=True, timeout=600)
    status = subprocess.run(
        _nrhub(tree, "status"), cwd=tree, env=_environment(data_dir), capture_output=True, text=True, timeout=600
    )
    found = re.search(r"^observations: (\d+)$", status.stdout, re.MULTILINE)
    return int(found.group(1)) if found else None


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.prepare", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".hub-data" / "bench")
    parser.add_argument("--hub-tree", type=Path, default=ROOT, help="checkout whose loader runs (default: this one)")
    args = parser.parse_args()
    data_dir, tree = args.data_dir.resolve(), args.hub_tree.resolve()
    count = observations(data_dir, tree)
    if count is not None and count >= LARGE_AT_LEAST:
        print(f"bench: ready: {count:,} observations in {data_dir}")
        return 0
    print(f"bench: loading the large demo into {data_dir} (several minutes)", flush=True)
    load = subprocess.run(
        _nrhub(tree, "demo", "load", "--scale", "large"), cwd=tree, env=_environment(data_dir), timeout=LOAD_TIMEOUT
    )
    if load.returncode != 0:
        print("bench: error: the demo load failed (see above)", file=sys.stderr)
        return load.returncode
    print(f"bench: ready: {observations(data_dir, tree) or 0:,} observations in {data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
