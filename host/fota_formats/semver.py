"""Firmware versions: ``MAJOR.MINOR.PATCH`` in semantic (numeric) order.

    >>> from fota_formats.semver import Version
    >>> Version.parse("1.10.0") > Version.parse("1.9.0")
    True
    >>> str(Version.parse(" 2.0.1\\n"))
    '2.0.1'

The ranges are those of the image information block (``ii_ver_major`` u8, ``ii_ver_minor`` u8,
``ii_ver_patch`` u16), so every version written to S3 or announced to a bridge fits the image it
describes. Pre-release and build suffixes are not part of the format and are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import FotaError
from .spec import IMAGE

_VERSION_RE = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


def _field_max(name: str) -> int:
    field = next(f for f in IMAGE.structs["image_header"].fields if f.name == name)
    return (1 << (8 * field.size)) - 1


_LIMITS = (("major", _field_max("ver_major")), ("minor", _field_max("ver_minor")),
           ("patch", _field_max("ver_revision")))


class VersionError(FotaError, ValueError):
    """A version text that is not ``MAJOR.MINOR.PATCH`` within the image format's ranges."""


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str, source: str = "version") -> Version:
        """Parse ``text`` (surrounding whitespace allowed); ``source`` names where it came from."""
        stripped = text.strip()
        m = _VERSION_RE.fullmatch(stripped)
        if not m:
            raise VersionError(f"malformed version in {source}: {text[:40]!r} (expected MAJOR.MINOR.PATCH, "
                               "e.g. 1.2.0)")
        parts = tuple(int(g) for g in m.groups())
        for (name, limit), value in zip(_LIMITS, parts, strict=True):
            if value > limit:
                raise VersionError(f"malformed version in {source}: {stripped!r} ({name} {value} is above "
                                   f"{limit}, the image format's limit)")
        return cls(*parts)

    @classmethod
    def is_valid(cls, text: str) -> bool:
        try:
            cls.parse(text)
        except VersionError:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"
