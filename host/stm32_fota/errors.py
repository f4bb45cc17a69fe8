"""The exception tree of the host tools.

Every error a user can cause (a bad version string, a missing toolchain, an ELF linked at the wrong
address, a corrupted image file) is a :class:`FotaError` whose message says what failed and why, in
the form "Failed to <operation>: <reason>" or "<file>: <what is wrong>". Callers at the top (tasks.py,
the server) print the message once; they never need a traceback to understand it.
"""

from __future__ import annotations


class FotaError(Exception):
    """Base class of every error the host tools report to a user."""


class ToolchainError(FotaError):
    """A required tool (arm-none-eabi-gcc, make, newlib) is missing or unusable."""


class BuildError(FotaError):
    """The firmware build (make) or a post-build step failed."""


class ImageError(FotaError):
    """A slot image file is malformed: information block, size, trailer or hash."""


class ElfCheckError(FotaError):
    """A linked ELF violates the flash layout; ``problems`` lists every finding."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        lines = [f"{path}: {p}" for p in self.problems]
        super().__init__("\n".join(lines))
