"""The sync believes a release only when its manifest's detached Ed25519 signature verifies with a
trusted key and every file matches the manifest: each refusal names what is wrong, installs nothing,
and leaves the served release as it was; the status route shows the refusal."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from fota_formats.config import ConfigError, FotaConfig, load_config
from fota_s3.store import S3Store
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder, sync_once
from fota_server.trust import KeyRing, TrustError, load_key
from fota_testkit.keys import RELEASE_HASH, RELEASE_KEY, TRUSTED, TRUSTED_HEX, put_signed_manifest
from fota_testkit.server import folder_snapshot, write_build
from stm32_fota.release import release
from stm32_fota.signing import public_key_hash, raw_public

OTHER_KEY = Ed25519PrivateKey.generate()
V2 = "releases/1.2.0"


def snapshot(folder: FirmwareFolder) -> dict[str, bytes | str]:
    return folder_snapshot(folder.root)


def get(store: S3Store, key: str) -> bytes:
    data = store.get_bytes(key)
    assert data is not None, key
    return data


def put(store: S3Store, key: str, data: bytes) -> None:
    store.client.put_object(Bucket=store.bucket, Key=store.config.key(key), Body=data)


@pytest.fixture
def served(store: S3Store, tmp_path: Path) -> FirmwareFolder:
    """1.1.0 synced and served; 1.2.0 released (signed) in the bucket, not yet synced."""
    folder = FirmwareFolder(tmp_path / "fw")
    release(store, write_build(tmp_path / "b1", "1.1.0"), signing_key=RELEASE_KEY, revision="r")
    assert sync_once(store, folder, TRUSTED).status == "updated"
    release(store, write_build(tmp_path / "b2", "1.2.0"), signing_key=RELEASE_KEY, revision="r")
    return folder


def unsigned(store: S3Store) -> None:
    store.client.delete_object(Bucket=store.bucket, Key=store.config.key(f"{V2}/manifest.json.sig"))


def short_signature(store: S3Store) -> None:
    put(store, f"{V2}/manifest.json.sig", get(store, f"{V2}/manifest.json.sig")[:63])


def base64_signature(store: S3Store) -> None:
    import base64

    put(store, f"{V2}/manifest.json.sig", base64.b64encode(get(store, f"{V2}/manifest.json.sig")))


def flipped_signature_bit(store: S3Store) -> None:
    sig = bytearray(get(store, f"{V2}/manifest.json.sig"))
    sig[40] ^= 0x01
    put(store, f"{V2}/manifest.json.sig", bytes(sig))


def manifest_edited(store: S3Store) -> None:
    """The downgrade flag turned on, the signature left as it was."""
    raw = get(store, f"{V2}/manifest.json").replace(b'"downgrade": false', b'"downgrade": true')
    put(store, f"{V2}/manifest.json", raw)


def manifest_byte_added(store: S3Store) -> None:
    put(store, f"{V2}/manifest.json", get(store, f"{V2}/manifest.json") + b" ")


def signed_by_another_key(store: S3Store) -> None:
    manifest = json.loads(get(store, f"{V2}/manifest.json"))
    put_signed_manifest(store, V2, {**manifest, "signing_key": public_key_hash(OTHER_KEY)}, key=OTHER_KEY)


def signed_by_another_key_naming_ours(store: S3Store) -> None:
    put_signed_manifest(store, V2, get(store, f"{V2}/manifest.json"), key=OTHER_KEY)


def naming_another_key(store: S3Store) -> None:
    """Signed by the trusted key, but the manifest names another one."""
    manifest = json.loads(get(store, f"{V2}/manifest.json"))
    put_signed_manifest(store, V2, {**manifest, "signing_key": public_key_hash(OTHER_KEY)})


def image_replaced(store: S3Store) -> None:
    """One byte of an image changed, the manifest (and its signature) left as they were."""
    data = bytearray(get(store, f"{V2}/slot-b.bin"))
    data[0x300] ^= 0xFF
    put(store, f"{V2}/slot-b.bin", bytes(data))


def unsigned_old_format(store: S3Store) -> None:
    """An older release tool's manifest (format 1, no signature), as it sat in the bucket."""
    manifest = json.loads(get(store, f"{V2}/manifest.json"))
    del manifest["signing_key"]
    put(store, f"{V2}/manifest.json", json.dumps({**manifest, "format": 1}).encode())
    unsigned(store)


