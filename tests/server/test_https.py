"""HTTPS of the update server (fota_server.tls): plain HTTP refused beyond loopback, the certificate
and key checked before start, and the bridge's own client (esp32_mpy/net.py under CPython) against
the real server over HTTPS: check-in and Range download with the right CA, refusal otherwise."""

from __future__ import annotations

import hashlib
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fota_formats.config import ConfigError, FotaConfig, ServerConfig
from fota_server.app import ServerSettings, create_app
from fota_server.cli import main as server_main
from fota_server.firmware import FirmwareFolder
from fota_server.tls import check_transport, tls_options
from fota_testkit.server import LiveServer, install_release
from fota_testkit.tls import Pki, make_pki

BRIDGE = Path(__file__).resolve().parents[2] / "esp32_mpy"
if str(BRIDGE) not in sys.path:
    sys.path.insert(0, str(BRIDGE))

import fotalink  # noqa: E402 (the bridge module, importable once esp32_mpy is on sys.path above)
import net  # noqa: E402 (the bridge module, importable once esp32_mpy is on sys.path above)

TOKEN = "tls-token"
CHECKIN = {"device_id": "aabbccddeeff001122334455", "running_slot": "A", "running_version": "1.0.0",
           "slots": {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}}}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def config(tmp_path: Path, host: str, cert: Path | None = None, key: Path | None = None) -> FotaConfig:
    return FotaConfig(root=tmp_path, server=ServerConfig(host=host, token=TOKEN, tls_cert=cert, tls_key=key),
                      state_dir=tmp_path / ".fota", firmware_dir=tmp_path / "fw", db_path=tmp_path / "db")


def test_plain_http_beyond_loopback_is_refused_unless_asked_for(tmp_path: Path, pki: Pki) -> None:
    lan = config(tmp_path, "0.0.0.0")
    with pytest.raises(ConfigError, match=r"listening on 0\.0\.0\.0 \(beyond loopback\) over plain HTTP "
                                          r"would send the device token in clear text; configure HTTPS "
                                          r"with \[server\] tls_cert and tls_key .*invoke certs.*"
                                          r"--insecure-http"):
        check_transport(lan)
    check_transport(lan, insecure_http=True)
    check_transport(config(tmp_path, "127.0.0.1"))                      # loopback: HTTP is fine
    check_transport(config(tmp_path, "0.0.0.0", pki.cert, pki.key))


def test_the_command_line_refuses_before_listening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("FOTA_CONFIG", "FOTA_SERVER_TLS_CERT", "FOTA_SERVER_TLS_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FOTA_SERVER_TOKEN", TOKEN)
    monkeypatch.setenv("FOTA_OPERATOR_TOKEN", TOKEN + "-operator")
    monkeypatch.setenv("FOTA_STATE_DIR", str(tmp_path / "state"))
    assert server_main(["--lan", "--no-sync"]) == 1
    assert "over plain HTTP would send the device token in clear text" in capsys.readouterr().err
    monkeypatch.setenv("FOTA_SERVER_TLS_CERT", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("FOTA_SERVER_TLS_KEY", str(tmp_path / "missing.key"))
    assert server_main(["--lan", "--no-sync"]) == 1
    err = capsys.readouterr().err
    assert f"[server] tls_cert {tmp_path / 'missing.pem'} does not exist (`invoke certs` makes it)" in err
    assert TOKEN not in err


def test_certificate_and_key_are_checked(tmp_path: Path, pki: Pki) -> None:
    assert tls_options(config(tmp_path, "0.0.0.0", pki.cert, pki.key)) == {
        "ssl_certfile": str(pki.cert), "ssl_keyfile": str(pki.key)}
    assert tls_options(config(tmp_path, "127.0.0.1")) == {}
    with pytest.raises(ConfigError, match="the key does not belong to the certificate"):
        tls_options(config(tmp_path, "0.0.0.0", pki.cert, pki.named_key))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"junk\.pem .*: not a PEM certificate and key"):
        tls_options(config(tmp_path, "0.0.0.0", junk, pki.key))
    with pytest.raises(ConfigError, match=r"tls_key .*nope\.key does not exist"):
        tls_options(config(tmp_path, "0.0.0.0", pki.cert, tmp_path / "nope.key"))


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("https")
    folder = FirmwareFolder(tmp / "fw")
    install_release(folder, tmp, "1.1.0", body=30_000)
    app = create_app(ServerSettings(firmware_dir=folder.root, db_path=tmp / "db", token=TOKEN))
    with LiveServer(app, tls=(pki.cert, pki.key)) as srv:
        yield srv


def read_all(body: object) -> bytes:
    buf = bytearray(4096)
    mv = memoryview(buf)
    out = bytearray()
    try:
        while n := body.readinto(mv):  # type: ignore[attr-defined]
            out += mv[:n]
    finally:
        body.close()  # type: ignore[attr-defined]
    return bytes(out)


def test_bridge_client_over_https_checks_in_and_resumes_a_download(https_server: LiveServer,
                                                                    pki: Pki) -> None:
    assert https_server.url.startswith("https://127.0.0.1:")
    http = net.Http(https_server.url, token=TOKEN, timeout_s=5, ca_file=str(pki.ca))
    offer = http.post_json("/api/v1/checkin", CHECKIN)
    assert offer["update"] is True and offer["url"] == "/api/v1/firmware/1.1.0/slot-b.bin"
    whole = read_all(http.get(offer["url"]))
    assert len(whole) == offer["size"] and hashlib.sha256(whole).hexdigest() == offer["sha256"]
    assert read_all(http.get(offer["url"], offset=12_345)) == whole[12_345:]


@pytest.mark.parametrize(("which", "reason"), [
    ("other", "unable to get local issuer certificate"),
    ("missing", "no CA certificate file"),
])
def test_bridge_client_refuses_a_server_it_cannot_verify(https_server: LiveServer, pki: Pki, tmp_path: Path,
                                                         which: str, reason: str) -> None:
    ca = str(pki.other_ca) if which == "other" else str(tmp_path / "none.pem")
    http = net.Http(https_server.url, token=TOKEN, timeout_s=5, ca_file=ca)
    with pytest.raises(fotalink.BridgeError) as e:
        http.post_json("/api/v1/checkin", CHECKIN)
    port = https_server.url.rsplit(":", 1)[1]
    assert e.value.reason.startswith(f"Failed to POST /api/v1/checkin on 127.0.0.1:{port}: ")
    assert reason in e.value.reason and TOKEN not in e.value.reason


def test_bridge_client_checks_the_host_name(tmp_path: Path, pki: Pki,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo
    # "localhost" may come first as ::1; the server listens on 127.0.0.1.
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: [
        ai for ai in real(host, *a, **k) if ai[0] == socket.AF_INET])
    folder = FirmwareFolder(tmp_path / "fw")
    app = create_app(ServerSettings(firmware_dir=folder.root, db_path=tmp_path / "db"))
    with LiveServer(app, tls=(pki.named_cert, pki.named_key)) as srv:     # a certificate for localhost only
        by_ip = net.Http(srv.url, timeout_s=5, ca_file=str(pki.ca))
        with pytest.raises(fotalink.BridgeError, match="the server's TLS certificate was refused: IP address "
                                                       "mismatch"):
            by_ip.post_json("/api/v1/checkin", CHECKIN)
        by_name = net.Http(srv.url.replace("127.0.0.1", "localhost"), timeout_s=5, ca_file=str(pki.ca))
        assert by_name.post_json("/api/v1/checkin", CHECKIN)["update"] is False
