"""scripts/fetch_monocypher.py: Monocypher's two files come only out of an archive with the pinned
SHA-256, and an up-to-date folder is left alone (no download). Offline: local archives stand in for
the download, with the pin swapped where the test needs an archive of its own to be accepted."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch_monocypher.py"


@pytest.fixture
def fetcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_monocypher_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_sdist(path: Path, top: str, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def good_members() -> dict[str, bytes]:
    return {"monocypher.c": b"// Monocypher version 4.0.3\nint x;\n", "monocypher.h": b"/* h */\n",
            "LICENSE.txt": b"BSD-2-Clause OR CC0-1.0\n", "setup.py": b"ignored\n"}


def pin(fetcher: ModuleType, monkeypatch: pytest.MonkeyPatch, sdist: Path) -> None:
    monkeypatch.setattr(fetcher, "SHA256", hashlib.sha256(sdist.read_bytes()).hexdigest())


def test_an_archive_with_another_hash_is_refused(fetcher: ModuleType, tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / fetcher.SDIST, fetcher.SDIST.removesuffix(".tar.gz"), good_members())
    dest = tmp_path / "out"
    with pytest.raises(fetcher.FetchError, match=rf"SHA-256 is [0-9a-f]{{64}}, expected {fetcher.SHA256}"):
        fetcher.fetch(dest, sdist)
    assert not dest.exists()
    assert fetcher.main(["--dest", str(dest), "--sdist", str(sdist)]) == 1


def test_the_pinned_archive_gives_the_two_files_and_the_licence(fetcher: ModuleType, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    sdist = make_sdist(tmp_path / fetcher.SDIST, fetcher.SDIST.removesuffix(".tar.gz"), good_members())
    pin(fetcher, monkeypatch, sdist)
    dest = tmp_path / "out"
    assert fetcher.fetch(dest, sdist) is True
    assert sorted(p.name for p in dest.iterdir()) == [".fetched", "LICENSE", "monocypher.c", "monocypher.h"]
    assert (dest / "monocypher.c").read_bytes() == good_members()["monocypher.c"]
    # Up to date now: nothing is read, not even the archive.
    sdist.unlink()
    assert fetcher.fetch(dest, sdist) is False
    # A file gone: fetched again (here: the archive is missing, which is named).
    (dest / "monocypher.h").unlink()
    with pytest.raises(fetcher.FetchError, match="no such file"):
        fetcher.fetch(dest, sdist)


@pytest.mark.parametrize(("members", "problem"), [
    ({"monocypher.c": b"// Monocypher version 4.0.3\n", "LICENSE.txt": b"x"},
     r"no pymonocypher-4\.0\.3\.4/monocypher\.h"),
    ({**good_members(), "monocypher.c": b"// Monocypher version 3.1.3\n"}, "expected Monocypher 4.0.3"),
])
def test_an_archive_without_the_expected_files_is_refused(fetcher: ModuleType, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          members: dict[str, bytes], problem: str) -> None:
    sdist = make_sdist(tmp_path / fetcher.SDIST, fetcher.SDIST.removesuffix(".tar.gz"), members)
    pin(fetcher, monkeypatch, sdist)
    with pytest.raises(fetcher.FetchError, match=problem):
        fetcher.fetch(tmp_path / "out", sdist)
    assert not (tmp_path / "out").exists()


def test_not_an_archive_is_named(fetcher: ModuleType, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    sdist = tmp_path / fetcher.SDIST
    sdist.write_bytes(b"not gzip")
    pin(fetcher, monkeypatch, sdist)
    with pytest.raises(fetcher.FetchError, match=r"not a readable \.tar\.gz"):
        fetcher.fetch(tmp_path / "out", sdist)


def test_a_stamp_of_another_pin_fetches_again(fetcher: ModuleType, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    for name in ("monocypher.c", "monocypher.h", "LICENSE"):
        (dest / name).write_text("old\n")
    (dest / ".fetched").write_text("pymonocypher-4.0.3.3.tar.gz sha256:00\n")
    with pytest.raises(fetcher.FetchError, match="no such file"):
        fetcher.fetch(dest, tmp_path / "missing.tar.gz")


def test_monocypher_is_not_copied_into_the_repository() -> None:
    """Only build/ (git-ignored) holds Monocypher's sources; the firmware includes them from there."""
    root = SCRIPT.parents[1]
    copies = []
    for folder, dirs, files in os.walk(root):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d not in ("build", "node_modules", ".venv", ".git")]
        copies += [Path(folder) / f for f in files if f in ("monocypher.c", "monocypher.h")]
    assert copies == []
    ignored = (root / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "/build/" in ignored
