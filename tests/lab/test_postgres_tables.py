"""The test PostgreSQL empties every table of the registry's schema between tests: a table it
missed would carry one test's rows (a rate-limit count, say) into the next."""

from fota_lab.postgres import TABLES
from fota_server.db.schema import metadata


def test_fresh_registry_truncates_every_table_of_the_schema() -> None:
    assert set(TABLES) == set(metadata.tables)
