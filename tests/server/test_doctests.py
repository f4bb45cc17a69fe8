"""The usage examples in the module docstrings of the release and server code run as written."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

MODULES = [
    "fota_formats.semver",
    "fota_formats.config",
    "stm32_fota.release",
    "fota_s3.store",
    "fota_lab.locals3",
    "fota_server.ranges",
    "fota_server.decision",
    "fota_server.registry",
    "fota_server.db.engine",
    "fota_server.db.migrate",
    "fota_server.db.prepared",
    "fota_server.firmware",
    "fota_server.downloads",
    "fota_server.release_check",
    "fota_server.auth",
    "fota_server.ratelimit",
    "fota_server.rollout",
    "fota_server.fleet",
    "stm32_fota.rollouts",
    "fota_server.console.session",
    "fota_server.console.queries",
    "fota_server.console.chart",
    "fota_server.console.health",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # examples that read a config file must not see the developer's
    for var in ("FOTA_CONFIG", "FOTA_S3_BUCKET", "FOTA_S3_PREFIX"):
        monkeypatch.delenv(var, raising=False)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
