"""Run the update server with uvicorn from a :class:`~fota_formats.config.FotaConfig`.

    >>> from fota_formats.config import load_config
    >>> serve(load_config())          # doctest: +SKIP   (blocks until Ctrl-C)

Listens on 127.0.0.1 unless told otherwise. Listening beyond loopback (the LAN, where the ESP32
is) needs a device token, a different operator token and HTTPS (fota_server.tls): the server
refuses to start without them. uvicorn runs with the limits of :mod:`fota_server.protocol` and an
access log without query strings (:mod:`fota_server.accesslog`).
"""

from __future__ import annotations

import logging
import os
import secrets

import uvicorn
from fastapi import FastAPI
from fota_formats.config import ConfigError, FotaConfig
from fota_s3.endpoint import open_store
from fota_s3.store import S3Store

from fota_server.accesslog import install_access_log_filter
from fota_server.app import ServerSettings, create_app
from fota_server.downloads import download_urls
from fota_server.protocol import uvicorn_options
from fota_server.tls import check_transport, tls_options
from fota_server.trust import KeyRing

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
SYNC_ENV = "FOTA_SERVER_SYNC"  # read by fota_server.workers
LOG_LEVEL_ENV = "FOTA_SERVER_LOG_LEVEL"


def check_listen(cfg: FotaConfig) -> None:
    """Refuse to serve the LAN without both tokens, and one token for both roles anywhere."""
    server = cfg.server
    if server.token is not None and server.token == server.operator_token:
        raise ConfigError("Failed to start the server: the device token (FOTA_SERVER_TOKEN) and the operator "
                          "token (FOTA_OPERATOR_TOKEN) are the same; the operator token must differ, or "
                          "every device could sync and list the fleet")
    if server.loopback_only:
        return
    missing = [what for what, value in (
        (f"a device token (FOTA_SERVER_TOKEN or [server] token, for example "
         f"FOTA_SERVER_TOKEN={secrets.token_urlsafe(24)}; give the same token to the bridge)", server.token),
        (f"an operator token (FOTA_OPERATOR_TOKEN or [server] operator_token, for example "
         f"FOTA_OPERATOR_TOKEN={secrets.token_urlsafe(24)}; for sync, device lists and status)",
         server.operator_token)) if not value]
    if missing:
        raise ConfigError(f"Failed to start the server: listening on {server.host} (beyond loopback) "
                          "requires " + " and ".join(missing))


def settings_from_config(cfg: FotaConfig, sync: bool = True) -> ServerSettings:
    def factory() -> S3Store:
        return open_store(cfg)
    return ServerSettings(firmware_dir=cfg.firmware_dir, db_path=cfg.database, token=cfg.server.token,
                          operator_token=cfg.server.operator_token,
                          sync_interval_s=cfg.server.sync_interval_s if sync else None,
                          store_factory=factory if sync else None,
                          source=cfg.s3.describe() if sync else "sync disabled",
                          download_url=download_urls(cfg, factory),
                          trusted_keys=KeyRing.load(cfg.server.trusted_keys))


def build_app(cfg: FotaConfig, sync: bool = True) -> FastAPI:
    check_listen(cfg)
    return create_app(settings_from_config(cfg, sync))


def serve(cfg: FotaConfig, sync: bool = True, log_level: str = "info", insecure_http: bool = False,
          workers: int = 1) -> None:
    """Run in the foreground until interrupted. Beyond loopback: HTTPS, unless ``insecure_http``
    (fota_server.tls); ``workers`` > 1 starts that many processes (``fota_server.workers``), each
    building the app from the same configuration."""
    check_listen(cfg)
    check_transport(cfg, insecure_http)
    if workers > 1:
        # the workers read the configuration themselves (fota_server.workers): what the command line
        # changed goes to them through the environment
        os.environ["FOTA_SERVER_HOST"] = cfg.server.host
        os.environ["FOTA_SERVER_PORT"] = str(cfg.server.port)
        os.environ[SYNC_ENV] = "1" if sync else "0"
        os.environ[LOG_LEVEL_ENV] = log_level
        app: FastAPI | str = "fota_server.workers:create_worker_app"
    else:
        app = build_app(cfg, sync)
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    tls = tls_options(cfg)
    install_access_log_filter()
    log = logging.getLogger("fota_server")
    auth = ("device and operator tokens required" if cfg.server.token and cfg.server.operator_token
            else "some routes closed (one token only)" if cfg.server.token or cfg.server.operator_token
            else "no token (loopback only)")
    downloads = (f"images from presigned S3 URLs ({cfg.server.download_url_expiry_s} s)"
                 if cfg.server.direct_downloads else "images from this server")
    log.info("serving %s://%s:%d (%s); %d worker%s; firmware %s; registry %s; releases from %s; %s",
             cfg.server.scheme, cfg.server.host, cfg.server.port, auth, workers, "s" if workers > 1 else "",
             cfg.firmware_dir, cfg.describe_database(),
             cfg.s3.describe() if sync else "nowhere (sync disabled)", downloads)
    if sync and not cfg.server.trusted_keys:
        log.warning("no trusted release key ([server] trusted_keys, FOTA_SERVER_TRUSTED_KEYS): every release "
                    "in S3 will be refused")
    uvicorn.run(app, host=cfg.server.host, port=cfg.server.port, log_level=log_level, access_log=True,
                log_config=None, workers=workers if workers > 1 else None, factory=workers > 1,
                **uvicorn_options(), **tls)
