"""A throwaway release key for the tests, made once per test process, and the server's key ring
that trusts it; ``resign`` re-signs a manifest edited in a bucket, as a holder of the key could.

    from fota_testkit.keys import RELEASE_KEY, TRUSTED
    release(store, build, signing_key=RELEASE_KEY, revision="r")
    sync_once(store, folder, TRUSTED)
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fota_lab.releasekey import write_key
from fota_s3.store import S3Store
from fota_server.trust import KeyRing, TrustedKey
from stm32_fota.signing import load_signing_key, public_key_hash, raw_public

# One key for the whole run: tests/conftest.py imports this module in the controller process before
# the xdist workers start, so that every worker signs with the same key (the shared firmware build is
# signed once). The key file lives outside the checkout.
KEY_ENV = "FOTA_TEST_SIGNING_KEY"


def _session_key() -> Ed25519PrivateKey:
    """The key of ``KEY_ENV``; else a new one, written to a temporary folder (removed when this
    process ends) and named in ``KEY_ENV`` for the processes this one starts (the xdist workers)."""
    path = os.environ.get(KEY_ENV)
    if path:
        return load_signing_key(Path(path))
    key = Ed25519PrivateKey.generate()
    folder = Path(tempfile.mkdtemp(prefix="fota-test-key-"))
    atexit.register(shutil.rmtree, folder, True)
    os.environ[KEY_ENV] = str(write_key(key, folder, "signing-key").private)
    return key


RELEASE_KEY = _session_key()
RELEASE_HASH = public_key_hash(RELEASE_KEY)
TRUSTED_HEX = raw_public(RELEASE_KEY).hex()  # the public half as [server] trusted_keys takes it
TRUSTED = KeyRing([TrustedKey(RELEASE_HASH, RELEASE_KEY.public_key(), "the tests' release key")])


SIGNING_KEY_FILE = Path(os.environ[KEY_ENV])   # RELEASE_KEY as a PEM file: what imgtool and builds take


def put_signed_manifest(store: S3Store, folder: str, manifest: dict[str, Any] | bytes,
                        key: Ed25519PrivateKey = RELEASE_KEY) -> bytes:
    """Write ``manifest`` (a dict is JSON-encoded) and its signature by ``key`` into ``folder`` of the
    bucket (``releases/1.2.0`` or ``""``); returns the manifest's bytes."""
    raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    prefix = f"{folder}/" if folder else ""
    store.client.put_object(Bucket=store.bucket, Key=store.config.key(f"{prefix}manifest.json"), Body=raw)
    store.client.put_object(Bucket=store.bucket, Key=store.config.key(f"{prefix}manifest.json.sig"),
                            Body=key.sign(raw))
    return raw
