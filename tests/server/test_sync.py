"""The server's sync from S3 into the local firmware folder, against a real moto server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fota_formats.config import FotaConfig
from fota_lab.locals3 import free_port
from fota_s3.store import S3Store
from fota_server.firmware import FirmwareFolder, SyncError, sync_once
from fota_testkit.keys import RELEASE_KEY, TRUSTED, put_signed_manifest
from fota_testkit.server import folder_snapshot, install_release, write_build
from stm32_fota.release import release


def snapshot(folder: FirmwareFolder) -> dict[str, bytes | str]:
    return folder_snapshot(folder.root)


@pytest.fixture
def folder(tmp_path: Path) -> FirmwareFolder:
    return FirmwareFolder(tmp_path / "firmware")


def test_sync_installs_newer_release_atomically(store: S3Store, folder: FirmwareFolder, tmp_path: Path):
    build = write_build(tmp_path / "b", "1.0.0")
    release(store, build, signing_key=RELEASE_KEY, revision="r")
    r = sync_once(store, folder, TRUSTED)
    assert (r.status, r.local_version, r.remote_version) == ("updated", None, "1.0.0")
    assert folder.current.is_symlink() and not os.path.isabs(os.readlink(folder.current))
    assert (folder.current / "slot-b.bin").read_bytes() == (build / "slot-b.bin").read_bytes()
    assert folder.local_version() is not None and str(folder.local_version()) == "1.0.0"
    rel = folder.load()
    assert (
        rel is not None
        and rel.sha256["slot-a.bin"]
        == json.loads((folder.current / "manifest.json").read_text())["files"]["slot-a.bin"]["sha256"]
    )
    release(store, write_build(tmp_path / "b2", "1.10.0"), signing_key=RELEASE_KEY, revision="r")
    r = sync_once(store, folder, TRUSTED)
    assert (r.status, r.local_version, r.remote_version) == ("updated", "1.0.0", "1.10.0")
    assert [p.name.rsplit("-", 1)[0] for p in folder.releases()] == ["1.0.0", "1.10.0"]  # previous kept
    release(store, write_build(tmp_path / "b3", "1.11.0"), signing_key=RELEASE_KEY, revision="r")
    assert sync_once(store, folder, TRUSTED).status == "updated"
    assert sorted(p.name.rsplit("-", 1)[0] for p in folder.releases()) == ["1.10.0", "1.11.0"]  # pruned
    assert not list(folder.root.glob(".incoming-*")) and not list(folder.root.glob(".current-*"))


def test_no_sync_when_equal_or_older(store: S3Store, folder: FirmwareFolder, tmp_path: Path):
    install_release(folder, tmp_path, "1.9.0")
    before = snapshot(folder)
    release(store, write_build(tmp_path / "b", "1.9.0"), signing_key=RELEASE_KEY, revision="r")
    r = sync_once(store, folder, TRUSTED)
    assert r.status == "up-to-date" and snapshot(folder) == before
    store.client.delete_object(Bucket=store.bucket, Key=store.config.key("version.txt"))
    release(store, write_build(tmp_path / "b2", "1.8.12"),
            signing_key=RELEASE_KEY, revision="r")  # 1.8.12 < 1.9.0
    r = sync_once(store, folder, TRUSTED)
    assert r.status == "older" and "1.8.12 is older than the local 1.9.0" in r.message
    assert snapshot(folder) == before


def test_marked_downgrade_is_synced(store: S3Store, folder: FirmwareFolder, tmp_path: Path):
    release(store, write_build(tmp_path / "b", "2.0.0"), signing_key=RELEASE_KEY, revision="r")
    assert sync_once(store, folder, TRUSTED).status == "updated"
    release(store, write_build(tmp_path / "b2", "1.0.0"), downgrade=True,
            signing_key=RELEASE_KEY, revision="r")
    r = sync_once(store, folder, TRUSTED)
    assert r.status == "updated" and "downgraded the local release from 2.0.0 to 1.0.0" in r.message
    rel = folder.load()
    assert rel is not None and rel.downgrade and str(rel.version) == "1.0.0"


def test_empty_bucket(store: S3Store, folder: FirmwareFolder):
    r = sync_once(store, folder, TRUSTED)
    assert r.status == "empty" and not folder.root.exists()


@pytest.mark.parametrize("victim", ["slot-a.bin", "slot-b.bin", "version.txt"])
def test_corrupted_object_leaves_local_folder_untouched(
    store: S3Store, folder: FirmwareFolder, tmp_path: Path, victim: str
):
    install_release(folder, tmp_path, "1.0.0")
    before = snapshot(folder)
    release(store, write_build(tmp_path / "b", "1.1.0"), signing_key=RELEASE_KEY, revision="r")
    key = store.config.key(f"releases/1.1.0/{victim}")
    data = bytearray(store.client.get_object(Bucket=store.bucket, Key=key)["Body"].read())
    data[-1] ^= 0x01  # same size, different hash
    store.client.put_object(Bucket=store.bucket, Key=key, Body=bytes(data))
    r = sync_once(store, folder, TRUSTED)
    assert r.status == "error"
    assert f"{victim}: SHA-256" in r.message and "differs from the manifest" in r.message
    assert snapshot(folder) == before


def test_truncated_object_and_bad_manifest(store: S3Store, folder: FirmwareFolder, tmp_path: Path):
    release(store, write_build(tmp_path / "b", "1.1.0"), signing_key=RELEASE_KEY, revision="r")
    key = store.config.key("releases/1.1.0/slot-b.bin")
    data = store.client.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    store.client.put_object(Bucket=store.bucket, Key=key, Body=data[:100])
    r = sync_once(store, folder, TRUSTED)
    assert r.status == "error" and "100 bytes, the manifest says" in r.message
    put_signed_manifest(store, "releases/1.1.0", b"{")
    r = sync_once(store, folder, TRUSTED)
    assert r.status == "error" and "manifest.json: not JSON" in r.message
    assert not folder.current.exists()


def test_malformed_versions_are_errors_naming_file_and_text(
    store: S3Store, folder: FirmwareFolder, tmp_path: Path
):
    store.client.put_object(Bucket=store.bucket, Key=store.config.key("version.txt"), Body=b"1.2.x\n")
    r = sync_once(store, folder, TRUSTED)
    assert r.status == "error"
    assert "malformed version in s3://" in r.message and "version.txt: '1.2.x\\n'" in r.message
    install_release(folder, tmp_path, "1.0.0")
    local = folder.current / "version.txt"
    local.unlink()
    local.write_text("v1\n")
    with pytest.raises(SyncError, match=r"malformed version in .*current/version.txt: 'v1\\n'"):
        folder.local_version()


def test_s3_down_keeps_folder_and_reports(cfg: FotaConfig, folder: FirmwareFolder, tmp_path: Path):
    install_release(folder, tmp_path, "1.0.0")
    before = snapshot(folder)
    down = S3Store.connect(cfg.with_s3(endpoint_url=f"http://127.0.0.1:{free_port()}").s3)
    r = sync_once(down, folder, TRUSTED)
    assert r.status == "error" and "Could not connect" in r.message and r.local_version == "1.0.0"
    assert snapshot(folder) == before


def test_bucket_from_before_versioned_copies_still_syncs(
    store: S3Store, folder: FirmwareFolder, tmp_path: Path
):
    """An existing bucket with only the top-level names (no releases/<v>/) keeps working."""
    release(store, write_build(tmp_path / "b", "3.0.0"), signing_key=RELEASE_KEY, revision="r")
    for name in ("slot-a.bin", "slot-b.bin", "manifest.json", "version.txt"):
        store.client.delete_object(Bucket=store.bucket, Key=store.config.key(f"releases/3.0.0/{name}"))
    assert sync_once(store, folder, TRUSTED).status == "updated"
    assert str(folder.local_version()) == "3.0.0"
