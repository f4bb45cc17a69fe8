"""The virtual ESP32's flash filesystem, kept in a directory of the host.

    fs = HostFs(Path("vesp32-fs"))
    h = fs.open("/config.json", "w"); fs.write(h, b"{}"); fs.close(h)
    fs.listdir("/")          # [("config.json", False, 2)]
    fs.stat("/missing")      # raises DeviceOSError("ENOENT")

Paths are absolute device paths ("/lib/x.py"); none may leave the directory. Errors are
DeviceOSError with the errno name, which the MicroPython side raises as OSError(number).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from esp32_twin.errors import DeviceOSError

MAX_OPEN_FILES = 16
FS_BYTES = 2 * 1024 * 1024  # an ESP32's 4 MB flash leaves about 2 MB for the filesystem
BLOCK = 4096

T = TypeVar("T")


class HostFs:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._files: dict[int, BinaryIO] = {}
        self._next = 1

    def _path(self, device_path: str) -> Path:
        if not device_path.startswith("/"):
            raise DeviceOSError("EINVAL", f"not an absolute path: {device_path!r}")
        parts = [p for p in device_path.split("/") if p and p != "."]
        if any(p == ".." for p in parts):
            raise DeviceOSError("EINVAL", f"'..' in {device_path!r}")
        return self.root.joinpath(*parts)

    @staticmethod
    def _wrap(fn: Callable[..., T], *args: object) -> T:
        try:
            return fn(*args)
        except DeviceOSError:
            raise
        except OSError as e:
            raise DeviceOSError.from_oserror(e) from None

    def stat(self, path: str) -> tuple[bool, int, int]:
        st = self._wrap(os.stat, self._path(path))
        is_dir = os.path.isdir(self._path(path))
        return is_dir, 0 if is_dir else st.st_size, int(st.st_mtime)

    def listdir(self, path: str) -> list[tuple[str, bool, int]]:
        target = self._path(path)
        entries = self._wrap(lambda: sorted(os.scandir(target), key=lambda e: e.name))
        return [(e.name, e.is_dir(), 0 if e.is_dir() else e.stat().st_size) for e in entries]

    def mkdir(self, path: str) -> None:
        self._wrap(os.mkdir, self._path(path))

    def rmdir(self, path: str) -> None:
        if path in ("", "/"):
            raise DeviceOSError("EPERM", "cannot remove the root directory")
        self._wrap(os.rmdir, self._path(path))

    def remove(self, path: str) -> None:
        self._wrap(os.remove, self._path(path))

    def rename(self, old: str, new: str) -> None:
        self._wrap(os.replace, self._path(old), self._path(new))

    def statvfs(self) -> list[int]:
        used = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                size = os.path.getsize(os.path.join(dirpath, name))
                used += (size + BLOCK - 1) // BLOCK
        blocks = FS_BYTES // BLOCK
        free = max(0, blocks - used)
        return [BLOCK, BLOCK, blocks, free, free, 0, 0, 0, 0, 255]

    def open(self, path: str, mode: str) -> int:
        if len(self._files) >= MAX_OPEN_FILES:
            raise DeviceOSError("EMFILE", "too many open files")
        base = mode.replace("b", "").replace("t", "")
        if base not in ("r", "w", "a", "x", "r+", "w+", "a+", "x+"):
            raise DeviceOSError("EINVAL", f"mode {mode!r}")
        target = self._path(path)
        if target.is_dir():
            raise DeviceOSError("EISDIR", path)
        f = self._wrap(open, target, base + "b", 0)
        handle = self._next
        self._next += 1
        self._files[handle] = f
        return handle

    def _file(self, handle: int) -> BinaryIO:
        try:
            return self._files[handle]
        except KeyError:
            raise DeviceOSError("EBADF", f"file handle {handle}") from None

    def read(self, handle: int, n: int) -> bytes:
        f = self._file(handle)
        return bytes(self._wrap(f.read, max(0, n)))

    def readline(self, handle: int, limit: int) -> bytes:
        f = self._file(handle)
        return bytes(self._wrap(f.readline, max(1, limit)))

    def write(self, handle: int, data: bytes) -> int:
        f = self._file(handle)
        return int(self._wrap(f.write, data))

    def seek(self, handle: int, offset: int, whence: int) -> int:
        if whence not in (0, 1, 2):
            raise DeviceOSError("EINVAL", f"whence {whence}")
        f = self._file(handle)
        return int(self._wrap(f.seek, offset, whence))

    def close(self, handle: int) -> None:
        f = self._files.pop(handle, None)
        if f is not None:
            f.close()

    def close_all(self) -> None:
        """A reset of the ESP32 loses its open files (their data is already written)."""
        for handle in list(self._files):
            self.close(handle)
