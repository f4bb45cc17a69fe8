"""The lab's update server in its own process (fota_lab.processes) and the lab's JSON client of its
API (fota_lab.server_api): started on a free port with the lab's private state, answering, stopped;
each failure a LabError that names what failed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fota_formats.config import FotaConfig, ServerConfig
from fota_lab.errors import LabError
from fota_lab.locals3 import free_port
from fota_lab.processes import ServerProcess, server_env
from fota_lab.server_api import ServerApi


def _cfg(root: Path) -> FotaConfig:
    state = root / "state"
    return FotaConfig(root=root, state_dir=state, firmware_dir=state / "firmware",
                      db_path=state / "server.db",
                      server=ServerConfig(port=free_port(), sync_interval_s=3600.0))


def test_environment_carries_the_labs_settings_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOTA_S3_BUCKET", "a-users-bucket")
    cfg = _cfg(tmp_path)
    env = server_env(cfg)
    assert "FOTA_S3_BUCKET" not in env
    assert env["FOTA_SERVER_PORT"] == str(cfg.server.port) and env["FOTA_DB"] == str(cfg.db_path)


def test_server_starts_answers_and_stops(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    server = ServerProcess(cfg)
    api = ServerApi(f"http://127.0.0.1:{cfg.server.port}")
    try:
        server.start()
        assert server.running
        pid = server.proc.pid if server.proc else 0
        server.start()                                  # running: nothing new
        assert server.proc is not None and server.proc.pid == pid
        assert api.status()["version"] is None          # nothing synced into the private state
        assert api.updates("0" * 24) == []
        with pytest.raises(LabError, match=r"^Failed to GET /devices/0{24}: HTTP 404 "):
            api.device("0" * 24)                        # never checked in
        with pytest.raises(LabError, match=r"^Failed to GET /devices/nobody: HTTP 422 .*device_id"):
            api.device("nobody")
    finally:
        server.stop()
    assert not server.running and server.proc is None
    assert (cfg.state_dir / "server.log").is_file()
    with pytest.raises(LabError, match=r"^Failed to GET /status: .*refused"):
        api.status()


def test_a_server_that_exits_at_once_is_an_error_naming_its_log(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    server = ServerProcess(cfg, log_level="chatty")     # the server's command line refuses it
    with pytest.raises(LabError, match=r"^Failed to start the update server: it exited with code 2 "
                                       r"\(log: .*server\.log\)$"):
        server.start()
    assert "invalid choice: 'chatty'" in (cfg.state_dir / "server.log").read_text()
    assert not server.running


class _Answers(BaseHTTPRequestHandler):
    body = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture
def answers() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    t = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_an_answer_that_is_not_json_is_named(answers: ThreadingHTTPServer) -> None:
    api = ServerApi(f"http://127.0.0.1:{answers.server_address[1]}")
    _Answers.body = json.dumps({"status": "updated"}).encode()
    assert api.sync() == {"status": "updated"}
    _Answers.body = b"<html>proxy error</html>"
    with pytest.raises(LabError, match=r"^Failed to POST /sync: the answer is not JSON"):
        api.sync()
