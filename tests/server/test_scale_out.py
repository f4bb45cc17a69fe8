"""Several server processes on one registry and one firmware folder (as `fota-server --workers N`
or several instances on a host run them): they sync one at a time, exactly one installs a new
release, and every process serves it and reports the same last sync."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fota_formats.config import FotaConfig
from fota_lab.locals3 import free_port
from fota_s3.store import S3Store
from fota_server.registry import Registry
from fota_testkit.keys import RELEASE_KEY, TRUSTED_HEX
from fota_testkit.server import write_build
from stm32_fota.release import release

DEV = "00112233445566778899aabb"
CHECKIN = {
    "device_id": DEV,
    "running_slot": "A",
    "running_version": "1.0.0",
    "slots": {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}},
}
START_TIMEOUT_S = 60.0


def write_config(cfg: FotaConfig, tmp: Path, database: str) -> Path:
    path = tmp / "fota.toml"
    path.write_text(
        f'[s3]\nbucket = "{cfg.s3.bucket}"\nprefix = "{cfg.s3.prefix}"\nregion = "{cfg.s3.region}"\n'
        f'endpoint_url = "{cfg.s3.endpoint_url}"\n'
        f'[server]\nsync_interval_s = 3600\ndatabase_url = "{database}"\ntrusted_keys = ["{TRUSTED_HEX}"]\n'
        f'[paths]\nstate_dir = "{tmp / "state"}"\nfirmware_dir = "{tmp / "fw"}"\n'
    )
    return path


@contextmanager
def server_process(config: Path, log: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m fota_server`` on a free port (see ``wait_ready``); its base URL and process."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fota_server", "--config", str(config), "--port", str(port), *args],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert proc.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"the server did not start:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/api/v1/status", timeout=2).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def status(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/api/v1/status", timeout=10).json()


def installed(fw: Path, version: str) -> list[str]:
    return sorted(p.name for p in (fw / "releases").glob(f"{version}-*"))


@pytest.mark.slow   # several seconds alone: out of the fast loop
def test_two_processes_sync_one_at_a_time_and_serve_the_same_release(
    cfg: FotaConfig, store: S3Store, tmp_path: Path, database: str
):
    fw = tmp_path / "fw"
    config = write_config(cfg, tmp_path, database)
    release(store, write_build(tmp_path / "b1", "1.1.0"), signing_key=RELEASE_KEY, revision="r")
    holder = Registry(database)  # stands for a third process holding the sync lock
    with ExitStack() as servers, ExitStack() as lock:
        # 1. both processes start (and sync on start) while the lock is held: neither installs
        lock.enter_context(holder.sync_lock(fw, timeout_s=5))
        logs_of = [tmp_path / f"server{i}.log" for i in (1, 2)]
        started = [servers.enter_context(server_process(config, log)) for log in logs_of]
        urls = [wait_ready(url, proc, log) for (url, proc), log in zip(started, logs_of, strict=True)]
        time.sleep(0.5)
        assert [status(u)["version"] for u in urls] == [None, None]
        assert not (fw / "releases").exists()
        lock.close()  # released: the two start-up syncs go, one after the other
        def logs() -> str:
            return "".join((tmp_path / f"server{i}.log").read_text() for i in (1, 2))

        assert wait_for(lambda: "sync: local release 1.1.0 is the bucket's" in logs()), logs()
        # one process installed, the other waited and found it done; both serve it
        assert logs().count("sync: updated the local release from none to 1.1.0") == 1, logs()
        assert len(installed(fw, "1.1.0")) == 1
        assert [status(u)["version"] for u in urls] == ["1.1.0", "1.1.0"]

        # 2. a sync requested from both at once, while the lock is held: both wait, then one installs
        release(store, write_build(tmp_path / "b2", "1.2.0"), signing_key=RELEASE_KEY, revision="r")
        replies: dict[str, dict[str, Any]] = {}
        with holder.sync_lock(fw, timeout_s=5):
            threads = [threading.Thread(target=lambda u=u: replies.update(
                {u: httpx.post(f"{u}/api/v1/sync", timeout=60).json()})) for u in urls]
            for t in threads:
                t.start()
            time.sleep(0.5)
            assert all(t.is_alive() for t in threads)  # both are waiting for the lock
            assert installed(fw, "1.2.0") == []
        for t in threads:
            t.join(60)
        assert sorted(r["status"] for r in replies.values()) == ["up-to-date", "updated"], replies
        assert len(installed(fw, "1.2.0")) == 1
        for u in urls:  # both serve the new release, the process that did not install it too
            offer = httpx.post(f"{u}/api/v1/checkin", json=CHECKIN, timeout=10).json()
            assert offer["version"] == "1.2.0", (u, offer)
            assert httpx.get(u + offer["url"], headers={"Range": "bytes=0-15"}, timeout=10).status_code == 206
        shared = [status(u) for u in urls]
        assert shared[0]["last_sync"] == shared[1]["last_sync"]  # one answer, whichever process is asked
        assert shared[0]["devices"] == shared[1]["devices"] == 1
    holder.close()



@pytest.mark.slow   # several seconds alone: out of the fast loop
def test_fota_server_workers_share_one_registry(cfg: FotaConfig, tmp_path: Path, database: str):
    """`fota-server --workers 2`: two worker processes behind one port, one registry."""
    config = write_config(cfg, tmp_path, database)
    log = tmp_path / "workers.log"
    with server_process(config, log, "--workers", "2", "--no-sync") as (url, proc):
        wait_ready(url, proc, log)
        assert wait_for(lambda: log.read_text().count("Started server process") == 2), log.read_text()
        with httpx.Client(base_url=url, timeout=10, headers={"Connection": "close"}) as client:
            for i in range(30):  # a new connection each time: the workers share them out
                body = {**CHECKIN, "device_id": f"{i:024x}"}
                assert client.post("/api/v1/checkin", json=body).json()["update"] is False
            counts = {client.get("/api/v1/status").json()["devices"] for _ in range(6)}
        assert counts == {30}  # every worker sees every device
