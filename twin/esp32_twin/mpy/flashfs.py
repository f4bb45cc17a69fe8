"""The virtual ESP32's flash filesystem: a VFS object mounted at "/" with os.mount.

    import os, flashfs
    os.mount(flashfs.FlashFs(), "/")
    open("config.json", "w").write("{}")
    os.listdir("/")              # ['config.json']
    open("missing")              # OSError: [Errno 2] ENOENT

The files live in a directory of the host (VirtualEsp32(fs_dir=...)), so they survive resets like
the ESP32's littlefs partition. Errors carry MicroPython's errno values (the WebAssembly port's own
filesystem reports Emscripten's numbers, which mpremote does not understand).
"""

import io
import json

from vesp32_host import call

_S_IFDIR = 0x4000
_S_IFREG = 0x8000


class FlashFile(io.IOBase):
    def __init__(self, handle, text):
        self._h = handle
        self._text = text
        self._line = bytearray(128)

    def _check(self):
        if self._h is None:
            raise ValueError("I/O operation on closed file")

    def readinto(self, buf):
        self._check()
        return call("fs_read", self._h, len(buf), rx=buf)

    def read(self, n=-1):
        self._check()
        if n is None or n < 0:
            chunks = []
            buf = bytearray(512)
            while True:
                k = self.readinto(buf)
                if not k:
                    break
                chunks.append(bytes(buf[:k]))
            data = b"".join(chunks)
        elif self._text:
            return self._read_chars(n)
        else:
            buf = bytearray(n)
            data = bytes(buf[:self.readinto(buf)])
        return data.decode() if self._text else data

    def _read_chars(self, n):
        """Text mode: `n` characters, as the port reads them (py/stream.c, stream_read_generic with
        MICROPY_PY_BUILTINS_STR_UNICODE: bytes in a loop, never past the n-th character, so a
        multi-byte UTF-8 character is never split between two reads)."""
        out = bytearray()
        chars = 0
        while chars < n:
            buf = bytearray(n - chars)
            k = self.readinto(buf)
            if not k:
                break
            chunk = buf[:k]
            # A character cut at the end of the chunk: read its remaining continuation bytes.
            i = k - 1
            while i > 0 and chunk[i] & 0xC0 == 0x80:
                i -= 1
            lead = chunk[i]
            size = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
            more = size - (k - i)
            if more > 0:
                rest = bytearray(more)
                chunk += rest[:self.readinto(rest)]
            out += chunk
            chars += sum(1 for b in chunk if b & 0xC0 != 0x80)
        return out.decode()

    def readline(self):
        self._check()
        out = bytearray()
        while True:
            k = call("fs_readline", self._h, len(self._line), rx=self._line)
            out += self._line[:k]
            if k < len(self._line) or self._line[k - 1] == 10:
                break
        return out.decode() if self._text else bytes(out)

    def readlines(self):
        lines = []
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def write(self, buf):
        self._check()
        if isinstance(buf, str):
            buf = buf.encode()
        return call("fs_write", self._h, tx=buf)

    def seek(self, offset, whence=0):
        self._check()
        return call("fs_seek", self._h, offset, whence)

    def tell(self):
        return self.seek(0, 1)

    def flush(self):
        pass

    def close(self):
        if self._h is not None:
            call("fs_close", self._h)
            self._h = None

    def ioctl(self, request, arg):
        if request == 4:  # MP_STREAM_CLOSE
            self.close()
            return 0
        if request == 1:  # MP_STREAM_FLUSH
            return 0
        if request == 11:  # MP_STREAM_GET_BUFFER_SIZE: the import reader's chunk
            return 249
        return -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FlashFs:
    def __init__(self):
        self._cwd = "/"

    def _abs(self, path):
        if not path.startswith("/"):
            path = self._cwd.rstrip("/") + "/" + path
        parts = []
        for p in path.split("/"):
            if p == "..":
                if parts:
                    parts.pop()
            elif p and p != ".":
                parts.append(p)
        return "/" + "/".join(parts)

    def mount(self, readonly, mkfs):
        pass

    def umount(self):
        pass

    def ilistdir(self, path):
        for name, is_dir, size in json.loads(call("fs_listdir", self._abs(path))):
            yield (name, _S_IFDIR if is_dir else _S_IFREG, 0, size)

    def chdir(self, path):
        path = self._abs(path)
        if not self.stat(path)[0] & _S_IFDIR:
            raise OSError(20)  # ENOTDIR
        self._cwd = path

    def getcwd(self):
        return self._cwd

    def mkdir(self, path):
        call("fs_mkdir", self._abs(path))

    def rmdir(self, path):
        call("fs_rmdir", self._abs(path))

    def remove(self, path):
        call("fs_remove", self._abs(path))

    def rename(self, old, new):
        call("fs_rename", self._abs(old), self._abs(new))

    def stat(self, path):
        is_dir, size, mtime = json.loads(call("fs_stat", self._abs(path)))
        mode = _S_IFDIR if is_dir else _S_IFREG
        return (mode, 0, 0, 0, 0, 0, size, mtime, mtime, mtime)

    def statvfs(self, path):
        return tuple(json.loads(call("fs_statvfs")))

    def open(self, path, mode):
        handle = call("fs_open", self._abs(path), mode.replace("t", ""))
        return FlashFile(handle, "b" not in mode)
