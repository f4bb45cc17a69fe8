"""HTTPS for the update server: which transport a configuration may use, and uvicorn's TLS options.

    >>> from fota_formats.config import load_config
    >>> cfg = load_config()
    >>> check_transport(cfg, insecure_http=False)    # doctest: +SKIP   (refuses the LAN over HTTP)
    >>> uvicorn.run(app, **tls_options(cfg))          # doctest: +SKIP   ({} without a certificate)

The device token crosses the network with every request of a bridge, so a server that listens
beyond loopback serves HTTPS (``[server] tls_cert`` / ``tls_key``, made by ``invoke certs``).
Plain HTTP stays allowed on loopback only, or beyond it when the operator says so explicitly
(``--insecure-http``). The certificate and key are checked before the server starts, so a wrong
path, a key of another certificate or an unreadable file is one clear message, not a traceback.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

from fota_formats.config import ConfigError, FotaConfig

log = logging.getLogger("fota_server")


def check_transport(cfg: FotaConfig, insecure_http: bool = False) -> None:
    """Refuse plain HTTP beyond loopback unless ``insecure_http``."""
    srv = cfg.server
    if srv.tls or srv.loopback_only or insecure_http:
        return
    raise ConfigError(
        f"Failed to start the server: listening on {srv.host} (beyond loopback) over plain HTTP would send "
        "the device token in clear text; configure HTTPS with [server] tls_cert and tls_key "
        "(or FOTA_SERVER_TLS_CERT / FOTA_SERVER_TLS_KEY; `invoke certs` makes a CA and the certificate), "
        "or pass --insecure-http to accept clear text on this network")


def _readable(path: Path, what: str) -> None:
    if not path.is_file():
        raise ConfigError(f"Failed to start the server: [server] {what} {path} does not exist "
                          "(`invoke certs` makes it)")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise ConfigError(f"Failed to start the server: [server] {what} {path} cannot be read: "
                          f"{e.strerror or e}") from None


def tls_options(cfg: FotaConfig) -> dict[str, Any]:
    """uvicorn's keyword arguments for HTTPS ({} for plain HTTP), after checking that the key
    belongs to the certificate."""
    srv = cfg.server
    if srv.tls_cert is None or srv.tls_key is None:
        return {}
    _readable(srv.tls_cert, "tls_cert")
    _readable(srv.tls_key, "tls_key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(srv.tls_cert, srv.tls_key)
    except ssl.SSLError as e:
        why = "the key does not belong to the certificate" if "KEY_VALUES_MISMATCH" in str(e) else (
            f"not a PEM certificate and key ({e.reason or e})")
        raise ConfigError(f"Failed to start the server: [server] tls_cert {srv.tls_cert} and tls_key "
                          f"{srv.tls_key}: {why}") from None
    if srv.tls_key.stat().st_mode & 0o077:
        log.warning("the TLS key %s is readable by other users (chmod 600 it)", srv.tls_key)
    return {"ssl_certfile": str(srv.tls_cert), "ssl_keyfile": str(srv.tls_key)}


__all__ = ["check_transport", "tls_options"]
