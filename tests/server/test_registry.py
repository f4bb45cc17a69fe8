"""The registry on both backends: offers, reports, paging, shared sync state, concurrent writers,
the sync lock; its migrations: a registry made before migrations existed, schema = models, a schema
from a newer server, concurrent starts; the database URL never shown with its password."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fota_formats.config import ConfigError, FotaConfig, ServerConfig, load_config
from fota_lab.postgres import PostgresServer
from fota_server.db import DatabaseError, SyncBusy, current, head, open_database, upgrade
from fota_server.db.migrate import alembic_config
from fota_server.db.schema import metadata
from fota_server.registry import Registry, RegistryError

DATA = Path(__file__).parent / "data"
DEV = "0123456789abcdef01234567"
DEV2 = "fedcba9876543210fedcba98"
SHA = "ab" * 32
SLOTS = {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}}


def offer(reg: Registry, device: str = DEV, version: str = "1.1.0", sha: str = SHA) -> tuple[int, bool]:
    reg.record_checkin(device, "A", "1.0.0", SLOTS)
    return reg.open_update(device, version, "B", "slot-b.bin", 20_000, sha, False, "A", "1.0.0")


def progress(reg: Registry, uid: int, offset: int, device: str = DEV) -> dict[str, Any]:
    return reg.report(device, uid, "progress", offset, None, None, None, None, None)


def test_offers_reports_and_queries(database: str):
    reg = Registry(database)
    assert reg.count_devices() == 0 and reg.last_sync() is None
    uid, created = offer(reg)
    assert (uid, created) == (1, True)
    assert offer(reg) == (uid, False)  # the open offer is reused
    # progress only moves forwards: a late report does not lower it
    assert progress(reg, uid, 8192)["offset"] == 8192
    assert progress(reg, uid, 4096)["offset"] == 8192
    assert progress(reg, uid, 12288)["status"] == "in_progress"
    with pytest.raises(RegistryError, match="beyond the image size") as e:
        progress(reg, uid, 20_001)
    assert e.value.status == 422
    # a newer offer supersedes the open one
    uid2, created = offer(reg, version="1.2.0", sha="cd" * 32)
    assert created and uid2 == uid + 1
    old = reg.updates(DEV)[1]
    assert (old["id"], old["status"], old["reason"]) == (uid, "failed", "superseded by a newer offer")
    progress(reg, uid2, 16_384)
    done = reg.report(DEV, uid2, "result", 4096, "reverted", "no CONFIRM", 900, "A", "1.0.0")
    assert (done["status"], done["downgrade"], done["duration_ms"]) == ("reverted", False, 900)
    assert done["offset"] == 16_384  # nor does a result with a smaller offset
    assert reg.was_reverted(DEV, "1.2.0", "cd" * 32) and not reg.was_reverted(DEV, "1.1.0", SHA)
    with pytest.raises(RegistryError) as e:
        reg.report(DEV2, uid2, "progress", 0, None, None, None, None, None)
    assert e.value.status == 404
    # paging in device ID order, counts
    for i in range(5):
        reg.record_checkin(f"{i:024x}", "B", "1.0.0", SLOTS)
    assert reg.count_devices() == 6 and reg.count_updates() == 2 and reg.count_updates(DEV2) == 0
    ids = [d["device_id"] for d in reg.list_devices(0, 100)]
    assert ids == sorted(ids) and len(ids) == 6
    assert [d["device_id"] for d in reg.list_devices(2, 3)] == ids[2:5]
    assert reg.list_devices(6, 10) == []
    assert [u["id"] for u in reg.list_updates(None, 1, 1)] == [uid]
    assert [u["id"] for u in reg.list_updates(DEV, 0, 1)] == [uid2]
    dev = reg.device(DEV)
    assert dev is not None and dev["checkins"] == 3 and dev["slots"]["A"]["version"] == "1.0.0"
    # the last sync's outcome is shared through the database
    reg.record_sync({"status": "updated", "message": "m", "local_version": None, "remote_version": "1.1.0",
                     "at": "2026-01-01T00:00:00Z", "duration_ms": 12})
    reg.record_sync({"status": "up-to-date", "message": "n", "local_version": "1.1.0",
                     "remote_version": "1.1.0", "at": "2026-01-01T00:01:00Z", "duration_ms": 3})
    other = Registry(database)  # another process would see the same
    last = other.last_sync()
    assert last is not None
    assert (last["status"], last["message"], last["duration_ms"]) == ("up-to-date", "n", 3)
    assert ":" in last["instance"]  # host:pid of the process that synced
    reg.close()
    other.close()


def test_concurrent_check_ins_of_one_device_share_one_offer(database: str):
    """Several server processes (here: registries with their own connections, in threads) answer
    check-ins of the same device at once: one update row is created, all get its id."""
    regs = [Registry(database) for _ in range(6)]
    regs[0].record_checkin(DEV, "A", "1.0.0", SLOTS)
    barrier = threading.Barrier(len(regs))
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def worker(reg: Registry) -> None:
        try:
            barrier.wait(10)
            for _ in range(5):
                results.append(offer(reg))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(r,)) for r in regs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == 30 and len({uid for uid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert regs[0].count_updates(DEV) == 1
    for r in regs:
        r.close()


def test_sync_lock_admits_one_holder(database: str, tmp_path: Path):
    a, b = Registry(database), Registry(database)
    folder = tmp_path / "fw"

    def take_b() -> None:
        with b.sync_lock(folder, timeout_s=0.3):
            pass

    with a.sync_lock(folder, timeout_s=5), pytest.raises(SyncBusy, match="another server process"):
        take_b()
    take_b()  # free again
    a.close()
    b.close()


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("devices", "updates")}
    finally:
        db.close()


def test_registry_from_before_migrations_is_upgraded_keeping_every_row(tmp_path: Path):
    """tests/server/data/registry-before-migrations.db was written by the server as it was before
    migrations existed (SQLite only, tables made with CREATE TABLE IF NOT EXISTS)."""
    path = tmp_path / "server.db"
    shutil.copy(DATA / "registry-before-migrations.db", path)
    before = _rows(path)
    assert len(before["devices"]) == 3 and len(before["updates"]) == 4
    reg = Registry(path)
    after = _rows(path)  # later migrations add columns (None in the old rows) at the end
    assert {t: [r[:len(rows[0])] for r in after[t]] for t, rows in before.items()} == before
    assert {v for t in after for r in after[t] for v in r[len(before[t][0]):]} == {None}
    assert current(reg.db) == head()
    assert reg.count_devices() == 3 and reg.count_updates() == 4
    assert reg.was_reverted("000000000000000000000002", "1.1.0", SHA)
    assert [u["status"] for u in reg.updates("000000000000000000000003")] == ["offered", "failed"]
    # the old rows work with the new code: ids go on after the highest ever used
    uid, created = offer(reg, device="000000000000000000000001", version="1.2.0")
    assert created and uid == 5
    reg.close()
    assert Registry(path).count_updates() == 5  # opening again: nothing to migrate, nothing lost


def test_unversioned_tables_of_another_shape_are_refused(tmp_path: Path):
    path = tmp_path / "server.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE devices (device_id TEXT PRIMARY KEY, colour TEXT)")
    db.close()
    with pytest.raises(DatabaseError, match=r"table 'devices' is not the initial schema.*missing columns: "
                                            r"checkins.*unknown columns: colour"):
        Registry(path)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database without any table."""
    if request.param == "sqlite":
        return str(tmp_path / "empty.db")
    pg: PostgresServer = request.getfixturevalue("postgres")
    return pg.create_database()


