"""Errors of the virtual ESP32."""

from __future__ import annotations

import errno


class Esp32TwinError(Exception):
    """The virtual ESP32 could not be started or run; the message says what failed."""


class DeviceOSError(Exception):
    """An operation of the virtual ESP32 failed: raised as OSError(errno) inside MicroPython.

    `name` is the errno name ("ENOENT"); the MicroPython side turns it into the number of its
    own errno module (MicroPython's numbers are Linux's for the names the host uses).
    """

    def __init__(self, name: str, message: str = "") -> None:
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name
        self.message = message

    @classmethod
    def from_oserror(cls, exc: OSError) -> DeviceOSError:
        if isinstance(exc, TimeoutError) and exc.errno is None:
            return cls("ETIMEDOUT", str(exc))
        name = errno.errorcode.get(exc.errno or 0, "EIO")
        return cls(name, exc.strerror or str(exc))
