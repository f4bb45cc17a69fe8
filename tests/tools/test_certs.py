"""`invoke certs` logic (stm32_fota.certs): a CA and a server certificate a TLS client accepts for the
names given, keys private and kept out of the build and of git, nothing overwritten without
--force, and a CA that outlives server certificates."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from stm32_fota.certs import VALID_FROM, CertError, check_names, default_names, make_certs, read_cert_info


def handshake(ca: Path, cert: Path, key: Path, name: str) -> str:
    """A TLS handshake between a server with cert/key and a client trusting ca alone, for name:
    "ok" or the client's verification error."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cafile=str(ca))
    a, b = socket.socketpair()

    def serve() -> None:
        try:
            server_ctx.wrap_socket(a, server_side=True).close()
        except (OSError, ssl.SSLError):
            a.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        client_ctx.wrap_socket(b, server_hostname=name).close()
        return "ok"
    except ssl.SSLCertVerificationError as e:
        return str(e.verify_message)
    finally:
        b.close()
        t.join(5)


def test_ca_and_server_certificate_for_the_names(tmp_path: Path) -> None:
    r = make_certs(tmp_path / "state", ["192.168.1.10", "fota.lan", "127.0.0.1"])
    f = r.files
    assert f.folder == tmp_path / "state" / "tls"
    assert r.ca_created and r.server.names == ("192.168.1.10", "127.0.0.1", "fota.lan")
    for name in ("192.168.1.10", "fota.lan", "127.0.0.1"):
        assert handshake(f.ca_cert, f.server_cert, f.server_key, name) == "ok", name
    assert "mismatch" in handshake(f.ca_cert, f.server_cert, f.server_key, "other.lan")
    cert = x509.load_pem_x509_certificate(f.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(f.ca_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    # The address is an iPAddress entry and, for mbedTLS releases that compare DNS entries only, a DNS one.
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "192.168.1.10" in san.get_values_for_type(x509.DNSName)
    assert cert.not_valid_before_utc == VALID_FROM == ca.not_valid_before_utc   # an unset ESP32 clock
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert r.ca.fingerprint == ":".join(f"{b:02X}" for b in ca.fingerprint(hashes.SHA256()))
    assert [i.fingerprint for i in read_cert_info(f.ca_cert)] == [r.ca.fingerprint]


def test_keys_are_private_and_never_printed(tmp_path: Path) -> None:
    r = make_certs(tmp_path / "state", ["10.0.0.2"])
    f = r.files
    assert f.folder.stat().st_mode & 0o777 == 0o700
    assert f.ca_key.stat().st_mode & 0o777 == 0o600 and f.server_key.stat().st_mode & 0o777 == 0o600
    assert f.server_cert.stat().st_mode & 0o777 == 0o644
    text = r.describe()
    assert str(f.ca_key) in text and r.ca.fingerprint in text and r.server.fingerprint in text
    for key in (f.ca_key, f.server_key):
        body = key.read_text().splitlines()[1]
        assert "PRIVATE KEY" not in text and body not in text


def test_nothing_is_overwritten_without_force_and_the_ca_outlives_server_certificates(tmp_path: Path) -> None:
    first = make_certs(tmp_path, ["10.0.0.2"])
    before = first.files.server_cert.read_bytes()
    with pytest.raises(CertError, match=r"server\.pem, .*server\.key already exist; pass --force"):
        make_certs(tmp_path, ["10.0.0.3"])
    assert first.files.server_cert.read_bytes() == before
    again = make_certs(tmp_path, ["10.0.0.3"], force=True)
    assert not again.ca_created and again.ca.fingerprint == first.ca.fingerprint     # devices keep their CA
    assert again.server.names == ("10.0.0.3",)
    assert handshake(again.files.ca_cert, again.files.server_cert, again.files.server_key, "10.0.0.3") == "ok"
    with pytest.raises(CertError, match=r"ca\.pem, .*ca\.key, .*already exist"):
        make_certs(tmp_path, ["10.0.0.3"], new_ca=True)
    renewed = make_certs(tmp_path, ["10.0.0.3"], force=True, new_ca=True)
    assert renewed.ca_created and renewed.ca.fingerprint != first.ca.fingerprint


def test_a_ca_whose_key_is_not_its_own_is_refused(tmp_path: Path) -> None:
    a = make_certs(tmp_path / "a", ["10.0.0.2"])
    b = make_certs(tmp_path / "b", ["10.0.0.2"])
    b.files.ca_key.write_bytes(a.files.ca_key.read_bytes())
    with pytest.raises(CertError, match=r"ca\.key is not the key of ca\.pem"):
        make_certs(tmp_path / "b", ["10.0.0.2"], force=True)


def test_an_expired_ca_is_named(tmp_path: Path) -> None:
    make_certs(tmp_path, ["10.0.0.2"])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30 * 365)
    with pytest.raises(CertError, match=r"the CA .*ca\.pem expired on .*--force --new-ca"):
        make_certs(tmp_path, ["10.0.0.2"], force=True, now=later)


def test_keys_stay_out_of_the_build_folder_and_of_git(tmp_path: Path) -> None:
    with pytest.raises(CertError, match="inside the build folder"):
        make_certs(tmp_path / "build" / "state", ["10.0.0.2"], build_dir=tmp_path / "build")
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    with pytest.raises(CertError, match="inside the repository and not ignored by git"):
        make_certs(repo / "keys", ["10.0.0.2"], project_root=repo)
    assert not (repo / "keys" / "tls").exists()
    (repo / ".gitignore").write_text("/.fota/\n")
    r = make_certs(repo / ".fota", ["10.0.0.2"], project_root=repo)
    assert r.files.server_key.is_file()


@pytest.mark.parametrize(("names", "message"), [
    ([], "no host name or address given"),
    (["  "], "no host name or address given"),
    (["bad name"], "'bad name' is neither an IP address nor a host name"),
    (["-x.lan"], "'-x.lan' is neither"),
])
def test_bad_names_are_named(tmp_path: Path, names: list[str], message: str) -> None:
    with pytest.raises(CertError, match=message):
        make_certs(tmp_path, names)


def test_names_are_normalised_and_defaults_include_loopback() -> None:
    assert check_names(["Fota.LAN.", "fota.lan", "::1"]) == ["fota.lan", "::1"]
    names = default_names()
    assert names[-2:] == ["localhost", "127.0.0.1"] and check_names(names) == names


def test_days_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(CertError, match="--days 0 must be within"):
        make_certs(tmp_path, ["10.0.0.2"], days=0)
