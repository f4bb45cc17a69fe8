"""Run the update server with uvicorn from a :class:`~fota_formats.config.FotaConfig`.

    >>> from fota_formats.config import load_config
    >>> serve(load_config())          # doctest: +SKIP   (blocks until Ctrl-C)

Listens on 127.0.0.1 unless told otherwise. Listening beyond loopback (the LAN, where the ESP32
is) needs a device token: the server refuses to start without one.
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

from fota_server.app import ServerSettings, create_app

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
SYNC_ENV = "FOTA_SERVER_SYNC"  # read by fota_server.workers
LOG_LEVEL_ENV = "FOTA_SERVER_LOG_LEVEL"


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
    return ServerSettings(firmware_dir=cfg.firmware_dir, db_path=cfg.database, token=cfg.server.token,
                          sync_interval_s=cfg.server.sync_interval_s if sync else None,
                          store_factory=factory if sync else None,
                          source=cfg.s3.describe() if sync else "sync disabled")


def build_app(cfg: FotaConfig, sync: bool = True) -> FastAPI:
    check_listen(cfg)
    return create_app(settings_from_config(cfg, sync))


def serve(cfg: FotaConfig, sync: bool = True, log_level: str = "info", workers: int = 1) -> None:
    """Run in the foreground until interrupted; ``workers`` > 1 starts that many processes
    (``fota_server.workers``), each building the app from the same configuration."""
    if workers > 1:
        check_listen(cfg)
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
    log = logging.getLogger("fota_server")
    auth = "device token required" if cfg.server.token else "no token (loopback only)"
    log.info("serving http://%s:%d (%s); %d worker%s; firmware %s; registry %s; releases from %s",
             cfg.server.host, cfg.server.port, auth, workers, "s" if workers > 1 else "", cfg.firmware_dir,
             cfg.describe_database(), cfg.s3.describe() if sync else "nowhere (sync disabled)")
    uvicorn.run(app, host=cfg.server.host, port=cfg.server.port, log_level=log_level, access_log=True,
                log_config=None, workers=workers if workers > 1 else None, factory=workers > 1)
