"""Versions in semantic order, and the configuration file + environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from fota_formats.config import ConfigError, is_loopback, load_config
from fota_formats.semver import Version, VersionError


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("1.9.0", "1.10.0"),
        ("0.0.9", "0.0.10"),
        ("1.2.3", "2.0.0"),
        ("1.99.99", "2.0.0"),
        ("0.1.0", "0.1.1"),
    ],
)
def test_semantic_order(low: str, high: str):
    assert Version.parse(low) < Version.parse(high)
    assert sorted([high, low], key=Version.parse) == [low, high]


@pytest.mark.parametrize(
    "text",
    [
        "1.0",
        "1.0.0.0",
        "v1.0.0",
        "1.0.0-rc1",
        "01.0.0",
        "1..0",
        "",
        "1.0.x",
        "256.0.0",
        "1.256.0",
        "1.0.65536",
    ],
)
def test_malformed_versions_name_source_and_text(text: str):
    with pytest.raises(VersionError, match=r"malformed version in s3://b/version.txt: "):
        Version.parse(text, "s3://b/version.txt")
    assert not Version.is_valid(text)


def test_version_limits_come_from_the_image_format():
    assert str(Version.parse("255.255.65535")) == "255.255.65535"
    assert str(Version.parse(" 1.2.3\n")) == "1.2.3"


def test_config_file_then_environment(tmp_path: Path):
    (tmp_path / "fota.toml").write_text(
        '[s3]\nbucket = "fw-bucket"\nprefix = "/boards/disco/"\nregion = "eu-central-1"\n'
        '[server]\nport = 9000\nsync_interval_s = 30\n[paths]\nstate_dir = "state"\n'
    )
    cfg = load_config(env={}, cwd=tmp_path)
    assert (cfg.s3.bucket, cfg.s3.prefix, cfg.s3.region, cfg.s3.endpoint_url) == (
        "fw-bucket",
        "boards/disco",
        "eu-central-1",
        None,
    )
    assert cfg.server.port == 9000 and cfg.server.sync_interval_s == 30.0 and cfg.server.host == "127.0.0.1"
    assert cfg.state_dir == tmp_path / "state" and cfg.firmware_dir == tmp_path / "state" / "firmware"
    assert cfg.s3.key("releases", "1.0.0", "slot-a.bin") == "boards/disco/releases/1.0.0/slot-a.bin"
    env = {
        "FOTA_S3_BUCKET": "other",
        "FOTA_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "FOTA_SERVER_PORT": "8081",
        "FOTA_SERVER_TOKEN": "t0ken",
    }
    cfg = load_config(env=env, cwd=tmp_path)
    assert (
        cfg.s3.bucket == "other" and cfg.s3.endpoint_url == "http://127.0.0.1:9" and cfg.server.port == 8081
    )
    assert cfg.server.token == "t0ken" and "t0ken" not in repr(cfg)  # the token is never printed
    assert cfg.source.endswith("fota.toml + environment")


def test_no_bucket_means_embedded(tmp_path: Path):
    cfg = load_config(env={}, cwd=tmp_path)
    assert cfg.s3.embedded and cfg.s3.bucket_name == "stm32-fota" and "embedded" in cfg.s3.describe()
    assert cfg.state_dir == tmp_path / ".fota" and cfg.db_path == tmp_path / ".fota" / "server.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[s3]\nbuckett = 'x'\n", "unknown key 'buckett' in \\[s3\\]"),
        ("[aws]\nbucket = 'x'\n", "unknown section \\[aws\\]"),
        ("[server]\nport = 'eighty'\n", "port must be an integer"),
        ("[server]\nport = 70000\n", "port 70000 is out of range"),
        ("[s3\n", "Failed to read .*fota.toml"),
    ],
)
def test_bad_config_file(tmp_path: Path, text: str, message: str):
    (tmp_path / "fota.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(env={}, cwd=tmp_path)


def test_bad_environment_and_missing_explicit_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="FOTA_SERVER_PORT='x' is not an integer"):
        load_config(env={"FOTA_SERVER_PORT": "x"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match=r"FOTA_CONFIG names .*nope\.toml, which does not exist"):
        load_config(env={"FOTA_CONFIG": "nope.toml"}, cwd=tmp_path)


def test_example_config_is_valid(tmp_path: Path):
    example = Path(__file__).resolve().parents[2] / "fota.example.toml"
    cfg = load_config(example, env={}, cwd=tmp_path)
    assert cfg.server.host == "127.0.0.1" and cfg.server.token is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("my-host", False),
    ],
)
def test_loopback(host: str, loopback: bool):
    assert is_loopback(host) is loopback


def test_https_and_direct_download_settings(tmp_path: Path):
    (tmp_path / "fota.toml").write_text(
        '[server]\nhost = "0.0.0.0"\ntls_cert = "tls/server.pem"\ntls_key = "/etc/fota/server.key"\n'
        "direct_downloads = true\ndownload_url_expiry_s = 300\n")
    cfg = load_config(env={}, cwd=tmp_path)
    srv = cfg.server
    assert (srv.tls_cert, srv.tls_key) == (tmp_path / "tls" / "server.pem", Path("/etc/fota/server.key"))
    assert (srv.tls, srv.scheme, srv.direct_downloads, srv.download_url_expiry_s) == (
        True, "https", True, 300)
    env = {"FOTA_DIRECT_DOWNLOADS": "no", "FOTA_SERVER_TLS_CERT": "a.pem", "FOTA_SERVER_TLS_KEY": "a.key",
           "FOTA_DOWNLOAD_URL_EXPIRY": "60"}
    srv = load_config(env=env, cwd=tmp_path).server
    assert (srv.tls_cert, srv.direct_downloads, srv.download_url_expiry_s) == (tmp_path / "a.pem", False, 60)
    plain = load_config(env={}, cwd=tmp_path / "nowhere").server
    assert (plain.tls, plain.scheme, plain.direct_downloads, plain.download_url_expiry_s) == (
        False, "http", False, 600)


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ('[server]\ntls_cert = "c.pem"\n', {}, r"tls_cert is set but tls_key is not; HTTPS needs both"),
        ("", {"FOTA_SERVER_TLS_KEY": "k.pem"}, r"tls_key is set but tls_cert is not"),
        ('[server]\ndirect_downloads = "yes"\n', {}, r"\[server\] direct_downloads must be true or false"),
        ("[server]\ndirect_downloads = 1\n", {}, r"direct_downloads must be true or false, not 1"),
        ("[server]\ndownload_url_expiry_s = true\n", {}, r"download_url_expiry_s must be an integer"),
        ("[server]\ndownload_url_expiry_s = 0\n", {}, r"download_url_expiry_s 0 must be within 1\.\.604800"),
        ("", {"FOTA_DIRECT_DOWNLOADS": "maybe"}, r"FOTA_DIRECT_DOWNLOADS='maybe' is not true or false"),
    ],
)
def test_bad_https_settings_are_named(tmp_path: Path, text: str, env: dict[str, str], message: str):
    (tmp_path / "fota.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(env=env, cwd=tmp_path)
