"""Reading an operator's TOML file (``nrhub regimes import``, ``nrhub catalogue import``)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def read_toml(file: Path, error: type[Exception]) -> dict[str, Any]:
    """The file's tables; ``error`` with a one-line reason when it cannot be read or parsed."""
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read {file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{file} is not valid TOML: {exc}") from None
