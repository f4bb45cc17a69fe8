"""Where a check-in answer sends the bridge for its image: the server's own route (the default), or
a short-lived presigned HTTPS URL of the release's copy in S3 (``[server] direct_downloads``).

    >>> local_url("1.1.0", "slot-b.bin")
    '/api/v1/firmware/1.1.0/slot-b.bin'
    >>> urls = PresignedUrls(store, expiry_s=600)       # doctest: +SKIP
    >>> urls("1.1.0", "slot-b.bin")                      # doctest: +SKIP
    'https://my-fw.s3.amazonaws.com/board1/releases/1.1.0/slot-b.bin?X-Amz-Algorithm=...'

With direct downloads the image bytes never pass through the server: the bridge fetches
``releases/<version>/<slot file>`` (written by ``invoke release``, never changed afterwards) from S3
with the same Range requests it sends the server, and the STM32 still checks the SHA-256 of the
check-in answer, so an object changed in the bucket after the sync is refused at VERIFY. Signing is
a local computation (no request to S3 per check-in); it needs credentials, which are checked once
when the server starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fota_formats.config import ConfigError, FotaConfig
from fota_formats.release import RELEASES_DIR
from fota_s3.store import S3Error, S3Store

log = logging.getLogger("fota_server")
API = "/api/v1"
DownloadUrl = Callable[[str, str], str]   # (version, file name) -> URL for the bridge


def local_url(version: str, name: str) -> str:
    """The server's own download route (relative: the bridge uses its server URL)."""
    return f"{API}/firmware/{version}/{name}"


class PresignedUrls:
    """Presigned GET URLs of ``releases/<version>/<name>`` valid for ``expiry_s`` seconds. When
    signing fails at a check-in (credentials expired meanwhile), the answer falls back to the
    server's own route, which serves the same bytes, and the failure is logged."""

    def __init__(self, store: S3Store, expiry_s: int) -> None:
        self.store = store
        self.expiry_s = expiry_s

    def sign(self, version: str, name: str) -> str:
        return self.store.presigned_get(f"{RELEASES_DIR}/{version}/{name}", self.expiry_s)

    def __call__(self, version: str, name: str) -> str:
        try:
            return self.sign(version, name)
        except S3Error as e:
            log.warning("%s; answering the server's own download URL instead", e)
            return local_url(version, name)


def download_urls(cfg: FotaConfig, store_factory: Callable[[], S3Store]) -> DownloadUrl:
    """The URL maker for ``cfg``: local_url, or PresignedUrls after checking that signing works
    and gives HTTPS URLs (an ESP32 never fetches an image in clear text from the internet)."""
    if not cfg.server.direct_downloads:
        return local_url
    what = "Failed to start the server with direct_downloads"
    try:
        urls = PresignedUrls(store_factory(), cfg.server.download_url_expiry_s)
        probe = urls.sign("0.0.0", "slot-a.bin")
    except S3Error as e:
        raise ConfigError(f"{what}: {e}") from None
    if not probe.startswith("https://"):
        where = probe.split("?", 1)[0].rsplit("/", 5)[0]
        raise ConfigError(f"{what}: the S3 endpoint is not HTTPS ({where}); the bridges download from S3 "
                          "directly, so it must be one they reach over HTTPS (AWS S3, or an HTTPS "
                          "endpoint_url), never the embedded local endpoint")
    return urls


__all__ = ["API", "DownloadUrl", "PresignedUrls", "download_urls", "local_url"]
