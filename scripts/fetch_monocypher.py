#!/usr/bin/env python3
"""Fetch Monocypher's C sources (the Ed25519 verifier's field and group arithmetic, stm32/lib/ed25519.c)
into build/third_party/monocypher/, from the pinned sdist of the pymonocypher package.

    python3 scripts/fetch_monocypher.py [--dest DIR] [--sdist FILE] [--force]

Monocypher is not copied into the repository: the source distribution pymonocypher==4.0.3.4 carries
Monocypher 4.0.3's monocypher.c and monocypher.h unchanged. The script downloads it with
`pip download` (the version pinned, pip checking the pinned SHA-256 with --require-hashes), checks
the SHA-256 once more itself, and extracts only monocypher.c, monocypher.h and the licence. With
--sdist it uses a local copy of the archive instead (still checked). Nothing happens when DIR
already holds the files of this pin (the stamp file DIR/.fetched records it; its date is renewed, for
make); --force fetches again.
Exit status 0 on success, 1 with a message naming what is wrong.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "pymonocypher"
VERSION = "4.0.3.4"
SDIST = f"{PACKAGE}-{VERSION}.tar.gz"
SHA256 = "5e56e3d3eb770a53e0b9f6274146663c11a11f3d0de5cd48e3be0428d1b07a4a"
MONOCYPHER_VERSION = "4.0.3"
# Archive member (below the sdist's top folder) -> file name in the destination.
MEMBERS = {"monocypher.c": "monocypher.c", "monocypher.h": "monocypher.h", "LICENSE.txt": "LICENSE"}
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEST = ROOT / "build" / "third_party" / "monocypher"
STAMP = ".fetched"


class FetchError(Exception):
    """A download, checksum or archive problem, with a message for the user."""


def stamp_text() -> str:
    return f"{SDIST} sha256:{SHA256}\n"


def is_current(dest: Path) -> bool:
    stamp = dest / STAMP
    return (stamp.is_file() and stamp.read_text(encoding="utf-8") == stamp_text()
            and all((dest / name).is_file() for name in MEMBERS.values()))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download(workdir: Path) -> Path:
    """`pip download` the pinned sdist into workdir (pip checks the hash); return its path."""
    req = workdir / "requirements.txt"
    req.write_text(f"{PACKAGE}=={VERSION} --hash=sha256:{SHA256}\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
           "--require-hashes", "-r", str(req), "-d", str(workdir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FetchError(f"pip download {PACKAGE}=={VERSION} failed (is pip installed for {sys.executable}, "
                         f"and the package index reachable?):\n{proc.stderr.strip()}")
    path = workdir / SDIST
    if not path.is_file():
        raise FetchError(f"pip download did not produce {SDIST} in {workdir}")
    return path


def extract(sdist: Path, dest: Path) -> None:
    """Check sdist's SHA-256, then write the Monocypher files into dest."""
    got = sha256_of(sdist)
    if got != SHA256:
        raise FetchError(f"{sdist}: SHA-256 is {got}, expected {SHA256} for {SDIST}; refusing to use it")
    top = SDIST.removesuffix(".tar.gz")
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            blobs = {}
            for member, name in MEMBERS.items():
                try:
                    info = tar.getmember(f"{top}/{member}")
                except KeyError:
                    raise FetchError(f"{sdist}: no {top}/{member} in the archive") from None
                f = tar.extractfile(info) if info.isfile() else None
                if f is None:
                    raise FetchError(f"{sdist}: {top}/{member} is not a regular file")
                blobs[name] = f.read()
    except tarfile.TarError as exc:
        raise FetchError(f"{sdist}: not a readable .tar.gz ({exc})") from exc
    first = blobs["monocypher.c"].split(b"\n", 1)[0]
    if first != f"// Monocypher version {MONOCYPHER_VERSION}".encode():
        raise FetchError(f"{sdist}: monocypher.c starts with {first!r}, "
                         f"expected Monocypher {MONOCYPHER_VERSION}")
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in blobs.items():
        tmp = dest / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        tmp.replace(dest / name)
    (dest / STAMP).write_text(stamp_text(), encoding="utf-8")


def fetch(dest: Path = DEFAULT_DEST, sdist: Path | None = None, force: bool = False) -> bool:
    """Make dest hold the pinned Monocypher files; return False when they were already there."""
    if not force and is_current(dest):
        (dest / STAMP).touch()  # newer than this script: make's rule for the stamp is satisfied
        return False
    if sdist is not None:
        if not sdist.is_file():
            raise FetchError(f"--sdist {sdist}: no such file")
        extract(sdist, dest)
        return True
    with tempfile.TemporaryDirectory(prefix="monocypher-") as tmp:
        extract(download(Path(tmp)), dest)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST,
                    help="destination folder (default %(default)s)")
    ap.add_argument("--sdist", type=Path, help=f"use this local {SDIST} instead of downloading it")
    ap.add_argument("--force", action="store_true", help="fetch even when dest is up to date")
    args = ap.parse_args(argv)
    try:
        done = fetch(args.dest, args.sdist, args.force)
    except FetchError as exc:
        print(f"fetch_monocypher: {exc}", file=sys.stderr)
        return 1
    print(f"fetch_monocypher: Monocypher {MONOCYPHER_VERSION} {'in' if done else 'already in'} {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
