"""Alembic migrations of the registry schema (run by ``fota_server.db.migrate``)."""
