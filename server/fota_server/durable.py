"""File-system steps that survive kill -9 and power loss: every write and rename is made durable
(fsync of the file, then of the directory that names it) before the next step relies on it.

    >>> write_file(Path("dir/name"), b"data")   # doctest: +SKIP
    >>> with folder_lock(Path("dir")): ...       # doctest: +SKIP

Every step goes through ``os`` functions (open, write, fsync, rename, replace, symlink, unlink,
rmdir), so a test can stop the process before any one of them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no folder lock (and no directory fsync, below)
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


def fsync_dir(path: Path) -> None:
    """Make the names in ``path`` (created, renamed, removed) durable."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist) with ``data``, flushed to disk; its name is made
    durable by the caller's ``fsync_dir`` of the folder."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(path: Path) -> None:
    """Create ``path`` if missing, durably (its parent is synced when it was created)."""
    try:
        os.mkdir(path)
    except FileExistsError:
        return
    fsync_dir(path.parent)


def rename(src: Path, dst: Path) -> None:
    """Atomic rename, durable in both folders."""
    os.rename(src, dst)
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)


def switch_link(link: Path, target: str, tmp: Path) -> None:
    """Point the symbolic link ``link`` at ``target`` in one ``rename(2)``, durably: a reader (and a
    restart after a crash) sees the old target or the new one, never no link."""
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def remove_tree(path: Path) -> None:
    """Remove a folder or a link; a crash half-way leaves a part of it, under the same name."""
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    else:
        shutil.rmtree(path)


@contextlib.contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``root`` (blocks until other processes let it go)."""
    if fcntl is None:
        yield
        return
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
