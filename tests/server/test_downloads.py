"""Direct downloads (fota_server.downloads): with [server] direct_downloads a check-in answers a
short-lived presigned HTTPS URL of releases/<version>/<slot file> in S3 (moto over HTTPS here), the
bridge's own client fetches it with Range and resumes there after a cut; without it nothing
changes; a store the bridges could not reach over HTTPS is refused at start."""

from __future__ import annotations

import hashlib
import secrets
import ssl
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from fota_formats.config import ConfigError, FotaConfig, S3Config, ServerConfig
from fota_s3.store import S3Error, S3Store
from fota_server.downloads import PresignedUrls, download_urls, local_url
from fota_server.serve import build_app
from fota_testkit.keys import RELEASE_KEY, TRUSTED_HEX
from fota_testkit.relay import Relay
from fota_testkit.server import write_build
from fota_testkit.tls import Pki, https_moto, make_pki
from stm32_fota.release import SilentReporter, release

BRIDGE = Path(__file__).resolve().parents[2] / "esp32_mpy"
if str(BRIDGE) not in sys.path:
    sys.path.insert(0, str(BRIDGE))

import net  # noqa: E402 (the bridge module, importable once esp32_mpy is on sys.path above)
import updater  # noqa: E402 (the bridge module, importable once esp32_mpy is on sys.path above)

CHECKIN = {"device_id": "aabbccddeeff001122334455", "running_slot": "A", "running_version": "1.0.0",
           "slots": {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}}}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def s3_https(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[str]:
    """moto over HTTPS, its certificate from the test CA, which boto3 trusts through AWS_CA_BUNDLE."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_CA_BUNDLE", str(pki.ca))
        mp.setenv("AWS_ACCESS_KEY_ID", "test-key")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
        with https_moto(tmp_path_factory.mktemp("moto"), pki.cert, pki.key) as url:
            yield url


def direct_config(tmp_path: Path, endpoint: str, expiry: int = 120, direct: bool = True) -> FotaConfig:
    s3 = S3Config(bucket=f"fw-{secrets.token_hex(5)}", prefix="boards/x", endpoint_url=endpoint)
    return FotaConfig(root=tmp_path, s3=s3, state_dir=tmp_path / ".fota", firmware_dir=tmp_path / "fw",
                      db_path=tmp_path / "db",
                      server=ServerConfig(direct_downloads=direct, download_url_expiry_s=expiry,
                                          trusted_keys=(TRUSTED_HEX,)))


def released(cfg: FotaConfig, tmp_path: Path, version: str = "1.1.0") -> tuple[S3Store, bytes]:
    store = S3Store.connect(cfg.s3)
    store.client.create_bucket(Bucket=cfg.s3.bucket_name)
    build = write_build(tmp_path / "build", version, body=40_000)
    release(store, build, reporter=SilentReporter(), signing_key=RELEASE_KEY, revision="test")
    return store, (build / "slot-b.bin").read_bytes()


def test_without_direct_downloads_the_answer_is_the_servers_own_url(tmp_path: Path, s3_https: str) -> None:
    cfg = direct_config(tmp_path, s3_https, direct=False)
    released(cfg, tmp_path)
    assert download_urls(cfg, lambda: S3Store.connect(cfg.s3)) is local_url
    with TestClient(build_app(cfg)) as c:
        assert c.post("/api/v1/sync").json()["local_version"] in (None, "1.1.0")
        offer = c.post("/api/v1/checkin", json=CHECKIN).json()
    assert offer["url"] == "/api/v1/firmware/1.1.0/slot-b.bin", offer


def test_check_in_answers_a_presigned_https_url_that_serves_ranges(tmp_path: Path, s3_https: str,
                                                                   pki: Pki) -> None:
    cfg = direct_config(tmp_path, s3_https, expiry=90)
    _, image = released(cfg, tmp_path)
    with TestClient(build_app(cfg)) as c:
        c.post("/api/v1/sync")
        offer = c.post("/api/v1/checkin", json=CHECKIN).json()
    url = urllib.parse.urlsplit(offer["url"])
    query = urllib.parse.parse_qs(url.query)
    assert (url.scheme, url.netloc) == ("https", s3_https.removeprefix("https://"))
    assert url.path == f"/{cfg.s3.bucket_name}/boards/x/releases/1.1.0/slot-b.bin"
    assert query["X-Amz-Expires"] == ["90"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert offer["size"] == len(image) and offer["sha256"] == hashlib.sha256(image).hexdigest()
    with httpx.Client(verify=ssl.create_default_context(cafile=str(pki.ca))) as client:
        part = client.get(offer["url"], headers={"Range": "bytes=1000-"})
    assert part.status_code == 206 and part.content == image[1000:]


@pytest.mark.slow   # several seconds alone: out of the fast loop
def test_the_bridge_resumes_a_cut_download_with_range_from_the_presigned_url(
        tmp_path: Path, s3_https: str, pki: Pki) -> None:
    relay = Relay(int(s3_https.rsplit(":", 1)[1]), scheme="https").start()
    try:
        cfg = direct_config(tmp_path, relay.url)    # the URL names the relay: S3 as the bridge reaches it
        _, image = released(cfg, tmp_path)
        url = PresignedUrls(S3Store.connect(cfg.s3), 60)("1.1.0", "slot-b.bin")
        http = net.Http("https://127.0.0.1:9", token="device-token", timeout_s=5, ca_file=str(pki.ca))
        lines: list[str] = []
        src = updater.HttpSource(http, url, 3, lines.append, lambda ms: None)
        relay.cut_after = len(image) // 2
        got = bytearray(len(image))
        mv = memoryview(got)
        try:
            for offset in range(0, len(image), 4096):
                src.readinto(offset, mv[offset:offset + 4096])
        finally:
            src.close()
        cuts = relay.cuts
    finally:
        relay.stop()
    assert bytes(got) == image and cuts == 1
    resumed = [x for x in lines if x.startswith("fota: step download from ")]
    assert len(resumed) == 1 and 0 < int(resumed[0].rsplit(" ", 1)[1]) < len(image), lines
    assert not any("X-Amz-Signature" in x for x in lines)


def test_a_store_the_bridges_cannot_reach_over_https_is_refused(tmp_path: Path, moto_url: str,
                                                                aws_env: None) -> None:
    cfg = direct_config(tmp_path, moto_url)     # plain http://127.0.0.1:<port>
    with pytest.raises(ConfigError, match=r"direct_downloads: the S3 endpoint is not HTTPS "
                                          r"\(http://127\.0\.0\.1:"):
        download_urls(cfg, lambda: S3Store.connect(cfg.s3))


def test_a_signing_failure_at_check_in_falls_back_to_the_servers_url(
        caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def presigned_get(self, key: str, expiry_s: int) -> str:
            raise S3Error(f"Failed to sign a download URL for s3://b/{key}: no AWS credentials found")

    urls = PresignedUrls(Broken(), 60)  # type: ignore[arg-type]
    assert urls("1.2.0", "slot-a.bin") == "/api/v1/firmware/1.2.0/slot-a.bin"
    assert "no AWS credentials found; answering the server's own download URL instead" in caplog.text
    with pytest.raises(S3Error):
        urls.sign("1.2.0", "slot-a.bin")
