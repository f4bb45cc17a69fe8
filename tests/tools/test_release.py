"""`invoke release` logic against a real S3 endpoint (moto server on loopback)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fota_formats.config import FotaConfig
from fota_formats.spec import IMAGE
from fota_s3.store import S3Store
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
    result = release(store, build, reporter=rec, revision="abc123")
    objs = bucket_objects(store)
    pre = "boards/disco/"
    assert set(objs) == {pre + k for k in ("slot-a.bin", "slot-b.bin", "manifest.json", "version.txt")} | {
        pre + f"releases/1.2.0/{k}" for k in ("slot-a.bin", "slot-b.bin", "manifest.json", "version.txt")
    }
    assert objs[pre + "slot-a.bin"] == (build / "slot-a.bin").read_bytes()
    assert objs[pre + "releases/1.2.0/slot-b.bin"] == (build / "slot-b.bin").read_bytes()
    assert objs[pre + "version.txt"] == b"1.2.0\n"
    manifest = json.loads(objs[pre + "manifest.json"])
    assert manifest["version"] == "1.2.0" and manifest["downgrade"] is False
    assert manifest["git_revision"] == "abc123" and manifest["build_time"].endswith("Z")
    for name, slot in (("slot-a.bin", "A"), ("slot-b.bin", "B")):
        data = (build / name).read_bytes()
        assert manifest["files"][name] == {
            **manifest["files"][name],
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "slot": slot,
        }
    assert objs[pre + "releases/1.2.0/manifest.json"] == objs[pre + "manifest.json"]
    # version.txt (the top-level one) is the very last upload; every upload reported its bytes
    assert rec.events[-1] == ("done", "version.txt")
    assert [k for e, k in rec.events if e == "done"].index("version.txt") == len(result.uploaded) - 1
    assert rec.progress["slot-a.bin"] == len(objs[pre + "slot-a.bin"])
    assert "Released 1.2.0" in result.summary() and "first release" in result.summary()


def test_re_release_of_same_or_lower_version_is_refused_and_uploads_nothing(store: S3Store, tmp_path: Path):
    release(store, write_build(tmp_path / "b1", "1.2.0"), revision="r1")
    before = bucket_objects(store)
    for version in ("1.2.0", "1.1.9"):
        with pytest.raises(ReleaseError, match=rf"version {version} is not higher than 1.2.0"):
            release(store, write_build(tmp_path / f"b-{version}", version, seed=1), revision="r2")
        assert bucket_objects(store) == before


def test_force_overwrites_and_higher_version_is_accepted(store: S3Store, tmp_path: Path):
    release(store, write_build(tmp_path / "b1", "1.9.0"), revision="r1")
    release(store, write_build(tmp_path / "b2", "1.10.0"), revision="r2")  # semantic, not text order
    assert store.get_text("version.txt") == "1.10.0\n"
    forced = write_build(tmp_path / "b3", "1.10.0", seed=5)
    release(store, forced, force=True, revision="r3")
    assert store.get_bytes("slot-b.bin") == (forced / "slot-b.bin").read_bytes()
    assert store.get_bytes("releases/1.9.0/slot-a.bin") is not None  # older releases stay available


def test_downgrade_release_is_marked_and_must_be_lower(store: S3Store, tmp_path: Path):
    release(store, write_build(tmp_path / "b1", "2.0.0"), revision="r1")
    with pytest.raises(ReleaseError, match=r"--downgrade given, but 2\.1\.0 is not lower"):
        release(store, write_build(tmp_path / "b2", "2.1.0"), downgrade=True, revision="r2")
    release(store, write_build(tmp_path / "b3", "1.5.0"), downgrade=True, revision="r3")
    assert json.loads(store.get_bytes("manifest.json") or b"")["downgrade"] is True
    assert store.get_text("version.txt") == "1.5.0\n"


def test_corrupted_image_is_refused_before_any_upload(store: S3Store, tmp_path: Path):
    build = write_build(tmp_path / "b", "1.0.0")
    data = bytearray((build / "slot-a.bin").read_bytes())
    data[0x300] ^= 0xFF  # a code byte: the trailer's SHA-256 no longer matches
    (build / "slot-a.bin").write_bytes(bytes(data))
    with pytest.raises(ReleaseError, match=r"image check failed: slot-a.bin: SHA-256"):
        release(store, build, revision="r")
    assert bucket_objects(store) == {}


def test_image_linked_for_the_wrong_slot_is_refused(store: S3Store, tmp_path: Path):
    build = write_build(tmp_path / "b", "1.0.0")
    (build / "slot-a.bin").write_bytes(make_image(SLOT_B, "1.0.0"))
    with pytest.raises(ReleaseError, match="linked for the other slot"):
        release(store, build, revision="r")
    assert bucket_objects(store) == {}


def test_slot_image_version_must_match_release_version(store: S3Store, tmp_path: Path):
    build = write_build(tmp_path / "b", "1.1.0", version_b="1.0.9")
    with pytest.raises(ReleaseError, match=r"slot-b.bin is version 1.0.9, but the release .* is 1.1.0"):
        release(store, build, revision="r")
    assert bucket_objects(store) == {}


def test_missing_build_and_malformed_version_file(store: S3Store, tmp_path: Path):
    with pytest.raises(ReleaseError, match=r"version.txt is missing .*invoke build"):
        release(store, tmp_path / "nothing", revision="r")
    build = write_build(tmp_path / "b", "1.0.0")
    (build / "version.txt").write_text("1.0\n")
    with pytest.raises(ReleaseError, match=r"malformed version in .*version.txt: '1.0\\n'"):
        release(store, build, revision="r")


def test_malformed_version_in_bucket_needs_force(store: S3Store, tmp_path: Path):
    store.client.put_object(Bucket=store.bucket, Key="boards/disco/version.txt", Body=b"banana")
    with pytest.raises(
        ReleaseError, match=r"malformed version in s3://.*/boards/disco/version.txt: 'banana'"
    ):
        release(store, write_build(tmp_path / "b", "1.0.0"), revision="r")
    release(store, write_build(tmp_path / "b", "1.0.0"), force=True, revision="r")
    assert store.get_text("version.txt") == "1.0.0\n"


def test_missing_bucket_is_a_clear_error(cfg: FotaConfig, tmp_path: Path):
    missing = S3Store.connect(cfg.with_s3(bucket="no-such-bucket-here").s3)
    with pytest.raises(ReleaseError, match=r"s3://no-such-bucket-here/.*the bucket does not exist"):
        release(missing, write_build(tmp_path / "b", "1.0.0"), revision="r")


def test_s3_down_is_a_clear_error(cfg: FotaConfig, tmp_path: Path, aws_env: None):
    from fota_lab.locals3 import free_port

    down = S3Store.connect(cfg.with_s3(endpoint_url=f"http://127.0.0.1:{free_port()}").s3)
    with pytest.raises(
        ReleaseError,
        match=r"Failed to release: Failed to download s3://.*version.txt: Could not "
        r"connect",
    ):
        release(down, write_build(tmp_path / "b", "1.0.0"), revision="r")


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
        release(store, swapped, revision="r")
    assert bucket_objects(store) == {}
    result = release(store, build, revision="r")
    version = (build / "version.txt").read_text().strip()
    assert str(result.version) == version
    assert store.get_bytes("slot-a.bin") == (build / "slot-a.bin").read_bytes()
