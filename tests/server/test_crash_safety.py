"""Installing 1.3.0 over 1.2.0 (1.1.0 before it), killed with SIGKILL before each file-system step in
turn: after every one of them, the next start serves a valid release and still serves 1.2.0, and the
next sync ends on 1.3.0 with 1.2.0 kept and nothing left over.

One helper process forks a child per step; the child counts its file-system calls (os.mkdir, open,
write, fsync, rename, replace, symlink, unlink, rmdir) and kills itself before call N. The folders
it leaves are then started and synced here. (A power loss is covered by the same order of steps,
each made durable by an fsync of the file and of its folder before the next one relies on it.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fota_formats.semver import Version
from fota_server.app import ServerSettings, ServerState
from fota_server.firmware import ORPHAN_PREFIXES, FirmwareFolder, release_version
from fota_testkit.keys import RELEASE_HASH
from fota_testkit.server import install_release, write_build
from stm32_fota.release import check_build, make_manifest

KILLER = r"""
import json, os, shutil, signal, sys
from pathlib import Path
from fota_formats.semver import Version
from fota_server.firmware import FirmwareFolder

template, staging, work = (Path(p) for p in sys.argv[1:4])
files = {n: (staging / n).read_bytes() for n in ("slot-a.bin", "slot-b.bin", "version.txt")}
manifest = (staging / "manifest.json").read_bytes()
STEPS = ("mkdir", "open", "write", "fsync", "rename", "replace", "symlink", "unlink", "rmdir")
n = 1
while n < 500:
    root = work / f"{n:03d}"
    shutil.copytree(template, root, symlinks=True)
    pid = os.fork()
    if pid == 0:
        count = [0]
        def counted(real):
            def step(*args, **kwargs):
                count[0] += 1
                if count[0] == n:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(*args, **kwargs)
            return step
        for name in STEPS:
            setattr(os, name, counted(getattr(os, name)))
        FirmwareFolder(root).install(Version(1, 3, 0), files, manifest)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status):
        assert os.WEXITSTATUS(status) == 0, status
        print(json.dumps({"steps": n - 1}))
        break
    assert os.WTERMSIG(status) == signal.SIGKILL, status
    n += 1
"""


def served(folder: FirmwareFolder) -> tuple[str | None, bool, bool]:
    """Start the server's state on the folder (what the routes use): the version /status shows, and
    whether /firmware/1.2.0/... and /firmware/1.3.0/... would be served."""
    state = ServerState(ServerSettings(firmware_dir=folder.root, db_path=":memory:"))
    state.load_current()
    version = str(state.release.version) if state.release else None
    return version, state.release_for("1.2.0") is not None, state.release_for("1.3.0") is not None


def leftovers(folder: FirmwareFolder) -> list[str]:
    return [p.name for p in folder.root.iterdir() if p.name.startswith(ORPHAN_PREFIXES)]


@pytest.mark.slow   # several seconds alone: out of the fast loop
def test_install_killed_at_every_step(tmp_path: Path):
    template = FirmwareFolder(tmp_path / "template")
    for version in ("1.1.0", "1.2.0"):
        install_release(template, tmp_path, version)
    staging = tmp_path / "staging"
    built = check_build(write_build(tmp_path / "b130", "1.3.0"))
    files = {**built.images, "version.txt": built.version_text}
    manifest = json.dumps(make_manifest(built, "r", False, RELEASE_HASH)).encode()
    built_140 = check_build(write_build(tmp_path / "b140", "1.4.0"))
    files_140 = {**built_140.images, "version.txt": built_140.version_text}
    manifest_140 = json.dumps(make_manifest(built_140, "r", False, RELEASE_HASH)).encode()
    staging.mkdir()
    for name, data in {**files, "manifest.json": manifest}.items():
        (staging / name).write_bytes(data)
    work = tmp_path / "work"
    work.mkdir()
    t0 = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", KILLER, str(template.root), str(staging), str(work)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    steps = json.loads(run.stdout.strip().splitlines()[-1])["steps"]
    print(f"{time.monotonic() - t0:.1f} s to kill the install before each of its {steps} steps")
    assert steps >= 20  # writes, fsyncs, renames, the link switch, the prune all counted

    outcomes: dict[str, int] = {}
    for n in range(1, steps + 2):
        folder = FirmwareFolder(work / f"{n:03d}")
        # the next start: a valid release, and 1.2.0 still downloadable (current or previous)
        version, old, new = served(folder)
        assert version in ("1.2.0", "1.3.0"), (n, version)
        assert old, (n, version)
        assert new or version == "1.2.0", n
        outcomes[version] = outcomes.get(version, 0) + 1
        assert not leftovers(folder), (n, leftovers(folder))  # the start cleaned them
        # the next sync: 1.3.0 again when it was not switched to yet
        if folder.recover() != Version(1, 3, 0):
            folder.install(Version(1, 3, 0), files, manifest)
        version, old, new = served(folder)
        assert (version, old, new) == ("1.3.0", True, True), n
        versions = sorted(str(release_version(p)) for p in folder.releases())
        # one folder per version; 1.1.0 too when the kill came between the switch and the prune
        assert versions in (["1.2.0", "1.3.0"], ["1.1.0", "1.2.0", "1.3.0"]), (n, versions)
        assert not leftovers(folder), n
        if len(versions) == 3:  # the next install prunes as usual
            folder.install(Version(1, 4, 0), files_140, manifest_140)
            assert sorted(str(release_version(p)) for p in folder.releases()) == ["1.3.0", "1.4.0"], n
        shutil.rmtree(folder.root)
    assert outcomes.get("1.2.0", 0) > 0 and outcomes.get("1.3.0", 0) > 0, outcomes
