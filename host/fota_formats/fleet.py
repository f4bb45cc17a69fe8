"""Names of the fleet shared by the server, the host tools and the bridge's settings."""

from __future__ import annotations

import re

# A device group: set by an operator on the server, or reported by the bridge (config.json "group",
# `invoke deploy-esp32 --group`).
GROUP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def is_group(name: str) -> bool:
    return re.fullmatch(GROUP_PATTERN, name) is not None
