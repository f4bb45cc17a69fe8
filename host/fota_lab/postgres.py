"""A real PostgreSQL server (Debian's package) for the tests and the scale benchmark: started in a
temporary data directory, reachable only through a unix socket of its own, stopped and deleted at
the end.

    with PostgresServer.start() as pg:                 # initdb + pg_ctl start: about a second
        Registry(pg.fresh_registry())                   # migrated, no rows
        Registry(pg.create_database())                  # an empty database: the migrations run

PostgreSQL refuses to run as root; as root (CI, this machine) the server and initdb run as the
unprivileged user ``nobody`` (``runuser``), with the data directory given to that user. The
server runs without fsync (a test database needs no durability). A test gets an empty registry
from :meth:`PostgresServer.fresh_registry` (one migrated database, its rows deleted: a few
milliseconds) or a database of its own from :meth:`PostgresServer.create_database`.

A server whose test run was killed (its ``owner.pid`` names a process that is gone) is stopped and
deleted by the next start. The binaries are looked up in ``$FOTA_PG_BINDIR``, then on PATH, then in
/usr/lib/postgresql/<newest>/bin (Debian); ``scripts/setup.sh`` installs the ``postgresql`` package.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from fota_lab.locals3 import free_port

SUPERUSER = "fota"
REGISTRY = "fota_registry"
# every table of fota_server.db.schema
TABLES = ("updates", "devices", "sync_state", "device_hits", "fleet_epoch", "device_settings",
          "group_settings", "rollouts", "rollout_stages", "rollout_devices", "rollout_transitions",
          "retries")
START_TIMEOUT_S = 60
UNPRIVILEGED = "nobody"
PREFIX = "fota-pg-"
OWNER_FILE = "owner.pid"  # the test process that started the server
# a test database needs no durability
TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                 "max_connections": "200"}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries on this machine."""


def find_bindir() -> Path:
    explicit = os.environ.get("FOTA_PG_BINDIR")
    candidates = [Path(explicit)] if explicit else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for d in candidates:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    raise PostgresUnavailable("PostgreSQL's initdb and pg_ctl were not found (FOTA_PG_BINDIR, PATH, "
                              "/usr/lib/postgresql/*/bin): run scripts/setup.sh (Debian package postgresql)")


def stop_orphans(bindir: Path) -> None:
    """Stop and delete the servers of test runs that died without stopping theirs (killed pytest)."""
    base = Path("/tmp" if os.geteuid() == 0 else tempfile.gettempdir())
    for root in base.glob(f"{PREFIX}*"):
        try:
            owner = int((root / OWNER_FILE).read_text())
            os.kill(owner, 0)
            continue  # its test run is still going
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # not ours to judge
        _stop(bindir, root / "data")
        shutil.rmtree(root, ignore_errors=True)


def _stop(bindir: Path, data: Path) -> None:
    if (data / "postmaster.pid").exists():
        cmd = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_server_user(cmd), capture_output=True, check=False)


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", UNPRIVILEGED, "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PostgresServer:
    root: Path  # data directory, socket and log live here
    bindir: Path
    port: int
    _names: Iterator[int] = field(default_factory=itertools.count, repr=False)
    _registry_ready: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def postmaster_pid(self) -> int:
        """The server's main process (its backends are its children)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def url(self, database: str) -> str:
        """The URL of a database on this server (unix socket, no password)."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.root}&port={self.port}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host=str(self.root), port=self.port, user=SUPERUSER, dbname=database,
                               autocommit=True)

    @classmethod
    @contextmanager
    def start(cls, settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
        """``settings``: server settings (postgresql.conf names) instead of ``TEST_SETTINGS``."""
        bindir = find_bindir()
        stop_orphans(bindir)
        # as root, under /tmp itself: the server user must reach it (TMPDIR may be private)
        root = Path(tempfile.mkdtemp(prefix=PREFIX, dir="/tmp" if os.geteuid() == 0 else None))
        (root / OWNER_FILE).write_text(str(os.getpid()))
        server = cls(root, bindir, free_port())
        try:
            if os.geteuid() == 0:
                user = pwd.getpwnam(UNPRIVILEGED)
                os.chown(root, user.pw_uid, user.pw_gid)
            server._run("initdb", "-D", str(server.data), "-U", SUPERUSER, "--auth=trust", "--no-sync",
                        "-E", "UTF8", "--locale=C")
            options = f"-k {root} -p {server.port} -c listen_addresses='' " + " ".join(
                f"-c {k}={v}" for k, v in (TEST_SETTINGS if settings is None else settings).items())
            server._run("pg_ctl", "-D", str(server.data), "-o", options, "-l", str(server.log), "-w",
                        "-t", str(START_TIMEOUT_S), "start")
            yield server
        finally:
            _stop(bindir, server.data)
            shutil.rmtree(root, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        proc = subprocess.run(_as_server_user([str(self.bindir / tool), *args]), capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}"
                               f"{chr(10) + log if log else ''}")

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """A new database (a copy of ``template`` when given); its URL."""
        name = name or f"t{os.getpid()}_{next(self._names)}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def fresh_registry(self) -> str:
        """The URL of a migrated registry without rows (ids start at 1 again); connections that
        earlier tests left open to it are closed first."""
        if not self._registry_ready:
            from fota_server.registry import Registry

            Registry(self.create_database(REGISTRY)).close()  # runs the migrations
            self._registry_ready = True
        with self.connect(REGISTRY) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                         " WHERE datname = current_database() AND pid <> pg_backend_pid()")
            conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        return self.url(REGISTRY)
