"""The lab's error: a part of it could not be started, reached or stopped."""

from __future__ import annotations

from fota_formats.errors import FotaError


class LabError(FotaError):
    """A part of the lab could not be started, reached or stopped."""
