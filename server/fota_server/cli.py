"""The server's command line: ``fota-server`` or ``python -m fota_server``.

    fota-server                       # config from ./fota.toml (or FOTA_CONFIG) and the environment
    fota-server --lan --port 8080     # listen on every interface (needs a device token and HTTPS)
    fota-server --no-sync             # serve the local firmware folder as it is
    fota-server --workers 4           # four processes sharing the registry (PostgreSQL) and folder
    fota-server migrate               # bring the registry's schema up to date, then exit

The configuration is the one ``invoke serve`` reads (``fota_formats.config``). With no bucket
configured, releases come from the embedded S3 endpoint, which must already run
(``invoke s3-start``); the server never starts it itself.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from fota_formats.config import load_config
from fota_formats.errors import FotaError

from fota_server.db.migrate import migrate_registry
from fota_server.serve import serve


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fota-server", description="Run the stm32-fota update server.")
    p.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"],
                   help="serve (default), or migrate: upgrade the registry's schema and exit (the "
                        "server also does it when it starts)")
    p.add_argument("--config", type=Path, help="config file (default: FOTA_CONFIG or ./fota.toml)")
    p.add_argument("--host", help="address to listen on (default from config: 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default from config: 8080)")
    p.add_argument("--lan", action="store_true", help="listen on all interfaces (needs a device token)")
    p.add_argument("--no-sync", action="store_true", help="do not sync from S3")
    p.add_argument("--insecure-http", action="store_true",
                   help="serve plain HTTP beyond loopback (the device token then crosses the network "
                        "in clear)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (default 1; more need a PostgreSQL registry to be useful)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="log level (default info)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.workers < 1:
        print(f"fota-server: --workers must be 1 or more, not {args.workers}", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config)
        if args.command == "migrate":
            print(f"fota-server: {migrate_registry(cfg.database)}")
            return 0
        if args.config is not None:  # the worker processes load the same file
            os.environ["FOTA_CONFIG"] = str(args.config.resolve())
        changes: dict[str, object] = {}
        if args.lan:
            changes["host"] = "0.0.0.0"
        if args.host:
            changes["host"] = args.host
        if args.port:
            changes["port"] = args.port
        serve(cfg.with_server(**changes), sync=not args.no_sync, log_level=args.log_level,
              insecure_http=args.insecure_http, workers=args.workers)
    except FotaError as e:
        print(f"fota-server: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
