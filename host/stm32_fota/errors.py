"""The errors of the product tools, on the project's base :class:`~fota_formats.errors.FotaError`.

A missing toolchain, a failed build, an ELF linked at the wrong address: each message says what
failed and why, so that tasks.py prints it once, without a traceback.
"""

from __future__ import annotations

from fota_formats.errors import FotaError, ImageError

__all__ = ["BuildError", "ElfCheckError", "FotaError", "ImageError", "ToolchainError"]


class ToolchainError(FotaError):
    """A required tool (arm-none-eabi-gcc, make, newlib) is missing or unusable."""


class BuildError(FotaError):
    """The firmware build (make) or a post-build step failed."""


class ElfCheckError(FotaError):
    """A linked ELF violates the flash layout; ``problems`` lists every finding."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        lines = [f"{path}: {p}" for p in self.problems]
        super().__init__("\n".join(lines))
