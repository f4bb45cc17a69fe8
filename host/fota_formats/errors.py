"""The base of every error the project reports to a user.

Every error a user can cause (a bad version string, a corrupted image file, a malformed config or
manifest) is a :class:`FotaError` whose message says what failed and why, in the form
"Failed to <operation>: <reason>" or "<file>: <what is wrong>". Callers at the top (tasks.py, the
server) print the message once; they never need a traceback to understand it.
"""

from __future__ import annotations


class FotaError(Exception):
    """Base class of every error the project reports to a user."""


class ImageError(FotaError):
    """A slot image file is malformed: information block, size, trailer or hash.

    ``fault`` names the rule that refused it, with the bootloader's names (``image_fault_str`` in
    stm32/lib/image.c: "erased", "bad-magic", ..., "bad-hash"), or "truncated" / "trailing" for
    what only a file can get wrong; None where no image rule applies.
    """

    def __init__(self, message: str, fault: str | None = None) -> None:
        super().__init__(message)
        self.fault = fault
