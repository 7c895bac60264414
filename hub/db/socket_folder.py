"""Where the embedded server's Unix socket lives: in its data directory, or a private folder when that path is too long.

The data directory (mode 0700, owned by the user postgres runs as) keeps the socket private: only that
user and root can connect, which is what lets the server trust every local connection. A socket's path
must fit in ``sun_path`` (108 bytes with its final NUL), so a deep data directory cannot hold it; the
socket then goes to ``/tmp/nrhub-pg-<hash of the data directory>``, a folder made with mode 0700 for
that same user. Its name is derived, not random, so that a server restarted after a crash listens where
the hub's connection URL already points. ``/tmp`` is shared: a folder of that name made by anyone else,
or open to others, or a symbolic link, is refused rather than used.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from nrhub.db.embedded_errors import EmbeddedStartError

SOCKET_NAME = ".s.PGSQL.5432"  # PostgreSQL's name for the socket of port 5432, the port it is started on
_SUN_PATH_BYTES = 107  # sockaddr_un.sun_path on Linux, less the final NUL
_SHARED_ROOT = Path("/tmp")


def socket_folder(pgdata: Path, owner: int) -> Path:
    """The folder for the socket of ``pgdata``'s server, run as user id ``owner``; made if needed."""
    if len(os.fsencode(pgdata / SOCKET_NAME)) <= _SUN_PATH_BYTES:
        return pgdata
    digest = hashlib.sha256(os.fsencode(pgdata)).hexdigest()[:16]
    folder = _SHARED_ROOT / f"nrhub-pg-{digest}"
    try:
        os.mkdir(folder, 0o700)
        if os.geteuid() != owner:
            os.chown(folder, owner, -1)
    except FileExistsError:
        pass
    except OSError as exc:
        raise EmbeddedStartError(f"cannot make {folder} for the socket of {pgdata}: {exc.strerror}") from None
    _check_private(folder, owner, pgdata)
    return folder


def is_fallback_folder(folder: Path) -> bool:
    """True for a socket folder :func:`socket_folder` makes outside a data directory."""
    return folder.parent == _SHARED_ROOT and folder.name.startswith("nrhub-pg-")


def _check_private(folder: Path, owner: int, pgdata: Path) -> None:
    found = os.lstat(folder)  # lstat: a symbolic link planted under that name is not followed
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != owner or found.st_mode & 0o077:
        raise EmbeddedStartError(
            f"{folder}, the socket folder of {pgdata} (too long a path for a socket), is not a private folder "
            f"of user id {owner}: remove it, or choose a shorter data_dir"
        )
