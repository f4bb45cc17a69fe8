"""Configuration of releases and of the update server: a TOML file plus environment variables.

    >>> from fota_formats.config import load_config
    >>> cfg = load_config(env={"FOTA_S3_BUCKET": "my-fw", "FOTA_S3_PREFIX": "board1"})
    >>> cfg.s3.bucket, cfg.s3.prefix, cfg.s3.embedded
    ('my-fw', 'board1', False)

Sources, later ones win: built-in defaults, the config file (``$FOTA_CONFIG`` or ``fota.toml`` in
the working directory; see ``fota.example.toml``), then ``FOTA_*`` environment variables. Relative
paths are taken relative to the folder of the config file (the working directory without one).

Credentials are never read here: boto3 finds them through its standard chain (environment,
shared credentials file, SSO, instance role). With no bucket configured, the tools use the
embedded local S3 endpoint (``fota_lab.locals3``).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import FotaError

CONFIG_FILE_NAME = "fota.toml"
EMBEDDED_BUCKET = "stm32-fota"
DEFAULT_PORT = 8080
DEFAULT_SYNC_INTERVAL_S = 60.0
DEFAULT_DOWNLOAD_URL_EXPIRY_S = 600
MAX_DOWNLOAD_URL_EXPIRY_S = 7 * 24 * 3600   # the longest a SigV4 presigned URL may live


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list of strings"}


class ConfigError(FotaError):
    """The configuration file or an environment variable is unusable."""


@dataclass(frozen=True)
class S3Config:
    bucket: str | None = None  # None: use the embedded local endpoint
    prefix: str = ""
    region: str = "us-east-1"
    endpoint_url: str | None = None

    @property
    def embedded(self) -> bool:
        return self.bucket is None

    @property
    def bucket_name(self) -> str:
        return self.bucket or EMBEDDED_BUCKET

    def key(self, *parts: str) -> str:
        """Object key under the prefix: ``key("releases", "1.0.0", "slot-a.bin")``."""
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    def describe(self) -> str:
        where = f"s3://{self.bucket_name}/{self.prefix.strip('/')}".rstrip("/")
        if self.embedded:
            return f"{where} (embedded local S3)"
        return where + (f" at {self.endpoint_url}" if self.endpoint_url else "")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = field(default=None, repr=False)  # the device token; never printed
    operator_token: str | None = field(default=None, repr=False)  # sync, device lists; never printed
    sync_interval_s: float = DEFAULT_SYNC_INTERVAL_S
    tls_cert: Path | None = None      # HTTPS: the server's certificate (PEM, chain allowed) ...
    tls_key: Path | None = None       # ... and its private key (PEM); both or neither
    direct_downloads: bool = False    # check-ins answer presigned S3 URLs instead of the server's own
    download_url_expiry_s: int = DEFAULT_DOWNLOAD_URL_EXPIRY_S
    # The registry database: None for the SQLite file at [paths] db; a URL names another one,
    # postgresql://user@host/db (may hold a password: printed only through redact_url).
    database_url: str | None = field(default=None, repr=False)
    # The public keys a release must be signed with: each a PEM file (resolved path) or 64 hex digits
    # (a raw Ed25519 public key); fota_server.trust reads them. Empty: the sync accepts no release.
    trusted_keys: tuple[str, ...] = ()

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.host)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


DEFAULT_SIGNING_KEY = Path("~/.config/stm32-fota/signing-key.pem")
MAX_SECURITY_COUNTER = 0xFFFF_FFFF  # MCUboot's IMAGE_TLV_SEC_CNT is a u32


@dataclass(frozen=True)
class SigningConfig:
    """``[signing]``: the image signing key (a private PEM, outside the repository), the public keys
    the firmware trusts (empty: the signing key's public half) and the security counter of builds."""

    signing_key: Path = DEFAULT_SIGNING_KEY
    trusted_keys: tuple[Path, ...] = ()
    security_counter: int = 1


@dataclass(frozen=True)
class FotaConfig:
    root: Path
    s3: S3Config = S3Config()
    server: ServerConfig = ServerConfig()
    state_dir: Path = Path(".fota")
    firmware_dir: Path = Path(".fota/firmware")
    db_path: Path = Path(".fota/server.db")
    build_dir: Path = Path("build")
    signing: SigningConfig = SigningConfig()
    source: str = "defaults"  # where the configuration came from, for messages

    @property
    def mirror_dir(self) -> Path:
        """Local copy of every object uploaded to the embedded S3, restored when it starts."""
        return self.state_dir / "s3-mirror"

    @property
    def database(self) -> str | Path:
        """The registry database: the configured URL, else the SQLite file at ``db_path``."""
        return self.server.database_url or self.db_path

    def describe_database(self) -> str:
        """The registry database for messages and logs, without its password."""
        url = self.server.database_url
        return redact_url(url) if url else f"SQLite {self.db_path}"

    def with_s3(self, **changes: Any) -> FotaConfig:
        return replace(self, s3=replace(self.s3, **changes))

    def with_server(self, **changes: Any) -> FotaConfig:
        return replace(self, server=replace(self.server, **changes))


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")


def redact_url(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` query parameter) replaced by ***.

        >>> redact_url("postgresql://fota:s3cret@db.lan:5432/fota?sslmode=require&password=x")
        'postgresql://fota:***@db.lan:5432/fota?sslmode=require&password=***'
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if sep else netloc
    params = [p for p in parts.query.split("&") if p]
    query = "&".join(f"{p.partition('=')[0]}=***" if p.partition("=")[0].lower() == "password" else p
                     for p in params)
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    # built by hand: urlunsplit would drop the empty authority of sqlite:////abs/path
    return (f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
            + (f"#{parts.fragment}" if parts.fragment else ""))


def check_database_url(url: str, source: str) -> str:
    """A registry URL this project can use: sqlite:///path or postgresql://... (psycopg)."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in DATABASE_SCHEMES:
        raise ConfigError(f"Failed to read the configuration ({source}): database_url {redact_url(url)!r} "
                          f"must start with sqlite:/// or postgresql:// (postgresql+psycopg:// also works)")
    return url


_ENV: dict[str, tuple[str, str, type]] = {
    # variable: (section, key, type)
    "FOTA_S3_BUCKET": ("s3", "bucket", str),
    "FOTA_S3_PREFIX": ("s3", "prefix", str),
    "FOTA_S3_REGION": ("s3", "region", str),
    "FOTA_S3_ENDPOINT_URL": ("s3", "endpoint_url", str),
    "FOTA_SERVER_HOST": ("server", "host", str),
    "FOTA_SERVER_PORT": ("server", "port", int),
    "FOTA_SERVER_TOKEN": ("server", "token", str),
    "FOTA_OPERATOR_TOKEN": ("server", "operator_token", str),
    "FOTA_SYNC_INTERVAL": ("server", "sync_interval_s", float),
    "FOTA_SERVER_TLS_CERT": ("server", "tls_cert", str),
    "FOTA_SERVER_TLS_KEY": ("server", "tls_key", str),
    "FOTA_DIRECT_DOWNLOADS": ("server", "direct_downloads", bool),
    "FOTA_DOWNLOAD_URL_EXPIRY": ("server", "download_url_expiry_s", int),
    "FOTA_DATABASE_URL": ("server", "database_url", str),
    "FOTA_SERVER_TRUSTED_KEYS": ("server", "trusted_keys", list),  # comma-separated
    "FOTA_SIGNING_KEY": ("signing", "signing_key", str),
    "FOTA_SECURITY_COUNTER": ("signing", "security_counter", int),
    "FOTA_STATE_DIR": ("paths", "state_dir", str),
    "FOTA_FIRMWARE_DIR": ("paths", "firmware_dir", str),
    "FOTA_DB": ("paths", "db", str),
    "FOTA_BUILD_DIR": ("paths", "build_dir", str),
}

_KNOWN: dict[str, dict[str, type]] = {
    "s3": {"bucket": str, "prefix": str, "region": str, "endpoint_url": str},
    "server": {"host": str, "port": int, "token": str, "operator_token": str, "sync_interval_s": float,
               "tls_cert": str, "tls_key": str, "direct_downloads": bool, "download_url_expiry_s": int,
               "database_url": str, "trusted_keys": list},
    "paths": {"state_dir": str, "firmware_dir": str, "db": str, "build_dir": str},
    "signing": {"signing_key": str, "trusted_keys": list, "security_counter": int},
}


def _check_file(data: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for section, body in data.items():
        if section not in _KNOWN or not isinstance(body, dict):
            raise ConfigError(f"Failed to read {path}: unknown section [{section}] "
                              f"(known: {', '.join(f'[{s}]' for s in _KNOWN)})")
        for key, value in body.items():
            want = _KNOWN[section].get(key)
            if want is None:
                raise ConfigError(f"Failed to read {path}: unknown key {key!r} in [{section}] "
                                  f"(known: {', '.join(_KNOWN[section])})")
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if want is list and isinstance(value, list) and not all(isinstance(v, str) for v in value):
                value = None  # refused below
            if not isinstance(value, want) or (isinstance(value, bool) and want is not bool):
                raise ConfigError(f"Failed to read {path}: [{section}] {key} must be {_TYPE_NAMES[want]}, "
                                  f"not {value!r}")
            out.setdefault(section, {})[key] = value
    return out


def _from_env(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for var, (section, key, typ) in _ENV.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        try:
            value: Any = (_parse_bool(raw) if typ is bool else
                          [v.strip() for v in raw.split(",") if v.strip()] if typ is list else typ(raw))
        except ValueError:
            raise ConfigError(f"Failed to read the environment: {var}={raw!r} is not "
                              f"{_TYPE_NAMES[typ]}") from None
        out.setdefault(section, {})[key] = value
    return out


def _key_spec(spec: str, rel: Any) -> str:
    """A trusted key as given: 64 hex digits stay as they are, anything else is a path."""
    spec = spec.strip()
    if len(spec) == 64 and all(c in "0123456789abcdefABCDEF" for c in spec):
        return spec.lower()
    return str(rel(Path(spec)))


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def find_config_file(env: Mapping[str, str], cwd: Path) -> Path | None:
    explicit = env.get("FOTA_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_absolute():
            path = cwd / path
        if not path.is_file():
            raise ConfigError(f"Failed to read the configuration: FOTA_CONFIG names {path}, "
                              "which does not exist")
        return path
    candidate = cwd / CONFIG_FILE_NAME
    return candidate if candidate.is_file() else None


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> FotaConfig:
    """Load the configuration. ``path`` overrides the file lookup; ``env`` defaults to os.environ."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    path = path if path is not None else find_config_file(env, cwd)
    merged: dict[str, dict[str, Any]] = {}
    source = "defaults"
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"Failed to read {path}: {e}") from None
        merged = _check_file(data, path)
        source = str(path)
    env_values = _from_env(env)
    for section, body in env_values.items():
        merged.setdefault(section, {}).update(body)
    if env_values:
        source += " + environment"
    root = path.parent if path is not None else cwd

    s3v = merged.get("s3", {})
    bucket = s3v.get("bucket") or None
    s3 = S3Config(bucket=bucket, prefix=str(s3v.get("prefix", "")).strip("/"),
                  region=s3v.get("region", S3Config.region),
                  endpoint_url=s3v.get("endpoint_url") or None)
    sv = merged.get("server", {})
    port = sv.get("port", DEFAULT_PORT)
    if not 0 < port < 65536:
        raise ConfigError(f"Failed to read the configuration ({source}): server port {port} is out of range")
    interval = sv.get("sync_interval_s", DEFAULT_SYNC_INTERVAL_S)
    if interval <= 0:
        raise ConfigError(f"Failed to read the configuration ({source}): sync_interval_s must be > 0")
    expiry = sv.get("download_url_expiry_s", DEFAULT_DOWNLOAD_URL_EXPIRY_S)
    if not 1 <= expiry <= MAX_DOWNLOAD_URL_EXPIRY_S:
        raise ConfigError(f"Failed to read the configuration ({source}): download_url_expiry_s {expiry} must "
                          f"be within 1..{MAX_DOWNLOAD_URL_EXPIRY_S} (7 days, the limit of S3 presigned "
                          "URLs)")

    def _rel(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else root / p

    cert, key = sv.get("tls_cert") or None, sv.get("tls_key") or None
    if (cert is None) != (key is None):
        given, missing = ("tls_cert", "tls_key") if cert else ("tls_key", "tls_cert")
        raise ConfigError(f"Failed to read the configuration ({source}): [server] {given} is set but "
                          f"{missing} is not; HTTPS needs both (`invoke certs` makes them)")
    database_url = sv.get("database_url") or None
    if database_url is not None:
        check_database_url(database_url, source)
    server = ServerConfig(host=sv.get("host", "127.0.0.1"), port=port, token=sv.get("token") or None,
                          operator_token=sv.get("operator_token") or None,
                          sync_interval_s=interval,
                          tls_cert=_rel(Path(cert)) if cert else None,
                          tls_key=_rel(Path(key)) if key else None,
                          direct_downloads=bool(sv.get("direct_downloads", False)),
                          download_url_expiry_s=expiry, database_url=database_url,
                          trusted_keys=tuple(_key_spec(k, _rel) for k in sv.get("trusted_keys", [])))

    pv = merged.get("paths", {})

    def _path(key: str, default: str) -> Path:
        return _rel(Path(pv.get(key, default)))

    gv = merged.get("signing", {})
    counter = gv.get("security_counter", SigningConfig.security_counter)
    if not 0 <= counter <= MAX_SECURITY_COUNTER:
        raise ConfigError(f"Failed to read the configuration ({source}): [signing] security_counter "
                          f"{counter} must be within 0..{MAX_SECURITY_COUNTER}")
    key_file = gv.get("signing_key")
    signing = SigningConfig(
        signing_key=_rel(Path(key_file)) if key_file else DEFAULT_SIGNING_KEY.expanduser(),
        trusted_keys=tuple(_rel(Path(k)) for k in gv.get("trusted_keys", [])), security_counter=counter)
    state_dir = _path("state_dir", ".fota")
    return FotaConfig(root=root, s3=s3, server=server, state_dir=state_dir, signing=signing,
                      firmware_dir=_path("firmware_dir", str(state_dir / "firmware")),
                      db_path=_path("db", str(state_dir / "server.db")),
                      build_dir=_path("build_dir", "build"), source=source)
