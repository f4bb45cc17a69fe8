"""The examples in the console modules' docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["fota_server.console.session", "fota_server.console.queries", "fota_server.console.chart"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
