"""The release bucket: a thin layer over a boto3 S3 client that names every failure.

    >>> from fota_formats.config import S3Config
    >>> store = S3Store.connect(S3Config(bucket="fw", prefix="board1"))   # doctest: +SKIP
    >>> store.get_text("version.txt")                                     # doctest: +SKIP
    '1.2.0'

Keys are always relative to the configured prefix. The same code talks to AWS, to any
S3-compatible store (``endpoint_url``) and to the embedded local endpoint; for the embedded one
only, the client gets fixed dummy credentials (moto accepts any), passed to that client alone and
never put in the environment. Every other client finds its credentials through boto3's chain.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from fota_formats.config import S3Config
from fota_formats.errors import FotaError
from fota_formats.files import write_atomic

ProgressFn = Callable[[int], None]  # bytes transferred since the last call

# Short timeouts and few retries: a release or a sync against an unreachable store must fail in
# seconds with a clear message, not hang (the server keeps serving meanwhile).
_BOTO_CONFIG = Config(connect_timeout=3, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"},
                      signature_version="s3v4")
_TRANSFER = TransferConfig(use_threads=False)
_EMBEDDED_CREDENTIALS = {"aws_access_key_id": "fota-local", "aws_secret_access_key": "fota-local"}


_session_lock = threading.Lock()
_session: boto3.session.Session | None = None


def _new_client(**kwargs: Any) -> Any:
    """An S3 client from one boto3 session per process (a new session re-reads the service models,
    a noticeable fraction of a second); creating clients from one session is not thread-safe, hence
    the lock."""
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client("s3", **kwargs)


class S3Error(FotaError):
    """An S3 operation failed; the message names the operation, the object and the reason."""


def _reason(e: Exception) -> str:
    if isinstance(e, NoCredentialsError):
        return ("no AWS credentials found (boto3 looks in the environment, ~/.aws/credentials, "
                "SSO and instance roles)")
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = err.get("Code", "?")
        msg = err.get("Message") or ""
        if code in ("NoSuchBucket",):
            return f"the bucket does not exist ({code})"
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return f"access denied ({code}): check the credentials boto3 uses"
        return f"{code} {msg}".strip()
    return str(e) or type(e).__name__


class S3Store:
    """Objects under one bucket and prefix."""

    def __init__(self, client: Any, config: S3Config, mirror_dir: Path | None = None) -> None:
        self.client = client
        self.config = config
        self.bucket = config.bucket_name
        # With the embedded endpoint every upload is also written here, so that the bucket can be
        # restored when the in-memory moto server starts again.
        self.mirror_dir = mirror_dir

    @classmethod
    def connect(cls, config: S3Config, endpoint_url: str | None = None,
                mirror_dir: Path | None = None) -> S3Store:
        """Client for ``config``; ``endpoint_url`` overrides it (the embedded endpoint's address)."""
        url = endpoint_url or config.endpoint_url
        kwargs: dict[str, Any] = {"region_name": config.region, "config": _BOTO_CONFIG}
        if url:
            kwargs["endpoint_url"] = url
        if config.embedded:
            kwargs.update(_EMBEDDED_CREDENTIALS)
        try:
            client = _new_client(**kwargs)
        except (BotoCoreError, ValueError) as e:
            raise S3Error(f"Failed to create the S3 client for {config.describe()}: {_reason(e)}") from None
        return cls(client, config, mirror_dir)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.config.key(key)}"

    def ensure_bucket(self) -> None:
        """Create the bucket if missing (only used for the embedded endpoint)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise S3Error(f"Failed to check the bucket {self.bucket}: {_reason(e)}") from None
        except BotoCoreError as e:
            raise S3Error(f"Failed to check the bucket {self.bucket}: {_reason(e)}") from None
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as e:
            raise S3Error(f"Failed to create the bucket {self.bucket}: {_reason(e)}") from None

    def get_bytes(self, key: str, max_size: int | None = None) -> bytes | None:
        """The object's bytes, or None when it does not exist. Refuses objects above ``max_size``."""
        full = self.config.key(key)
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=full)
            length = obj.get("ContentLength", 0)
            if max_size is not None and length > max_size:
                raise S3Error(f"Failed to download {self.url(key)}: {length} bytes, more than the "
                              f"{max_size} expected")
            return obj["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise S3Error(f"Failed to download {self.url(key)}: {_reason(e)}") from None
        except BotoCoreError as e:
            raise S3Error(f"Failed to download {self.url(key)}: {_reason(e)}") from None

    def get_text(self, key: str, max_size: int = 4096) -> str | None:
        data = self.get_bytes(key, max_size)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise S3Error(f"Failed to read {self.url(key)}: not UTF-8 text") from None

    def presigned_get(self, key: str, expiry_s: int) -> str:
        """A URL that lets anyone holding it GET the object for ``expiry_s`` seconds (SigV4; signed
        locally, no request to S3). Range requests work on it like on any GET."""
        try:
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self.config.key(key)}, ExpiresIn=expiry_s)
        except (BotoCoreError, ClientError) as e:
            raise S3Error(f"Failed to sign a download URL for {self.url(key)}: {_reason(e)}") from None
        return url

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream",
                  progress: ProgressFn | None = None) -> None:
        full = self.config.key(key)
        try:
            self.client.upload_fileobj(io.BytesIO(data), self.bucket, full,
                                       ExtraArgs={"ContentType": content_type},
                                       Callback=progress, Config=_TRANSFER)
        except (BotoCoreError, ClientError) as e:
            raise S3Error(f"Failed to upload {self.url(key)}: {_reason(e)}") from None
        except Exception as e:  # s3transfer wraps some failures in its own exception types
            raise S3Error(f"Failed to upload {self.url(key)}: {e}") from None
        if self.mirror_dir is not None:
            write_atomic(self.mirror_dir / self.bucket / full, data)
