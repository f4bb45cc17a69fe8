"""Build the firmware: make, ELF checks, post-link, version file; skip what is up to date.

    >>> from stm32_fota.build import build
    >>> result = build(version="1.1.0", build_number=7)     # doctest: +SKIP
    >>> [t.target.name for t in result.targets]             # doctest: +SKIP
    ['bootloader', 'slot-a', 'slot-b']

Steps, in order:

1. the toolchain is there (:func:`stm32_fota.toolchain.check_toolchain`), with an install hint if not;
2. ``make -C stm32 BUILD=<dir> VERSION=X.Y.Z BUILD_NUMBER=N`` (stm32/Makefile) builds
   ``bootloader.elf``, ``slot-a.elf`` and ``slot-b.elf`` (and ``slot-{a,b}-<variant>.elf`` with
   ``APP_VARIANT``). make is incremental, and a changed version or build number rebuilds what embeds
   it (the Makefile keeps a stamp of the version flags per target);
3. every ELF is checked (:mod:`stm32_fota.elfcheck`) before anything is derived from it: a bad
   link never becomes an image file;
4. the post-link step (:mod:`stm32_fota.postlink`) writes .bin and .hex when the ELF is newer
   than them, or when the version differs from the last build in that directory (``build.stamp``);
5. every slot .bin is validated as the bootloader would, and must carry the requested version;
6. ``version.txt`` holds the version (``1.1.0``), rewritten only when it changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fota_formats.image import ImageInfo, check_build_number, parse_version, read_image

from .elfcheck import TARGETS, ElfReport, Target, check_elf
from .errors import BuildError, FotaError
from .mpy import compile_bridge
from .postlink import is_stale, postlink
from .project import current
from .toolchain import check_toolchain

STAMP = "build.stamp"
LOCK = "build.lock"
_VARIANT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
VERSION_FILE = "version.txt"
MAKE_TIMEOUT_S = 900  # a clean build takes seconds; this only stops a hung make


@dataclass
class TargetResult:
    target: Target
    elf: Path
    report: ElfReport
    image: ImageInfo | None      # slot images
    postlinked: bool             # .bin/.hex written by this build (False: up to date)

    @property
    def bin(self) -> Path:
        return self.elf.with_suffix(".bin")

    @property
    def hex(self) -> Path:
        return self.elf.with_suffix(".hex")


@dataclass
class BuildResult:
    build_dir: Path
    version: str
    build_number: int
    targets: list[TargetResult] = field(default_factory=list)
    version_changed: bool = False  # differs from the last build in build_dir
    seconds: float = 0.0
    bridge: list[Path] = field(default_factory=list)  # build_dir/esp32: compiled bridge modules

    @property
    def reports(self) -> list[ElfReport]:
        return [t.report for t in self.targets]

    def target(self, name: str) -> TargetResult:
        for t in self.targets:
            if t.target.name == name:
                return t
        raise KeyError(f"no build target {name!r}; built: {', '.join(t.target.name for t in self.targets)}")


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _run_make(make: Path, source_dir: Path, build_dir: Path, version: str, build_number: int,
              variant: str, jobs: int, verbose: bool) -> None:
    project = current()
    # Third-party sources (Monocypher) live in the checkout's build/third_party, fetched by its script
    # with this interpreter: the same for every build, also of a copy of stm32/.
    argv = [str(make), "-C", str(source_dir), f"-j{jobs}", f"BUILD={build_dir}", f"VERSION={version}",
            f"BUILD_NUMBER={build_number}", f"THIRD_PARTY={project.build_dir / 'third_party'}",
            f"SCRIPTS={project.root / 'scripts'}", f"PYTHON={sys.executable}"]
    if variant:
        argv.append(f"APP_VARIANT={variant}")
    what = f"build the firmware{f' (APP_VARIANT={variant})' if variant else ''}"
    try:
        proc = subprocess.run(argv, capture_output=not verbose, text=True, timeout=MAKE_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        raise BuildError(f"Failed to {what}: make did not finish within {MAKE_TIMEOUT_S} s") from None
    except OSError as e:
        raise BuildError(f"Failed to {what}: cannot run {make}: {e}") from None
    if proc.returncode != 0:
        out = "" if verbose else _tail((proc.stdout or "") + (proc.stderr or ""))
        raise BuildError(f"Failed to {what}: make exited with status {proc.returncode}"
                         + (f"\n{out}" if out else ""))


def _read_stamp(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_if_changed(path: Path, text: str) -> None:
    """Keep the file (and its mtime) when the content is already right."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def targets_for(variants: Iterable[str]) -> list[Target]:
    """Bootloader, both slots, then each variant of both slots."""
    out = list(TARGETS.values())
    for v in variants:
        out += [TARGETS["slot-a"].variant(v), TARGETS["slot-b"].variant(v)]
    return out