def test_migrations_create_exactly_the_models(empty_database: str):
    db = open_database(empty_database)
    assert upgrade(db) == (None, head())
    with db.autocommit() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert upgrade(db) == (head(), head())  # again: nothing to do
    db.close()


def test_servers_starting_together_migrate_once(empty_database: str):
    results: list[tuple[str | None, str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            db = open_database(empty_database)
            barrier.wait(10)
            results.append(upgrade(db))
            db.close()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == 4 and results.count((None, head())) == 1  # one migrated, three found it done


def test_schema_of_a_newer_server_is_refused(empty_database: str):
    database = empty_database  # a database of its own: the shared test registry stays usable
    Registry(database).close()
    db = open_database(database)
    with db.write() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    with pytest.raises(DatabaseError, match="revision 0099_from_the_future, which this server does not know"):
        Registry(database)
    db.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://fota:pa55w0rd@127.0.0.1:1/fota", "Failed to open the registry database "
         "postgresql\\+psycopg://fota:\\*\\*\\*@127.0.0.1:1/fota: connection failed"),
        ("postgresql://fota@127.0.0.1:1/fota?password=pa55w0rd", r"password=\*\*\*"),
        ("mysql://fota:pa55w0rd@db/fota", "driver 'mysql' is not supported"),
        ("postgresql+psycopg2://fota:pa55w0rd@db/fota", "driver 'postgresql\\+psycopg2' is not supported"),
    ],
)
def test_bad_database_urls_are_named_without_the_password(url: str, message: str):
    with pytest.raises(DatabaseError, match=message) as e:
        Registry(url)
    assert "pa55w0rd" not in str(e.value)


def test_database_url_from_the_config_file_and_environment(tmp_path: Path):
    (tmp_path / "fota.toml").write_text('[server]\ndatabase_url = "postgresql://fota:pa55w0rd@db.lan/fota"\n')
    cfg = load_config(env={}, cwd=tmp_path)
    assert cfg.database == "postgresql://fota:pa55w0rd@db.lan/fota"
    assert cfg.describe_database() == "postgresql://fota:***@db.lan/fota"
    assert "pa55w0rd" not in repr(cfg)
    cfg = load_config(env={"FOTA_DATABASE_URL": "sqlite:///reg.db"}, cwd=tmp_path)
    assert cfg.database == "sqlite:///reg.db"
    default = load_config(env={}, cwd=tmp_path / "nowhere")
    assert default.database == default.db_path and default.describe_database().startswith("SQLite ")
    with pytest.raises(ConfigError, match=r"database_url 'redis://u:\*\*\*@h/0' must start with") as e:
        load_config(env={"FOTA_DATABASE_URL": "redis://u:pa55w0rd@h/0"}, cwd=tmp_path)
    assert "pa55w0rd" not in str(e.value)


