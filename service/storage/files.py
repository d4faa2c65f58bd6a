"""Files that hold tickets or secrets: owner-only, whatever the umask.

The event log carries N-central's alert details and the credentials file carries passwords,
so both are 0600 and every folder psa-ledger creates for them is 0700. A umask can only
take bits away, so each mode is also set explicitly once the file or folder exists: a umask
of 0277 would otherwise leave the owner unable to write its own log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path

__all__ = [
    "FILE_MODE",
    "FOLDER_MODE",
    "open_to_others",
    "prepare_database",
    "private_folder",
    "write_private",
]

FILE_MODE = 0o600
FOLDER_MODE = 0o700

log = logging.getLogger("psa_ledger.files")


def prepare_database(path: Path) -> None:
    """Create the DB file 0600 (and its folders 0700) before SQLite opens it.

    SQLite gives its `-wal` and `-shm` files the mode of the DB file, so a private DB keeps
    them private too. A DB that already exists keeps the mode its owner chose; if others
    may read it, that is said loudly at each start.
    """
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        if open_to_others(path):
            log.warning(
                "the event log %s is readable by others (mode %s): run `chmod 600 %s`",
                path,
                _mode(path),
                path,
            )
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def private_folder(folder: Path) -> None:
    """Create `folder` and its missing parents 0700; folders that exist are left alone."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        try:
            os.mkdir(candidate, FOLDER_MODE)
        except FileExistsError:
            continue  # made by another process meanwhile: not ours to change
        os.chmod(candidate, FOLDER_MODE)


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, atomically, the file 0600 before a byte is written.

    The temporary file is made with O_EXCL under a random name, so a file or symlink left
    in its place (by a crash, or by someone else) is never written through.
    """
    private_folder(path.parent)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_folder(path.parent)


def open_to_others(path: Path) -> bool:
    """Whether anyone but the owner (group or others) may read, write or run `path`."""
    return bool(path.stat().st_mode & 0o077)


def _mode(path: Path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def _sync_folder(folder: Path) -> None:
    """The rename is durable only once the folder's entry is on disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