def _finish_target(target: Target, elf: Path, version: tuple[int, int, int], build_number: int,
                   force: bool) -> TargetResult:
    report = check_elf(elf, target, version=version if target.slot is not None else None,
                       build=build_number if target.slot is not None else None)
    done = False
    if force or is_stale(elf):
        postlink(elf, target)
        done = True
    image = None
    if target.slot is not None:
        image = read_image(elf.with_suffix(".bin"), target.slot)
        if image.version != version or image.build != build_number:
            raise BuildError(f"Failed to post-link {elf.name}: {elf.with_suffix('.bin').name} carries "
                             f"v{image.version_str}+{image.build}, expected "
                             f"v{'.'.join(map(str, version))}+{build_number}")
    return TargetResult(target, elf, report, image, done)


def build(version: str = "1.0.0", build_number: int = 0, build_dir: str | Path = "build",
          variants: Iterable[str] = (), *, jobs: int = 2, verbose: bool = False,
          source_dir: str | Path | None = None, log: Callable[[str], None] | None = None) -> BuildResult:
    """Build, check and post-link every target into ``build_dir``; see the module docstring.

    Raises :class:`~stm32_fota.errors.FotaError` (ToolchainError, BuildError, ElfCheckError,
    ImageError) with a message naming what failed.
    """
    started = time.monotonic()
    say = log or (lambda _msg: None)
    ver = parse_version(version)
    check_build_number(build_number)
    variants = tuple(variants)
    for v in variants:
        if not _VARIANT_RE.match(v):
            raise BuildError(f"Failed to build variant {v!r}: a variant name is letters, digits, - and _")
    toolchain = check_toolchain()
    out = Path(build_dir).resolve()
    src = Path(source_dir).resolve() if source_dir is not None else current().stm32_dir
    if not (src / "Makefile").is_file():
        raise BuildError(f"Failed to build the firmware: no Makefile in {src}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildError(f"Failed to create the build directory {out}: {e.strerror or e}") from None
    with _locked(out, say):
        result = _build_in(out, src, toolchain.make, ver, build_number, variants, jobs, verbose, say)
    result.seconds = time.monotonic() - started
    return result


@contextlib.contextmanager
def _locked(out: Path, say: Callable[[str], None]) -> Iterator[None]:
    """Hold the build directory's lock: two builds into one directory (two terminals, test workers)
    would otherwise interleave compiler and post-link writes."""
    with (out / LOCK).open("a") as lock:  # "a": creating or opening never changes the file
        deadline = time.monotonic() + MAKE_TIMEOUT_S
        waiting = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BuildError(f"Failed to lock the build directory {out}: another build has held "
                                     f"it for {MAKE_TIMEOUT_S} s") from None
                if not waiting:
                    say(f"build: waiting for another build in {out}")
                    waiting = True
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_in(out: Path, src: Path, make: Path, ver: tuple[int, int, int], build_number: int,
              variants: tuple[str, ...], jobs: int, verbose: bool, say: Callable[[str], None]) -> BuildResult:
    version_str = ".".join(map(str, ver))
    config = {"version": version_str, "build_number": build_number}
    stamp = out / STAMP
    last = _read_stamp(stamp)
    force = last != config
    if force:
        # Invalidate first: a build interrupted after this point must not look up to date.
        stamp.unlink(missing_ok=True)
        if last:
            say(f"build: version {version_str}+{build_number} replaces {last.get('version')}+"
                f"{last.get('build_number')} in {out}")
    result = BuildResult(out, version_str, build_number, version_changed=force)
    for variant in ("", *variants):
        _run_make(make, src, out, version_str, build_number, variant, jobs, verbose)
    for target in targets_for(variants):
        elf = out / f"{target.name}.elf"
        if not elf.is_file():
            raise BuildError(f"Failed to build {target.name}: make did not produce {elf.name} in {out}")
        try:
            result.targets.append(_finish_target(target, elf, ver, build_number, force))
        except FotaError:
            # Leave nothing that a later build or a release could take for a good image.
            for p in (elf.with_suffix(".bin"), elf.with_suffix(".hex")):
                p.unlink(missing_ok=True)
            raise
    # The ESP32 bridge: mpy-cross rejects what stock MicroPython would (stm32_fota.mpy).
    result.bridge = compile_bridge(out / "esp32").files
    _write_if_changed(out / VERSION_FILE, version_str + "\n")
    _write_if_changed(stamp, json.dumps(config, sort_keys=True) + "\n")
    return result
