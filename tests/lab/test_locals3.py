"""The embedded S3 endpoint: a background moto server that survives commands and restores its bucket."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fota_formats.config import FotaConfig, load_config
from fota_lab import locals3
from fota_s3.endpoint import STATE_FILE
from fota_server.serve import build_app
from fota_testkit.keys import RELEASE_KEY, TRUSTED_HEX
from fota_testkit.server import write_build
from stm32_fota.release import release


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[FotaConfig]:
    # no bucket configured: the embedded endpoint
    cfg = load_config(env={"FOTA_STATE_DIR": str(tmp_path / ".fota")}, cwd=tmp_path)
    assert cfg.s3.embedded
    yield cfg
    locals3.stop(cfg)


@pytest.mark.slow
def test_start_release_stop_start_restores_the_bucket(
    embedded: FotaConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    assert locals3.running(embedded) is None
    info = locals3.start(embedded)
    assert not info.already_running and info.restored == 0
    again = locals3.start(embedded)  # a second command finds it running
    assert again.already_running and (again.pid, again.port) == (info.pid, info.port)
    assert "AWS_ACCESS_KEY_ID" not in os.environ  # dummy credentials went to the client only

    store = locals3.open_store(embedded)
    release(store, write_build(tmp_path / "b", "1.0.0"), signing_key=RELEASE_KEY, revision="r")
    mirror = embedded.mirror_dir / "stm32-fota"
    assert (mirror / "version.txt").read_text() == "1.0.0\n"
    assert (mirror / "releases" / "1.0.0" / "slot-a.bin").is_file()

    stopped = locals3.stop(embedded)
    assert stopped is not None and stopped.pid == info.pid
    assert locals3.running(embedded) is None and locals3.stop(embedded) is None
    with pytest.raises(ProcessLookupError):
        os.kill(info.pid, 0)

    restarted = locals3.start(embedded)
    assert restarted.restored == 10 and restarted.port != 0
    store = locals3.open_store(embedded, start_embedded=False)
    assert store.get_text("version.txt") == "1.0.0\n"
    assert json.loads(store.get_bytes("manifest.json") or b"")["version"] == "1.0.0"
    assert store.get_bytes("slot-b.bin") == (tmp_path / "b" / "slot-b.bin").read_bytes()

    # `invoke serve` with no bucket configured syncs from this same endpoint
    with TestClient(build_app(embedded.with_server(trusted_keys=(TRUSTED_HEX,)))) as c:
        r = c.post("/api/v1/sync").json()
        assert r["status"] in ("updated", "up-to-date"), r  # the sync on start may have won the race
        status = c.get("/api/v1/status").json()
        assert status["version"] == "1.0.0" and "embedded" in status["source"]


def test_stale_state_file_is_ignored(embedded: FotaConfig):
    embedded.state_dir.mkdir(parents=True)
    (embedded.state_dir / STATE_FILE).write_text(json.dumps({"pid": 999_999_999, "port": 1}))
    assert locals3.running(embedded) is None
    assert not (embedded.state_dir / STATE_FILE).exists()
    with pytest.raises(locals3.LocalS3Error, match="not running"):
        locals3.open_store(embedded, start_embedded=False)
    assert "mirrored" in locals3.lost_on_stop(embedded)
