"""End-to-end over HTTPS: the lab's server serves TLS with a throwaway CA that deploy-esp32 put on the
virtual ESP32. A bridge that trusts another CA refuses the server and says why; with direct
downloads the image comes from S3 (moto over HTTPS, its own CA deployed with --ca) through a
presigned URL, and a connection cut mid-way resumes there with Range."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from fota_formats.config import S3Config
from fota_formats.spec import LAYOUT
from fota_lab.lab import Lab
from fota_s3.store import S3Store
from fota_testkit.e2e import assert_device
from fota_testkit.relay import Relay
from fota_testkit.tls import https_moto, make_pki
from stm32_fota.project import current
from stm32_fota.release import SilentReporter, release
from stm32_fota.signing import load_signing_key


def test_the_lab_serves_https_and_the_bridge_holds_its_ca(lab: Lab) -> None:
    assert lab.tls and lab.server_url.startswith("https://127.0.0.1:")
    assert (lab.esp_fs / "ca.pem").read_bytes() == lab.ca_cert.read_bytes()   # type: ignore[union-attr]
    assert '"server": "https://127.0.0.1:' in (lab.esp_fs / "config.json").read_text()


def test_a_bridge_with_another_ca_refuses_the_server_and_says_why(lab: Lab, releases: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    lab.release(releases["1.1.0"])
    assert lab.sync()["status"] == "updated"
    other = make_pki(tmp_path / "pki").other_ca
    lab.deploy_bridge(ca=[other])
    outcome = lab.update()
    port = lab.cfg.server.port
    assert (outcome.outcome, outcome.version, outcome.slot) == ("failed", "1.0.0", "A"), outcome.lines
    assert outcome.reason == (f"Failed to POST /api/v1/checkin on 127.0.0.1:{port}: the server's TLS "
                              "certificate was refused: The certificate is not correctly signed by the "
                              "trusted CA (CA file ca.pem)")
    assert outcome.lines[-1].startswith("fota: result failed 1.0.0 slot A in ")
    # Nothing reached the server: no check-in, no update; the STM32 was not touched.
    assert lab.api.status()["devices"] == 0
    assert_device(lab, "A", "1.0.0", None, last_result="NONE")


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    creds = {"AWS_ACCESS_KEY_ID": "lab-key", "AWS_SECRET_ACCESS_KEY": "lab-secret",
             "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in creds.items():
        monkeypatch.setenv(k, v)
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return creds


def test_direct_download_from_s3_over_https_resumes_with_range(
        lab: Lab, releases: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        aws_credentials: dict[str, str]) -> None:
    pki = make_pki(tmp_path / "pki")                 # S3's CA: not the one of the update server
    monkeypatch.setenv("AWS_CA_BUNDLE", str(pki.ca))
    folder = releases["1.1.0-max"]
    image = (folder / "slot-b.bin").read_bytes()
    with https_moto(tmp_path / "moto", pki.cert, pki.key) as moto_url:
        relay = Relay(int(moto_url.rsplit(":", 1)[1]), scheme="https").start()   # S3, as the bridge sees it
        try:
            s3 = S3Config(bucket=f"fw-{secrets.token_hex(4)}", prefix="lab", endpoint_url=relay.url)
            store = S3Store.connect(s3)
            store.client.create_bucket(Bucket=s3.bucket)
            release(store, folder, root=current().root, reporter=SilentReporter(),
                    signing_key=load_signing_key(lab.release_key.private))
            lab.stop_server()
            lab.server_env.update(aws_credentials, AWS_CA_BUNDLE=str(pki.ca), FOTA_S3_BUCKET=s3.bucket_name,
                                  FOTA_S3_PREFIX=s3.prefix, FOTA_S3_ENDPOINT_URL=relay.url,
                                  FOTA_DIRECT_DOWNLOADS="true", FOTA_DOWNLOAD_URL_EXPIRY="300")
            lab.start_server()
            assert lab.ca_cert is not None
            lab.deploy_bridge(ca=[lab.ca_cert, pki.ca])   # deploy-esp32 --ca <server's CA> --ca <S3's>
            assert lab.sync()["status"] in ("updated", "up-to-date")    # it synced when it started, too
            assert lab.api.status()["version"] == "1.1.0"
            before = relay.bytes_down
            relay.cut_after = len(image) // 3            # the S3 connection dies a third of the way
            outcome = lab.update()
            from_s3 = relay.bytes_down - before
        finally:
            relay.stop()
    assert (outcome.outcome, outcome.version, outcome.slot) == ("confirmed", "1.1.0", "B"), outcome.lines
    assert relay.cuts >= 1 and from_s3 >= len(image)     # every image byte came from S3
    resumed = [x for x in outcome.lines if x.startswith("fota: step download from ")]
    assert resumed, outcome.lines
    assert 0 < int(resumed[0].rsplit(" ", 1)[1]) < len(image)
    assert not any("X-Amz-Signature" in x for x in outcome.lines)   # the presigned URL stays out of logs
    assert_device(lab, "B", "1.1.0", "confirmed")
    with lab.locked() as b:
        assert b.flash_bytes(LAYOUT.region("slot_b").base, len(image)) == image
