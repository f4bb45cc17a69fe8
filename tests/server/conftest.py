"""Every registry and API test of this folder runs twice: on SQLite and on a real PostgreSQL.

``database`` is the registry a test's server uses (a URL, as ``[server] database_url`` gives it):
a new SQLite file, or the session's PostgreSQL registry emptied for this test.
``module_database`` is the same for servers shared by a module's tests.
"""

from __future__ import annotations

import pytest
from fota_lab.postgres import PostgresServer
from fota_testkit.pg import postgres  # noqa: F401 (a fixture)

BACKENDS = ("sqlite", "postgresql")



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
