"""The session's PostgreSQL server, as a fixture the registry and console tests share.

    from fota_testkit.pg import postgres  # noqa: F401 (a fixture)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fota_lab.postgres import PostgresServer, PostgresUnavailable, find_bindir


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server per test session (per pytest-xdist worker), started on first use."""
    try:
        find_bindir()
    except PostgresUnavailable as e:
        pytest.skip(str(e))
    with PostgresServer.start() as pg:
        yield pg
