"""Every file of a release is checked for content, not only against the manifest's hash, before it is
installed; a bad release is refused whole and the served one stays; a broken local release never
leaves the server serving nothing while a valid one is on disk."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fota_formats.semver import Version
from fota_s3.store import S3Store
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder, sync_once
from fota_server.release_check import ReleaseError, check_files, parse_manifest
from fota_testkit.keys import RELEASE_HASH, RELEASE_KEY, TRUSTED, put_signed_manifest
from fota_testkit.server import install_release, make_image, write_build
from stm32_fota.release import check_build, make_manifest, release


def tamper(store: S3Store, version: str, name: str, data: bytes) -> None:
    """Replace a file of ``releases/<version>/`` and make the manifest's size and hash match it, signed
    again, as a careless hand edit of the bucket by a holder of the release key would."""
    key = store.config.key(f"releases/{version}/manifest.json")
    manifest = json.loads(store.client.get_object(Bucket=store.bucket, Key=key)["Body"].read())
    manifest["files"][name] = {
        **manifest["files"][name],
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    put_signed_manifest(store, f"releases/{version}", manifest)
    store.client.put_object(
        Bucket=store.bucket, Key=store.config.key(f"releases/{version}/{name}"), Body=data
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"v1.2.0\n", "malformed version in s3://"),
        (b"1.3.0\n", "version.txt: it says 1.3.0, the release is 1.2.0"),
        (b"\xff\xfe1.2.0", "malformed version"),
    ],
)
def test_bad_version_txt_with_a_matching_hash_is_refused_and_later_syncs_work(
    store: S3Store, tmp_path: Path, text: bytes, message: str
):
    folder = FirmwareFolder(tmp_path / "fw")
    release(store, write_build(tmp_path / "b1", "1.1.0"), signing_key=RELEASE_KEY, revision="r")
    assert sync_once(store, folder, TRUSTED).status == "updated"
    release(store, write_build(tmp_path / "b2", "1.2.0"), signing_key=RELEASE_KEY, revision="r")
    tamper(store, "1.2.0", "version.txt", text)
    r = sync_once(store, folder, TRUSTED)
    assert r.status == "error" and message in r.message, r.message
    assert str(folder.local_version()) == "1.1.0" and str(folder.recover()) == "1.1.0"  # the served one stays
    assert [p.name.split("-")[0] for p in folder.releases()] == ["1.1.0"]  # nothing of 1.2.0 on disk
    release(store, write_build(tmp_path / "b3", "1.3.0"), signing_key=RELEASE_KEY, revision="r")
    r = sync_once(store, folder, TRUSTED)  # the next good release goes through
    assert r.status == "updated" and str(folder.local_version()) == "1.3.0"


def test_image_for_the_wrong_slot_with_matching_manifest_is_refused(store: S3Store, tmp_path: Path):
    folder = FirmwareFolder(tmp_path / "fw")
    release(store, write_build(tmp_path / "b", "1.2.0"), signing_key=RELEASE_KEY, revision="r")
    tamper(store, "1.2.0", "slot-a.bin", make_image(1, "1.2.0"))  # a Slot-B image under slot-a.bin
    r = sync_once(store, folder, TRUSTED)
    assert r.status == "error" and "slot-a.bin" in r.message and not folder.current.exists()


def manifest_for(tmp_path: Path, version: str = "1.2.0") -> tuple[dict[str, Any], dict[str, bytes]]:
    files = check_build(write_build(tmp_path / f"m-{version}", version))
    return make_manifest(files, "r", False, RELEASE_HASH), {**files.images, "version.txt": files.version_text}


def broken(manifest: dict[str, Any], path: tuple[str, ...], value: Any) -> bytes:
    m = copy.deepcopy(manifest)
    target = m
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(m).encode()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("format",), 1, "format 1 is not 2, the one this server reads (an unsigned manifest of an older"),
        (("format",), KeyError, "format None is not 2"),
        (("signing_key",), "AB" * 32, "'signing_key' 'ABAB"),
        (("signing_key",), KeyError, "'signing_key' None is not a key hash"),
        (("files", "slot-a.bin", "version"), "1.2.1", "slot-a.bin version '1.2.1' is not the release's"),
        (("files", "slot-b.bin", "security_counter"), -1, "slot-b.bin security_counter -1 is not an integer"),
        (("files", "slot-b.bin", "security_counter"), 2**32, "slot-b.bin security_counter 4294967296"),
        (("files", "slot-a.bin", "security_counter"), KeyError, "slot-a.bin security_counter None"),
        (("version",), "1.2.1", "it describes version 1.2.1"),
        (("downgrade",), "yes", "'downgrade' must be true or false"),
        (("files", "slot-a.bin", "slot"), "B", "slot-a.bin is marked for slot 'B'"),
        (("files", "slot-b.bin", "load_addr"), "0x08020000", "slot-b.bin load address '0x08020000'"),
        (("files", "slot-b.bin", "load_addr"), KeyError, "slot-b.bin load address None"),
        (("files", "slot-a.bin", "sha256"), "z" * 64, "no valid entry (size, sha256) for slot-a.bin"),
        (("files", "slot-a.bin", "size"), True, "no valid entry (size, sha256) for slot-a.bin"),
        (("files", "version.txt", "size"), 0, "version.txt size 0 is out of range"),
        (("files", "slot-a.bin", "build"), "7", "slot-a.bin build '7' is not an integer"),
    ],
)
def test_manifest_fields_are_checked(tmp_path: Path, path: tuple[str, ...], value: Any, message: str):
    manifest, _ = manifest_for(tmp_path)
    parse_manifest(json.dumps(manifest).encode(), "m.json", Version(1, 2, 0))  # the good one passes
    with pytest.raises(ReleaseError, match=re.escape("Failed to read m.json: " + message)):
        parse_manifest(broken(manifest, path, value), "m.json", Version(1, 2, 0))


def test_image_build_must_match_the_manifest(tmp_path: Path):
    manifest, files = manifest_for(tmp_path)
    manifest["files"]["slot-b.bin"]["build"] = 8  # the image says 7
    with pytest.raises(ReleaseError, match=r"slot-b\.bin: image build 7, the manifest says 8"):
        check_files(files, manifest, Version(1, 2, 0), "here")
    with pytest.raises(ReleaseError, match=r"here: slot-a\.bin is missing"):
        check_files({"version.txt": files["version.txt"]}, manifest, Version(1, 2, 0), "here")


def break_version_txt(folder: FirmwareFolder, text: str) -> None:
    path = folder.current / "version.txt"
    path.unlink()
    path.write_text(text)


def test_broken_current_falls_back_to_the_newest_valid_release_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    folder = FirmwareFolder(tmp_path / "fw")
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        install_release(folder, tmp_path, version)  # keeps 1.1.0 and 1.2.0
    break_version_txt(folder, "v1.2.0\n")
    settings = ServerSettings(firmware_dir=folder.root, db_path=tmp_path / "db")
    with caplog.at_level(logging.WARNING, "fota_server"), TestClient(create_app(settings)) as c:
        assert c.get("/api/v1/status").json()["version"] == "1.1.0"
    assert "malformed version" in caplog.text and "now serving 1.1.0, the newest valid release" in caplog.text
    assert os.readlink(folder.current).startswith("releases/1.1.0-")


def test_broken_current_with_nothing_else_is_replaced_by_the_next_sync(store: S3Store, tmp_path: Path):
    folder = FirmwareFolder(tmp_path / "fw")
    install_release(folder, tmp_path, "1.2.0")
    (folder.current / "slot-b.bin").write_bytes(b"\0" * 100)  # not even the right size
    release(store, write_build(tmp_path / "b", "1.2.0"),
            signing_key=RELEASE_KEY, revision="r")  # the same version
    assert folder.recover() is None
    r = sync_once(store, folder, TRUSTED)
    assert r.status == "updated" and folder.load() is not None and str(folder.local_version()) == "1.2.0"


def test_read_only_folder_is_served_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A firmware folder the server cannot write (sync off, a read-only mount) still serves."""
    folder = FirmwareFolder(tmp_path / "fw")
    install_release(folder, tmp_path, "1.2.0")

    def read_only(root: Path) -> Any:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("fota_server.durable.folder_lock", read_only)
    assert str(folder.recover()) == "1.2.0"
    with TestClient(create_app(ServerSettings(firmware_dir=folder.root, db_path=tmp_path / "db"))) as c:
        assert c.get("/api/v1/status").json()["version"] == "1.2.0"