REFUSALS: list[tuple[Callable[[S3Store], None], str]] = [
    (unsigned, "unsigned: manifest.json.sig is missing"),
    (unsigned_old_format, "unsigned: manifest.json.sig is missing"),
    (short_signature, "manifest.json.sig is 63 bytes, not a 64-byte Ed25519 signature"),
    (base64_signature, "manifest.json.sig is 88 bytes, not a 64-byte Ed25519 signature"),
    (flipped_signature_bit, "the signature in manifest.json.sig does not verify with the trusted key "
                            f"{RELEASE_HASH[:16]}: the manifest or its signature was changed after signing"),
    (manifest_edited, "does not verify with the trusted key"),
    (manifest_byte_added, "does not verify with the trusted key"),
    (signed_by_another_key, f"signed by key {public_key_hash(OTHER_KEY)[:16]}..., which this server does "
                            f"not trust (trusted: {RELEASE_HASH[:16]})"),
    (signed_by_another_key_naming_ours, "does not verify with the trusted key"),
    (naming_another_key, f"manifest.json names signing key {public_key_hash(OTHER_KEY)[:16]}..., but key "
                         f"{RELEASE_HASH[:16]}... signed it"),
    (image_replaced, "slot-b.bin: SHA-256"),
]


@pytest.mark.parametrize(("spoil", "message"), REFUSALS, ids=[f.__name__ for f, _ in REFUSALS])
def test_a_bad_release_is_refused_and_the_served_one_stays(
    store: S3Store, served: FirmwareFolder, tmp_path: Path, spoil: Callable[[S3Store], None], message: str
):
    before = snapshot(served)
    spoil(store)
    r = sync_once(store, served, TRUSTED)
    assert r.status == "error" and message in r.message, r.message
    assert "releases/1.2.0" in r.message
    assert snapshot(served) == before  # nothing written, `current` still on 1.1.0
    assert str(served.local_version()) == "1.1.0"
    # a properly signed release goes through afterwards
    release(store, write_build(tmp_path / "b3", "1.3.0"), signing_key=RELEASE_KEY, revision="r")
    r = sync_once(store, served, TRUSTED)
    assert r.status == "updated" and f"signed by key {RELEASE_HASH[:16]}" in r.message
    kept = (served.current / "manifest.json.sig").read_bytes()  # kept beside the manifest, for audit
    assert kept == get(store, "releases/1.3.0/manifest.json.sig")


def test_a_server_without_trusted_keys_accepts_no_release(store: S3Store, served: FirmwareFolder):
    before = snapshot(served)
    r = sync_once(store, served, KeyRing())
    assert r.status == "error" and "no trusted release key is configured on this server" in r.message
    assert snapshot(served) == before


def test_a_release_by_the_next_key_of_the_ring_is_accepted(store: S3Store, served: FirmwareFolder,
                                                          tmp_path: Path):
    """Rotation: the ring holds the current key and the next one; a release by either syncs."""
    release(store, write_build(tmp_path / "b4", "1.4.0", key=OTHER_KEY), signing_key=OTHER_KEY, revision="r")
    assert sync_once(store, served, TRUSTED).status == "error"
    ring = KeyRing([*TRUSTED.keys.values(), load_key(raw_public(OTHER_KEY).hex())])
    r = sync_once(store, served, ring)
    assert r.status == "updated" and f"signed by key {public_key_hash(OTHER_KEY)[:16]}" in r.message


def test_the_status_route_shows_the_refusal(cfg: FotaConfig, store: S3Store, served: FirmwareFolder,
                                            tmp_path: Path):
    flipped_signature_bit(store)
    settings = ServerSettings(firmware_dir=served.root, db_path=tmp_path / "db", sync_on_start=False,
                              trusted_keys=TRUSTED, store_factory=lambda: S3Store.connect(cfg.s3))
    with TestClient(create_app(settings)) as c:
        r = c.post("/api/v1/sync")
        assert r.status_code == 502 and "does not verify with the trusted key" in r.json()["detail"]
        status = c.get("/api/v1/status").json()
    assert status["version"] == "1.1.0"
    assert status["last_sync"]["status"] == "error"
    assert status["last_sync"]["remote_version"] == "1.2.0"
    assert "Refused the release in s3://" in status["last_sync"]["message"]


# -- the configured keys ----------------------------------------------------------------------------

