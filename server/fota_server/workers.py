"""The application of each uvicorn worker process, for ``fota-server --workers N``.

uvicorn starts every worker as a fresh process and builds the app there from this factory, which
reads the configuration the way the command line did (``FOTA_CONFIG``, ``./fota.toml`` and the
``FOTA_*`` environment, which ``fota_server.serve`` sets before starting the workers). The workers
share nothing but the registry database, the firmware folder and S3: see docs/server.md,
"Deployment".
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI
from fota_formats.config import load_config

from fota_server.accesslog import install_access_log_filter
from fota_server.serve import LOG_FORMAT, LOG_LEVEL_ENV, SYNC_ENV, build_app


def create_worker_app() -> FastAPI:
    logging.basicConfig(level=os.environ.get(LOG_LEVEL_ENV, "info").upper(), format=LOG_FORMAT)
    install_access_log_filter()  # each worker process logs its own requests: no query strings there either
    return build_app(load_config(), sync=os.environ.get(SYNC_ENV, "1") != "0")
