"""Reading an operator's TOML file (the settings file, ``nrhub regimes import``, ``nrhub catalogue import``).

Every way the file can fail to be read is said in one line naming the file: a path that does not
exist, a symbolic link to nothing, a directory, a file the process may not read (even as root, some
files under /proc and /sys are write-only), bytes that are not UTF-8, or text that is not TOML.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any


def read_toml(file: Path, error: type[Exception], label: str = "file") -> dict[str, Any]:
    """The file's tables; ``error`` with a one-line reason, starting with ``label`` and the path, if there are none."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{label} {file} {unreadable(file, exc)}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{label} {file} is not UTF-8 text: byte {exc.start} cannot be decoded") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{label} {file} is not valid TOML: {exc}") from None


def unreadable(file: Path, exc: OSError) -> str:
    """Why ``file`` could not be read, to follow its name: ``does not exist``, ``is a directory``, ..."""
    if isinstance(exc, FileNotFoundError) and file.is_symlink():
        return f"is a broken symbolic link (to {os.readlink(file)}, which does not exist)"
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return "does not exist"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "cannot be read: permission denied"
    return f"cannot be read: {exc.strerror or exc}"