def test_server_logs_the_database_without_its_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture):
    from fota_server import serve as serve_module

    ran: list[Callable[..., Any]] = []
    monkeypatch.setattr(serve_module.uvicorn, "run", lambda *a, **k: ran.append(a[0]))
    monkeypatch.setattr(serve_module, "build_app", lambda cfg, sync: "app")
    cfg = FotaConfig(root=tmp_path, server=ServerConfig(database_url="postgresql://fota:pa55w0rd@db.lan/fota"))
    with caplog.at_level("INFO", logger="fota_server"):
        serve_module.serve(cfg, sync=False)
    assert ran == ["app"]
    assert "registry postgresql://fota:***@db.lan/fota" in caplog.text and "pa55w0rd" not in caplog.text


def test_lost_database_connections_answer_503_then_reconnect(tmp_path: Path, postgres: PostgresServer):
    """PostgreSQL restarted or its connections cut while the server runs: one 503 (the client
    retries), no 500, and the next request works on a new connection."""
    from fastapi.testclient import TestClient
    from fota_server.app import ServerSettings, create_app

    url = postgres.create_database()
    name = url.split("/")[3].split("?")[0]

    def cut() -> None:
        with postgres.connect() as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))

    body = {"device_id": DEV, "running_slot": "A", "running_version": "1.0.0", "slots": SLOTS}
    with TestClient(create_app(ServerSettings(firmware_dir=tmp_path / "fw", db_path=url))) as client:
        assert client.get("/api/v1/status").json()["devices"] == 0
        assert client.post("/api/v1/checkin", json=body).status_code == 200
        for request in (lambda: client.get("/api/v1/status"),  # queries through SQLAlchemy
                        lambda: client.post("/api/v1/checkin", json=body)):  # the prepared statements
            cut()
            r = request()
            assert r.status_code == 503, r.text
            assert r.json()["detail"] == "the registry database is unavailable; try again later"
            assert request().status_code == 200
        assert client.get(f"/api/v1/devices/{DEV}").json()["checkins"] == 2


def test_fota_server_migrate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from fota_server.cli import main

    path = tmp_path / "server.db"
    shutil.copy(DATA / "registry-before-migrations.db", path)
    config = tmp_path / "fota.toml"
    config.write_text(f'[server]\ndatabase_url = "sqlite:///{path}"\n')
    assert main(["migrate", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"registry sqlite:///{path}: schema upgraded from 0001_initial to {head()}" in out
    assert main(["migrate", "--config", str(config)]) == 0
    assert f"schema already at {head()}" in capsys.readouterr().out
    assert main(["--workers", "0", "--config", str(config)]) == 2
    assert "--workers must be 1 or more, not 0" in capsys.readouterr().err


def test_registry_at_the_previous_head_is_upgraded_keeping_its_rows(empty_database: str):
    db = open_database(empty_database)
    with db.write() as conn:
        command.upgrade(alembic_config(conn), "0003_device_hits")
    assert current(db) == "0003_device_hits"
    db.close()
    db = open_database(empty_database)
    with db.write() as conn:
        conn.exec_driver_sql("INSERT INTO devices (device_id, first_seen, last_seen, checkins) "
                             f"VALUES ('{DEV}', 't', 't', 7)")
        conn.exec_driver_sql(
            "INSERT INTO updates (device_id, version, target_slot, file, size, sha256, downgrade, from_slot, "
            "from_version, status, \"offset\", created_at, updated_at) VALUES "
            f"('{DEV}', '1.1.0', 'B', 'slot-b.bin', 10, '{SHA}', false, 'A', '1.0.0', 'reverted', 0, "
            "'t', 't')")
    db.close()
    reg = Registry(empty_database)
    assert current(reg.db) == head() == "0005_device_health"
    assert reg.device(DEV)["checkins"] == 7 and reg.device(DEV)["reported_group"] is None
    assert reg.count_hit(DEV, 60, 2) == (1, 60)
    assert reg.was_reverted(DEV, "1.1.0", SHA)
    assert reg.updates(DEV)[0]["rollout_id"] is None
    assert reg.record_checkin(DEV, "A", "1.0.0", SLOTS, "lab") == 0  # the fleet's epoch starts at 0
    assert reg.device(DEV)["reported_group"] == "lab"
    reg.close()


def test_rate_limit_counts_per_device_and_window(database: str):
    reg = Registry(database)
    assert [reg.count_hit(DEV, 600, 2) for _ in range(4)] == [(1, 600), (2, 600), (3, 600), (3, 600)]
    assert reg.count_hit(DEV2, 600, 2) == (1, 600)  # each device its own row
    assert reg.count_hit(DEV, 540, 2) == (3, 600)  # a process whose clock lags counts into the newer window
    assert reg.count_hit(DEV, 660, 2) == (1, 660)  # a new window starts again
    reg.close()
