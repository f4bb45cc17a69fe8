"""Every registry and API test of this folder runs twice: on SQLite and on a real PostgreSQL.

``database`` is the registry a test's server uses (a URL, as ``[server] database_url`` gives it):
a new SQLite file, or the session's PostgreSQL registry emptied for this test.
``module_database`` is the same for servers shared by a module's tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fota_lab.postgres import PostgresServer, PostgresUnavailable, find_bindir

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server per test session (per pytest-xdist worker), started on first use."""
    try:
        find_bindir()
    except PostgresUnavailable as e:
        pytest.skip(str(e))
    with PostgresServer.start() as pg:
        yield pg


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('registry') / 'server.db'}"
    pg: PostgresServer = request.getfixturevalue("postgres")
    return pg.fresh_registry()


@pytest.fixture(scope="module", params=BACKENDS)
def module_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('registry') / 'server.db'}"
    pg: PostgresServer = request.getfixturevalue("postgres")
    return pg.create_database()
