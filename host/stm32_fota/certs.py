"""A small local certificate authority for HTTPS between the update server and the ESP32 bridges.

    >>> from stm32_fota.certs import make_certs, default_names
    >>> r = make_certs(Path(".fota"), default_names())        # doctest: +SKIP
    >>> r.files.ca_cert, r.files.server_cert, r.files.server_key   # doctest: +SKIP
    (PosixPath('.fota/tls/ca.pem'), PosixPath('.fota/tls/server.pem'), PosixPath('.fota/tls/server.key'))

``invoke certs`` runs :func:`make_certs`: a CA (``ca.pem`` + ``ca.key``) and a server certificate
signed by it (``server.pem`` + ``server.key``) for the names and addresses the bridges use to reach
the server. The server loads ``server.pem``/``server.key`` (``[server] tls_cert``/``tls_key``);
``deploy-esp32 --ca <state dir>/tls/ca.pem`` installs the CA certificate on each ESP32, whose
bridge then accepts only a server certificate signed by this CA for the name in its server URL.

Keys are ECDSA P-256 (mbedTLS on the ESP32 verifies them quickly, and the certificates stay
small), written with mode 0600 into ``<state dir>/tls/``, never into the build folder nor anywhere
git would track, and never printed: only paths and SHA-256 fingerprints are. Existing files are
kept unless ``force`` is given; with ``force`` the server certificate is issued again by the
existing CA (the ESP32s keep trusting it) unless ``new_ca`` asks for a new CA too.

Validity starts on 2000-01-01: an ESP32's clock starts there after every reset until something
sets it, and MicroPython's ESP32 builds let mbedTLS check certificate dates against that clock
(``CONFIG_MBEDTLS_HAVE_TIME_DATE=y``); a certificate valid only from today would be refused as
"not yet valid" by every bridge that has not synchronised its clock.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fota_formats.files import write_atomic

from .errors import FotaError

TLS_DIR = "tls"
CA_DAYS = 20 * 365
DEFAULT_SERVER_DAYS = 5 * 365
VALID_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_ROUTE_PROBE = ("192.0.2.1", 9)   # TEST-NET-1: connecting a UDP socket sends nothing


class CertError(FotaError):
    """The CA or the server certificate could not be made, read or written."""


@dataclass(frozen=True)
class TlsFiles:
    """Where the CA and the server certificate live in a state folder."""

    folder: Path

    @classmethod
    def under(cls, state_dir: Path) -> TlsFiles:
        return cls(state_dir / TLS_DIR)

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"


@dataclass(frozen=True)
class CertInfo:
    path: Path
    subject: str
    fingerprint: str            # SHA-256 of the DER certificate, AA:BB:... upper-case hex
    not_before: dt.datetime
    not_after: dt.datetime
    names: tuple[str, ...] = ()  # DNS names and IP addresses (server certificate)


@dataclass(frozen=True)
class CertsResult:
    files: TlsFiles
    ca: CertInfo
    server: CertInfo
    ca_created: bool

    def describe(self) -> str:
        """What a user needs to know: paths, fingerprints, names, the next steps. No key material."""
        ca_state = "created" if self.ca_created else "kept (the ESP32s that trust it need nothing new)"
        lines = [
            f"certs: CA {ca_state}: {self.ca.path}",
            f"certs:   {self.ca.subject}, valid until {self.ca.not_after:%Y-%m-%d}",
            f"certs:   SHA-256 {self.ca.fingerprint}",
            f"certs:   key {self.files.ca_key} (mode 0600; keep it private, it signs server certificates)",
            f"certs: server certificate: {self.server.path}",
            f"certs:   for {', '.join(self.server.names)}, valid until {self.server.not_after:%Y-%m-%d}",
            f"certs:   SHA-256 {self.server.fingerprint}",
            f"certs:   key {self.files.server_key} (mode 0600)",
            "certs: next: in fota.toml, [server] tls_cert = "
            f"\"{self.files.server_cert}\" and tls_key = \"{self.files.server_key}\"; "
            f"deploy the CA with `invoke deploy-esp32 --ca {self.ca.path} "
            "--server https://<name>:<port> ...`",
        ]
        return "\n".join(lines)


def _crypto():  # type: ignore[no-untyped-def]
    """The cryptography modules, imported on first use (only this task needs them)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as e:  # pragma: no cover - part of the tools extra
        raise CertError(f"Failed to make certificates: the cryptography package is missing ({e}); "
                        "pip install -e '.[tools]'") from None
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def default_names() -> list[str]:
    """The names a bridge may use for this machine: its LAN address (the one its default route
    leaves from), its host name, and the loopback ones for local tests."""
    names: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(_ROUTE_PROBE)
            lan = s.getsockname()[0]
        if lan and not ipaddress.ip_address(lan).is_loopback and lan != "0.0.0.0":
            names.append(lan)
    except OSError:
        pass  # no route: loopback only
    host = socket.gethostname()
    if host and host != "localhost":
        names.append(host)
    names += ["localhost", "127.0.0.1"]
    return names


