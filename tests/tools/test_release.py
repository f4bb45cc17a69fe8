"""`invoke release` logic against a real S3 endpoint (moto server on loopback)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from fota_formats.config import FotaConfig
from fota_formats.spec import IMAGE
from fota_s3.store import S3Store
from fota_testkit.keys import RELEASE_HASH, RELEASE_KEY
from fota_testkit.server import bucket_objects, make_image, write_build
from stm32_fota.build import BuildResult
from stm32_fota.release import ReleaseError, release

SLOT_B = IMAGE.constants["SLOT_B"]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.progress: dict[str, int] = {}

    def upload_started(self, key: str, size: int) -> None:
        self.events.append(("start", key))

    def upload_progress(self, key: str, done: int, size: int) -> None:
        self.progress[key] = done

    def upload_finished(self, key: str, size: int, seconds: float) -> None:
        self.events.append(("done", key))


def test_release_uploads_layout_manifest_and_versioned_copy(cfg: FotaConfig, store: S3Store, tmp_path: Path):
    build = write_build(tmp_path / "build", "1.2.0")
    rec = Recorder()
    result = release(store, build, reporter=rec, signing_key=RELEASE_KEY, revision="abc123")
    objs = bucket_objects(store)
    pre = "boards/disco/"
    names = ("slot-a.bin", "slot-b.bin", "manifest.json", "manifest.json.sig", "version.txt")
    assert set(objs) == {pre + k for k in names} | {pre + f"releases/1.2.0/{k}" for k in names}
    # the detached signature: raw 64 bytes over the manifest's exact bytes, by the release key
    RELEASE_KEY.public_key().verify(objs[pre + "manifest.json.sig"], objs[pre + "manifest.json"])
    assert objs[pre + "releases/1.2.0/manifest.json.sig"] == objs[pre + "manifest.json.sig"]
    assert objs[pre + "slot-a.bin"] == (build / "slot-a.bin").read_bytes()
    assert objs[pre + "releases/1.2.0/slot-b.bin"] == (build / "slot-b.bin").read_bytes()
    assert objs[pre + "version.txt"] == b"1.2.0\n"
    manifest = json.loads(objs[pre + "manifest.json"])
    assert manifest["version"] == "1.2.0" and manifest["downgrade"] is False
    assert manifest["git_revision"] == "abc123" and manifest["build_time"].endswith("Z")
    assert manifest["format"] == 2 and manifest["signing_key"] == RELEASE_HASH
    for name, slot in (("slot-a.bin", "A"), ("slot-b.bin", "B")):
        data = (build / name).read_bytes()
        assert manifest["files"][name] == {
            **manifest["files"][name],
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "slot": slot,
            "version": "1.2.0",
            "security_counter": 1,  # the images' SEC_CNT TLV
        }
    assert objs[pre + "releases/1.2.0/manifest.json"] == objs[pre + "manifest.json"]
    # version.txt (the top-level one) is the very last upload; every upload reported its bytes
    assert rec.events[-1] == ("done", "version.txt")
    done = [k for e, k in rec.events if e == "done"]
    assert done.index("version.txt") == len(result.uploaded) - 1
    # in each folder the images first, then the signature and the manifest, then (top level) version.txt
    for folder in ("releases/1.2.0/", ""):
        order = [done.index(folder + n) for n in ("slot-a.bin", "slot-b.bin", "manifest.json.sig",
                                                  "manifest.json")]
        assert order == sorted(order) and max(order) < done.index("version.txt")
    assert done.index("releases/1.2.0/manifest.json") < done.index("slot-a.bin")
    assert rec.progress["slot-a.bin"] == len(objs[pre + "slot-a.bin"])
    assert "Released 1.2.0" in result.summary() and "first release" in result.summary()


def test_re_release_of_same_or_lower_version_is_refused_and_uploads_nothing(store: S3Store, tmp_path: Path):
    release(store, write_build(tmp_path / "b1", "1.2.0"), signing_key=RELEASE_KEY, revision="r1")
    before = bucket_objects(store)
    for version in ("1.2.0", "1.1.9"):
        with pytest.raises(ReleaseError, match=rf"version {version} is not higher than 1.2.0"):
            release(store, write_build(tmp_path / f"b-{version}", version, seed=1),
                    signing_key=RELEASE_KEY, revision="r2")
        assert bucket_objects(store) == before


def test_force_overwrites_and_higher_version_is_accepted(store: S3Store, tmp_path: Path):
    release(store, write_build(tmp_path / "b1", "1.9.0"), signing_key=RELEASE_KEY, revision="r1")
    release(store, write_build(tmp_path / "b2", "1.10.0"),
            signing_key=RELEASE_KEY, revision="r2")  # semantic, not text order
    assert store.get_text("version.txt") == "1.10.0\n"
    forced = write_build(tmp_path / "b3", "1.10.0", seed=5)
    release(store, forced, force=True, signing_key=RELEASE_KEY, revision="r3")
    assert store.get_bytes("slot-b.bin") == (forced / "slot-b.bin").read_bytes()
    assert store.get_bytes("releases/1.9.0/slot-a.bin") is not None  # older releases stay available


def test_downgrade_release_is_marked_and_must_be_lower(store: S3Store, tmp_path: Path):
    release(store, write_build(tmp_path / "b1", "2.0.0"), signing_key=RELEASE_KEY, revision="r1")
    with pytest.raises(ReleaseError, match=r"--downgrade given, but 2\.1\.0 is not lower"):
        release(store, write_build(tmp_path / "b2", "2.1.0"), downgrade=True,
                signing_key=RELEASE_KEY, revision="r2")
    release(store, write_build(tmp_path / "b3", "1.5.0"), downgrade=True,
            signing_key=RELEASE_KEY, revision="r3")
    assert json.loads(store.get_bytes("manifest.json") or b"")["downgrade"] is True
    assert store.get_text("version.txt") == "1.5.0\n"


def test_corrupted_image_is_refused_before_any_upload(store: S3Store, tmp_path: Path):
    build = write_build(tmp_path / "b", "1.0.0")
    data = bytearray((build / "slot-a.bin").read_bytes())
    data[0x300] ^= 0xFF  # a code byte: the SHA256 TLV no longer matches
    (build / "slot-a.bin").write_bytes(bytes(data))
    with pytest.raises(ReleaseError, match=r"image check failed: slot-a.bin: SHA-256"):
        release(store, build, signing_key=RELEASE_KEY, revision="r")
    assert bucket_objects(store) == {}


def test_image_linked_for_the_wrong_slot_is_refused(store: S3Store, tmp_path: Path):
    build = write_build(tmp_path / "b", "1.0.0")
    (build / "slot-a.bin").write_bytes(make_image(SLOT_B, "1.0.0"))
    with pytest.raises(ReleaseError, match=r"the image is for slot B \(0x08060000\), expected slot A"):
        release(store, build, signing_key=RELEASE_KEY, revision="r")
    assert bucket_objects(store) == {}


def test_slot_image_version_must_match_release_version(store: S3Store, tmp_path: Path):
    build = write_build(tmp_path / "b", "1.1.0", version_b="1.0.9")
    with pytest.raises(ReleaseError, match=r"slot-b.bin is version 1.0.9, but the release .* is 1.1.0"):
        release(store, build, signing_key=RELEASE_KEY, revision="r")
    assert bucket_objects(store) == {}


def test_missing_build_and_malformed_version_file(store: S3Store, tmp_path: Path):
    with pytest.raises(ReleaseError, match=r"version.txt is missing .*invoke build"):
        release(store, tmp_path / "nothing", signing_key=RELEASE_KEY, revision="r")
    build = write_build(tmp_path / "b", "1.0.0")
    (build / "version.txt").write_text("1.0\n")
    with pytest.raises(ReleaseError, match=r"malformed version in .*version.txt: '1.0\\n'"):
        release(store, build, signing_key=RELEASE_KEY, revision="r")


def test_malformed_version_in_bucket_needs_force(store: S3Store, tmp_path: Path):
    store.client.put_object(Bucket=store.bucket, Key="boards/disco/version.txt", Body=b"banana")
    with pytest.raises(
        ReleaseError, match=r"malformed version in s3://.*/boards/disco/version.txt: 'banana'"
    ):
        release(store, write_build(tmp_path / "b", "1.0.0"), signing_key=RELEASE_KEY, revision="r")
    release(store, write_build(tmp_path / "b", "1.0.0"), force=True, signing_key=RELEASE_KEY, revision="r")
    assert store.get_text("version.txt") == "1.0.0\n"


def test_missing_bucket_is_a_clear_error(cfg: FotaConfig, tmp_path: Path):
    missing = S3Store.connect(cfg.with_s3(bucket="no-such-bucket-here").s3)
    with pytest.raises(ReleaseError, match=r"s3://no-such-bucket-here/.*the bucket does not exist"):
        release(missing, write_build(tmp_path / "b", "1.0.0"), signing_key=RELEASE_KEY, revision="r")


def test_s3_down_is_a_clear_error(cfg: FotaConfig, tmp_path: Path, aws_env: None):
    from fota_lab.locals3 import free_port

    down = S3Store.connect(cfg.with_s3(endpoint_url=f"http://127.0.0.1:{free_port()}").s3)
    with pytest.raises(
        ReleaseError,
        match=r"Failed to release: Failed to download s3://.*version.txt: Could not "
        r"connect",
    ):
        release(down, write_build(tmp_path / "b", "1.0.0"), signing_key=RELEASE_KEY, revision="r")


def test_release_of_a_real_build_and_elf_checks(store: S3Store, fw_build: BuildResult, tmp_path: Path):
    """The firmware built by `invoke build` (shared session build) goes out as is; a build whose
    slot ELF fails the ELF checks is refused even though its .bin files are fine."""
    import shutil

    build = tmp_path / "build"
    shutil.copytree(fw_build.build_dir, build)
    swapped = tmp_path / "swapped"
    shutil.copytree(fw_build.build_dir, swapped)
    (swapped / "slot-a.elf").write_bytes((build / "slot-b.elf").read_bytes())
    with pytest.raises(ReleaseError, match=r"ELF check failed:\n.*slot-a.elf"):
        release(store, swapped, signing_key=RELEASE_KEY, revision="r")
    assert bucket_objects(store) == {}
    result = release(store, build, signing_key=RELEASE_KEY, revision="r")
    version = (build / "version.txt").read_text().strip()
    assert str(result.version) == version
    assert store.get_bytes("slot-a.bin") == (build / "slot-a.bin").read_bytes()


def test_release_without_a_key_is_refused_and_uploads_nothing(store: S3Store, tmp_path: Path):
    with pytest.raises(ReleaseError, match=r"no signing key; the server and the devices refuse an unsigned "
                       r"release \(set FOTA_SIGNING_KEY"):
        release(store, write_build(tmp_path / "b", "1.0.0"), signing_key=None, revision="r")
    assert bucket_objects(store) == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist (make one with `invoke keygen`"),
        (b"not a key\n", "is not a PEM file"),
        (b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
         "is protected by a password"),
        ("public", "is not a readable private key (it holds a public key: give the private key)"),
        ("ec", "is a ECPrivateKey, not an Ed25519 key"),
    ],
)
def test_bad_signing_keys_are_named(tmp_path: Path, content: object, message: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from stm32_fota.signing import SigningKeyError, load_signing_key

    path = tmp_path / "key.pem"
    if content == "public":
        content = RELEASE_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    elif content == "ec":
        content = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    if isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(SigningKeyError, match=re.escape(f"the signing key {path} {message}")):
        load_signing_key(path)


def test_a_key_written_as_imgtool_writes_it_signs_the_release(store: S3Store, tmp_path: Path):
    """An unencrypted PKCS#8 PEM (imgtool keygen -t ed25519) loads and signs what it releases."""
    from fota_lab.releasekey import throwaway_key
    from stm32_fota.signing import load_signing_key

    files = throwaway_key(tmp_path / "keys")
    assert (files.private.stat().st_mode & 0o777) == 0o600
    key = load_signing_key(files.private)
    release(store, write_build(tmp_path / "b", "1.0.0", key=key), signing_key=key, revision="r")
    manifest = json.loads(store.get_bytes("manifest.json") or b"")
    assert manifest["signing_key"] == files.hash
