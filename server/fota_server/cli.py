"""The server's command line: ``fota-server`` or ``python -m fota_server``.

    fota-server                       # config from ./fota.toml (or FOTA_CONFIG) and the environment
    fota-server --lan --port 8080     # listen on every interface (needs a device token and HTTPS)
    fota-server --no-sync             # serve the local firmware folder as it is

The configuration is the one ``invoke serve`` reads (``fota_formats.config``). With no bucket
configured, releases come from the embedded S3 endpoint, which must already run
(``invoke s3-start``); the server never starts it itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fota_formats.config import load_config
from fota_formats.errors import FotaError

from fota_server.serve import serve


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fota-server", description="Run the stm32-fota update server.")
    p.add_argument("--config", type=Path, help="config file (default: FOTA_CONFIG or ./fota.toml)")
    p.add_argument("--host", help="address to listen on (default from config: 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default from config: 8080)")
    p.add_argument("--lan", action="store_true", help="listen on all interfaces (needs a device token)")
    p.add_argument("--no-sync", action="store_true", help="do not sync from S3")
    p.add_argument("--insecure-http", action="store_true",
                   help="serve plain HTTP beyond loopback (the device token then crosses the network "
                        "in clear)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="log level (default info)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        changes: dict[str, object] = {}
        if args.lan:
            changes["host"] = "0.0.0.0"
        if args.host:
            changes["host"] = args.host
        if args.port:
            changes["port"] = args.port
        serve(cfg.with_server(**changes), sync=not args.no_sync, log_level=args.log_level,
              insecure_http=args.insecure_http)
    except FotaError as e:
        print(f"fota-server: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
