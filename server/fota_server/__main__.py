"""``python -m fota_server``: run the update server (see :mod:`fota_server.cli`)."""

from fota_server.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