def check_names(names: Sequence[str]) -> list[str]:
    """Names as given, de-duplicated; refuses an empty list and anything that is neither an IP
    address nor a DNS name."""
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower().rstrip(".")
        if not name:
            continue
        try:
            ipaddress.ip_address(name)
        except ValueError:
            labels = name.split(".")
            ok = all(0 < len(lb) <= 63 and lb.replace("-", "").isalnum() and not lb.startswith("-")
                     and not lb.endswith("-") and lb.isascii() for lb in labels)
            if not ok or len(name) > 253:
                raise CertError(f"Failed to make the server certificate: {raw!r} is neither an IP address "
                                "nor a host name") from None
        if name not in out:
            out.append(name)
    if not out:
        raise CertError("Failed to make the server certificate: no host name or address given")
    return out


def _refuse_unsafe_folder(folder: Path, build_dir: Path | None, project_root: Path | None) -> None:
    """Keys never go into the build folder nor anywhere git would commit them."""
    folder = folder.resolve()
    if build_dir is not None and folder.is_relative_to(build_dir.resolve()):
        raise CertError(f"Failed to make certificates: {folder} is inside the build folder {build_dir}; "
                        "keys belong in the state folder ([paths] state_dir, outside the build)")
    if project_root is None or not folder.is_relative_to(project_root.resolve()):
        return
    try:
        probe = subprocess.run(["git", "-C", str(project_root), "check-ignore", "-q",
                                str(folder / "ca.key")], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return  # no git: nothing would be committed by it
    if probe.returncode == 1:   # 0: ignored, 1: not ignored, 128: not a git checkout
        raise CertError(f"Failed to make certificates: {folder} is inside the repository and not ignored "
                        "by git, so the keys could be committed; use the state folder (.fota/, ignored) "
                        "or one outside the checkout")


def _write(path: Path, data: bytes, private: bool) -> None:
    """Write atomically; a key file is created with mode 0600 from the start (never readable by
    others, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        os.chmod(path.parent, 0o700)
    write_atomic(path, data, 0o600 if private else 0o644)


def _info(cert, path: Path) -> CertInfo:  # type: ignore[no-untyped-def]
    x509, hashes, *_ = _crypto()
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    names: tuple[str, ...] = ()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        dns = [d for d in san.get_values_for_type(x509.DNSName) if d not in ips]
        names = (*ips, *dns)
    except x509.ExtensionNotFound:
        pass
    return CertInfo(path, cert.subject.rfc4514_string(), ":".join(digest[i:i + 2] for i in range(0, 64, 2)),
                    cert.not_valid_before_utc, cert.not_valid_after_utc, names)


def _load_ca(files: TlsFiles):  # type: ignore[no-untyped-def]
    x509, _, serialization, ec, *_ = _crypto()
    try:
        cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise CertError(f"Failed to read the CA in {files.folder}: {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CertError(f"Failed to read the CA in {files.folder}: {files.ca_key.name} is not the key of "
                        f"{files.ca_cert.name}")
    return cert, key


def _new_ca(now: dt.datetime):  # type: ignore[no-untyped-def]
    x509, hashes, _, ec, _, NameOID = _crypto()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "stm32-fota"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"stm32-fota local CA {now:%Y-%m-%d}")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(VALID_FROM).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _new_server(ca_cert, ca_key, names: list[str], now: dt.datetime, days: int):  # type: ignore[no-untyped-def]
    x509, hashes, _, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            ip = ipaddress.ip_address(n)
        except ValueError:
            alt.append(x509.DNSName(n))
        else:
            # The address as an iPAddress entry (what TLS clients check) and, for mbedTLS releases
            # that compare only DNS entries with the expected name, as a DNS entry too.
            alt += [x509.IPAddress(ip), x509.DNSName(n)]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "stm32-fota"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(VALID_FROM).not_valid_after(min(now + dt.timedelta(days=days),
                                                              ca_cert.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _pem_key(key) -> bytes:  # type: ignore[no-untyped-def]
    _, _, serialization, *_ = _crypto()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert) -> bytes:  # type: ignore[no-untyped-def]
    _, _, serialization, *_ = _crypto()
    return cert.public_bytes(serialization.Encoding.PEM)


def make_certs(state_dir: Path, names: Sequence[str], *, force: bool = False, new_ca: bool = False,
               days: int = DEFAULT_SERVER_DAYS, build_dir: Path | None = None,
               project_root: Path | None = None, now: dt.datetime | None = None) -> CertsResult:
    """Make (or keep) the CA and issue the server certificate for ``names`` under ``state_dir``/tls.

    Refuses to overwrite an existing server certificate (or, with ``new_ca``, the CA) unless
    ``force``; a CA that exists is reused, so a new server certificate needs no new deployment.
    """
    names = check_names(names)
    if not 1 <= days <= CA_DAYS:
        raise CertError(f"Failed to make the server certificate: --days {days} must be within 1..{CA_DAYS}")
    files = TlsFiles.under(state_dir)
    _refuse_unsafe_folder(files.folder, build_dir, project_root)
    now = now or dt.datetime.now(dt.UTC)
    have_ca = files.ca_cert.exists() or files.ca_key.exists()
    existing = [p for p in ((files.ca_cert, files.ca_key) if new_ca else ()) +
                (files.server_cert, files.server_key) if p.exists()]
    if existing and not force:
        raise CertError(f"Failed to make certificates: {', '.join(str(p) for p in existing)} "
                        "already exist; pass --force to replace the server certificate"
                        + (" and the CA" if new_ca else " (the CA is kept; --new-ca replaces it too)"))
    ca_created = new_ca or not have_ca
    if ca_created:
        ca_cert, ca_key = _new_ca(now)
    else:
        ca_cert, ca_key = _load_ca(files)
        if ca_cert.not_valid_after_utc <= now:
            raise CertError(f"Failed to issue the server certificate: the CA {files.ca_cert} expired on "
                            f"{ca_cert.not_valid_after_utc:%Y-%m-%d}; make a new one with --force --new-ca "
                            "and deploy it to every ESP32")
    srv_cert, srv_key = _new_server(ca_cert, ca_key, names, now, days)
    try:
        if ca_created:
            _write(files.ca_key, _pem_key(ca_key), private=True)
            _write(files.ca_cert, _pem_cert(ca_cert), private=False)
        _write(files.server_key, _pem_key(srv_key), private=True)
        _write(files.server_cert, _pem_cert(srv_cert), private=False)
    except OSError as e:
        raise CertError(f"Failed to write the certificates into {files.folder}: {e}") from None
    return CertsResult(files, _info(ca_cert, files.ca_cert), _info(srv_cert, files.server_cert), ca_created)


def read_cert_info(path: Path) -> list[CertInfo]:
    """Every certificate of a PEM file (a CA bundle may hold several), or a CertError naming the
    file and what is wrong."""
    x509, *_ = _crypto()
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as e:
        raise CertError(f"Failed to read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise CertError(f"Failed to read {path}: not a PEM certificate file ({e})") from None
    return [_info(c, path) for c in certs]


__all__ = ["CertError", "CertInfo", "CertsResult", "TlsFiles", "check_names", "default_names", "make_certs",
           "read_cert_info"]