def pem(key: object, private: bool = False) -> bytes:
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                                 serialization.NoEncryption())
    return key.public_key().public_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def test_trusted_keys_from_pem_files_and_hex(tmp_path: Path):
    (tmp_path / "next.pub.pem").write_bytes(pem(OTHER_KEY))
    (tmp_path / "fota.toml").write_text('[server]\ntrusted_keys = ["next.pub.pem"]\n')
    cfg = load_config(tmp_path / "fota.toml", env={})
    assert cfg.server.trusted_keys == (str(tmp_path / "next.pub.pem"),)  # relative to the file
    env = load_config(tmp_path / "fota.toml", env={"FOTA_SERVER_TRUSTED_KEYS": f"{TRUSTED_HEX.upper()}, "
                                                  f"{tmp_path / 'next.pub.pem'}"})
    ring = KeyRing.load(env.server.trusted_keys)
    assert set(ring.keys) == {RELEASE_HASH, public_key_hash(OTHER_KEY)}


def test_a_non_string_trusted_key_in_the_file_is_refused(tmp_path: Path):
    (tmp_path / "fota.toml").write_text("[server]\ntrusted_keys = [1]\n")
    with pytest.raises(ConfigError, match=r"\[server\] trusted_keys must be a list of strings"):
        load_config(tmp_path / "fota.toml", env={})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the trusted key {path}"),
        ("private", "the trusted key {path} holds a private key; the server needs only the public half"),
        (b"garbage", "the trusted key {path} is not a PEM public key"),
        ("ec", "the trusted key {path} is a ECPublicKey, not an Ed25519 public key"),
    ],
)
def test_unusable_trusted_keys_are_named(tmp_path: Path, content: object, message: str):
    path = tmp_path / "key.pem"
    if content == "private":
        content = pem(OTHER_KEY, private=True)
    elif content == "ec":
        content = pem(ec.generate_private_key(ec.SECP256R1()))
    if isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(TrustError, match=re.escape(message.format(path=path))):
        load_key(str(path))


def test_the_served_config_refuses_an_unusable_key_at_start(tmp_path: Path):
    from fota_server.serve import build_app

    (tmp_path / "fota.toml").write_text('[server]\ntrusted_keys = ["missing.pem"]\n')
    with pytest.raises(TrustError, match=r"cannot read the trusted key .*missing\.pem"):
        build_app(load_config(tmp_path / "fota.toml", env={}), sync=False)


def test_an_image_signed_by_an_untrusted_key_is_refused_by_the_server(store: S3Store, served: FirmwareFolder,
                                                                      tmp_path: Path):
    """The manifest's signature checks out, but an image inside is signed by another key (a
    bucket writer who holds an old or stolen build key): the server refuses the release, names the
    image and its key, and keeps serving the release it has."""
    from fota_lab.images import make_image
    from stm32_fota.release import ReleaseError, check_build, make_manifest, signed_manifest

    build = write_build(tmp_path / "b5", "1.5.0")
    (build / "slot-b.bin").write_bytes(make_image(1, "1.5.0", key=OTHER_KEY))
    with pytest.raises(ReleaseError, match="signed by key"):   # invoke release refuses it first
        release(store, build, signing_key=RELEASE_KEY, revision="r")
    files = check_build(build)
    raw, _ = signed_manifest(make_manifest(files, "r", False, RELEASE_HASH), RELEASE_KEY)
    for name, data in files.images.items():
        put(store, f"releases/1.5.0/{name}", data)
    put(store, "releases/1.5.0/version.txt", files.version_text)
    put_signed_manifest(store, "releases/1.5.0", raw)
    put(store, "version.txt", b"1.5.0\n")
    before = served.current_target()
    r = sync_once(store, served, TRUSTED)
    assert r.status == "error" and "slot-b.bin" in r.message and "not trusted" in r.message, r.message
    assert served.current_target() == before


SMALL_ORDER_KEYS = [
    "01" + "00" * 31,                                                      # identity
    "ec" + "ff" * 30 + "7f",                                               # order 2
    "00" * 32, "00" * 31 + "80",                                           # order 4
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "ee" + "ff" * 30 + "7f",                                               # identity, y = p + 1
]


@pytest.mark.parametrize("hex_key", SMALL_ORDER_KEYS)
def test_a_small_order_trusted_key_is_refused(hex_key: str):
    # With such a key, R = identity and S = 0 verify every message (OpenSSL takes it for the identity key).
    with pytest.raises(TrustError, match="small order"):
        load_key(hex_key)


def test_a_real_key_is_not_taken_for_small_order():
    assert load_key(TRUSTED_HEX).hash == RELEASE_HASH
