"""Run the update server with uvicorn from a :class:`~fota_formats.config.FotaConfig`.

    >>> from fota_formats.config import load_config
    >>> serve(load_config())          # doctest: +SKIP   (blocks until Ctrl-C)

Listens on 127.0.0.1 unless told otherwise. Listening beyond loopback (the LAN, where the ESP32
is) needs a device token and HTTPS (fota_server.tls): the server refuses to start without them.
"""

from __future__ import annotations

import logging
import secrets

import uvicorn
from fastapi import FastAPI
from fota_formats.config import ConfigError, FotaConfig
from fota_s3.endpoint import open_store
from fota_s3.store import S3Store

from fota_server.app import ServerSettings, create_app
from fota_server.downloads import download_urls
from fota_server.tls import check_transport, tls_options

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def check_listen(cfg: FotaConfig) -> None:
    """Refuse to serve the LAN without a device token."""
    if not cfg.server.loopback_only and not cfg.server.token:
        raise ConfigError(
            f"Failed to start the server: listening on {cfg.server.host} (beyond loopback) requires a device "
            f"token; set FOTA_SERVER_TOKEN or [server] token in the config file (for example "
            f"FOTA_SERVER_TOKEN={secrets.token_urlsafe(24)}) and give the same token to the bridge")


def settings_from_config(cfg: FotaConfig, sync: bool = True) -> ServerSettings:
    def factory() -> S3Store:
        return open_store(cfg)
    return ServerSettings(firmware_dir=cfg.firmware_dir, db_path=cfg.db_path, token=cfg.server.token,
                          sync_interval_s=cfg.server.sync_interval_s if sync else None,
                          store_factory=factory if sync else None,
                          source=cfg.s3.describe() if sync else "sync disabled",
                          download_url=download_urls(cfg, factory))


def build_app(cfg: FotaConfig, sync: bool = True) -> FastAPI:
    check_listen(cfg)
    return create_app(settings_from_config(cfg, sync))


def serve(cfg: FotaConfig, sync: bool = True, log_level: str = "info", insecure_http: bool = False) -> None:
    """Run in the foreground until interrupted. Beyond loopback: HTTPS, unless ``insecure_http``
    (fota_server.tls)."""
    check_listen(cfg)
    check_transport(cfg, insecure_http)
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    tls = tls_options(cfg)
    app = build_app(cfg, sync)
    log = logging.getLogger("fota_server")
    auth = "device token required" if cfg.server.token else "no token (loopback only)"
    downloads = (f"images from presigned S3 URLs ({cfg.server.download_url_expiry_s} s)"
                 if cfg.server.direct_downloads else "images from this server")
    log.info("serving %s://%s:%d (%s); firmware %s; registry %s; releases from %s; %s", cfg.server.scheme,
             cfg.server.host, cfg.server.port, auth, cfg.firmware_dir, cfg.db_path,
             cfg.s3.describe() if sync else "nowhere (sync disabled)", downloads)
    uvicorn.run(app, host=cfg.server.host, port=cfg.server.port, log_level=log_level, access_log=True,
                log_config=None, **tls)
