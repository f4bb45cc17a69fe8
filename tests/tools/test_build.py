"""`invoke build` / stm32_fota.build: produces every file, is incremental, rebuilds on a version
change, and stops with a clear message on each kind of failure."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fota_formats.image import read_image
from fota_formats.spec import IMAGE, LAYOUT
from fota_testkit.elf import ElfRecipe
from stm32_fota import build as build_mod
from stm32_fota.build import BuildResult, build
from stm32_fota.elfcheck import TARGETS, check_elf
from stm32_fota.errors import BuildError, ElfCheckError, ImageError, ToolchainError

ROOT = Path(__file__).resolve().parents[2]
SLOT_A = IMAGE.constants["SLOT_A"]
PRODUCTS = [f"{t}{ext}" for t in ("bootloader", "slot-a", "slot-b")
            for ext in (".elf", ".bin", ".hex", ".map")]


def mtimes(d: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in d.iterdir() if p.is_file()}


def make_is_up_to_date(build_dir: Path, version: str, build_number: int) -> bool:
    """Ask make itself (-q: exit 0 when every target is up to date, run nothing)."""
    argv = ["make", "-q", "-C", str(ROOT / "stm32"), f"BUILD={build_dir}", f"VERSION={version}",
            f"BUILD_NUMBER={build_number}"]
    proc = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    return proc.returncode == 0


# --- the real firmware -------------------------------------------------------------------------

def test_build_produces_every_file(fw_build: BuildResult) -> None:
    d = fw_build.build_dir
    for name in PRODUCTS:
        assert (d / name).is_file() and (d / name).stat().st_size > 0, name
    assert (d / "version.txt").read_text(encoding="utf-8") == "1.0.0\n"
    assert [t.target.name for t in fw_build.targets] == ["bootloader", "slot-a", "slot-b"]
    for name in ("slot-a", "slot-b"):
        info = read_image(d / f"{name}.bin", TARGETS[name].slot)
        assert (info.version, info.build) == ((1, 0, 0), 0)
    assert "bootloader" in (d / "bootloader.map").read_text(encoding="utf-8", errors="replace")


def test_second_build_is_up_to_date(fw_build_copy: Path) -> None:
    before = mtimes(fw_build_copy)
    result = build("1.0.0", 0, fw_build_copy)
    assert not result.version_changed
    assert [t.postlinked for t in result.targets] == [False, False, False]
    assert mtimes(fw_build_copy) == before
    assert make_is_up_to_date(fw_build_copy, "1.0.0", 0)
    print(f"incremental build: {result.seconds:.2f} s")


def test_version_change_rebuilds(fw_build_copy: Path) -> None:
    assert not make_is_up_to_date(fw_build_copy, "1.1.0", 7)
    result = build("1.1.0", 7, fw_build_copy)
    assert result.version_changed
    assert all(t.postlinked for t in result.targets)
    for name in ("slot-a", "slot-b"):
        assert read_image(fw_build_copy / f"{name}.bin").version_str == "1.1.0"
        assert read_image(fw_build_copy / f"{name}.bin").build == 7
        check_elf(fw_build_copy / f"{name}.elf", TARGETS[name])
    assert (fw_build_copy / "version.txt").read_text(encoding="utf-8") == "1.1.0\n"
    assert make_is_up_to_date(fw_build_copy, "1.1.0", 7)
    # And back: nothing of 1.1.0 survives.
    build("1.0.0", 0, fw_build_copy)
    assert read_image(fw_build_copy / "slot-b.bin").version == (1, 0, 0)


# --- refusals before anything runs ---------------------------------------------------------------

@pytest.mark.parametrize(("version", "build_number", "message"), [
    ("1.0", 0, r"Failed to parse version '1.0'"),
    ("1.0.0", -1, r"Failed to use build number -1"),
    ("1.0.0", 1 << 32, r"Failed to use build number 4294967296"),
])
def test_bad_version_or_build_number(tmp_path: Path, version: str, build_number: int, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        build(version, build_number, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_missing_toolchain_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"Failed to find arm-none-eabi-gcc on PATH: .*"
                                             r"apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"):
        build("1.0.0", 0, tmp_path / "b")


def test_bad_variant_name(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"Failed to build variant 'a b': a variant name is letters, digits"):
        build("1.0.0", 0, tmp_path / "b", variants=["a b"])


# --- a stand-in Makefile, to drive build.py through each failure ----------------------------------

@pytest.fixture(scope="module")
def fake_elves(arm_toolchain: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good small ELF files for every target, plus a slot-b ELF linked for slot A."""
    d = tmp_path_factory.mktemp("fake-elves")
    ElfRecipe(region="bootloader", header=0).link(d, "bootloader")
    ElfRecipe(region="slot_a").link(d, "slot-a")
    ElfRecipe().link(d, "slot-b")
    ElfRecipe(region="slot_a").link(d / "bad", "slot-b")
    ElfRecipe(region="slot_a").link(d, "slot-a-hang")
    ElfRecipe().link(d, "slot-b-hang")
    return d


def fake_source(tmp_path: Path, recipe: str) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "Makefile").write_text(f"all:\n{recipe}\n", encoding="utf-8")
    return src


def test_make_failure_shows_the_compiler_output(arm_toolchain: None, tmp_path: Path) -> None:
    src = fake_source(tmp_path, "\t@echo 'app/main.c:3: error: expected ;' >&2; exit 2")
    with pytest.raises(BuildError, match=r"(?s)Failed to build the firmware: make exited with status 2\n"
                                         r".*app/main.c:3: error: expected ;"):
        build("1.0.0", 0, tmp_path / "b", source_dir=src)


def test_missing_makefile(arm_toolchain: None, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"Failed to build the firmware: no Makefile in"):
        build("1.0.0", 0, tmp_path / "b", source_dir=tmp_path)


def test_make_that_produces_nothing(arm_toolchain: None, tmp_path: Path) -> None:
    src = fake_source(tmp_path, "\t@true")
    with pytest.raises(BuildError, match=r"Failed to build bootloader: make did not produce bootloader.elf"):
        build("1.0.0", 0, tmp_path / "b", source_dir=src)


def test_make_receives_build_dir_version_and_variant(fake_elves: Path, tmp_path: Path) -> None:
    record = '\t@echo "$(BUILD) $(VERSION) $(BUILD_NUMBER) $(APP_VARIANT)" >> $(BUILD)/args\n'
    src = fake_source(tmp_path, record + f"\tcp {fake_elves}/*.elf $(BUILD)/")
    out = tmp_path / "b"
    result = build("1.0.0", 0, out, variants=["hang"], source_dir=src)
    args = (out / "args").read_text(encoding="utf-8").splitlines()
    assert args == [f"{out} 1.0.0 0 ", f"{out} 1.0.0 0 hang"]
    assert [t.target.name for t in result.targets] == ["bootloader", "slot-a", "slot-b", "slot-a-hang",
                                                       "slot-b-hang"]
    assert read_image(out / "slot-b-hang.bin", TARGETS["slot-b"].slot).slot_name == "B"


def test_concurrent_builds_into_one_directory_take_turns(fake_elves: Path, tmp_path: Path) -> None:
    src = fake_source(tmp_path, f"\tcp {fake_elves}/*.elf $(BUILD)/")
    out = tmp_path / "b"
    out.mkdir()
    messages: list[str] = []
    results: list[BuildResult] = []
    with (out / build_mod.LOCK).open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)       # another build is running
        worker = threading.Thread(target=lambda: results.append(
            build("1.0.0", 0, out, source_dir=src, log=messages.append)))
        worker.start()
        deadline = time.monotonic() + 30
        while not messages and time.monotonic() < deadline:
            time.sleep(0.02)
        assert messages == [f"build: waiting for another build in {out}"]
        assert not results and not (out / "slot-b.bin").exists()
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(timeout=60)
    assert len(results) == 1 and (out / "slot-b.bin").is_file()


def test_bad_link_stops_the_build_and_leaves_no_image(fake_elves: Path, tmp_path: Path) -> None:
    src = fake_source(tmp_path, f"\tcp {fake_elves}/*.elf $(BUILD)/\n"
                                f"\tcp {fake_elves}/bad/slot-b.elf $(BUILD)/")
    out = tmp_path / "b"
    out.mkdir()
    (out / "slot-b.bin").write_bytes(b"an image from an earlier build")
    with pytest.raises(ElfCheckError, match=r"slot-b.elf: it looks linked for slot_a"):
        build("1.0.0", 0, out, source_dir=src)
    assert not (out / "slot-b.bin").exists()
    assert not (out / "version.txt").exists()


OVERSIZE_VARIANT = """\
#include <stdint.h>
#include "link.h"
static const uint8_t blob[BLOB_BYTES] = {1};
const uint8_t *volatile blob_ref;
void app_variant_start(void)
{
    blob_ref = blob;
}
"""


@pytest.mark.slow   # several seconds alone: out of the fast loop
def test_oversize_image_stops_the_link_with_the_byte_count(arm_toolchain: None, tmp_path: Path) -> None:
    """An application that does not fit MAX_IMAGE_SIZE with its trailer stops the link, and what
    speaks first is the linker's count of the bytes too many (docs/build.md)."""
    src = tmp_path / "stm32"
    shutil.copytree(ROOT / "stm32", src, ignore=shutil.ignore_patterns("build"))
    limit = LAYOUT.max_image_size
    (src / "app" / "variants" / "oversize.c").write_text(
        OVERSIZE_VARIANT.replace("BLOB_BYTES", str(limit)), encoding="utf-8")
    out = tmp_path / "b"
    with pytest.raises(BuildError) as failure:
        build("1.0.0", 0, out, variants=["oversize"], source_dir=src)
    message = str(failure.value)
    assert message.startswith("Failed to build the firmware (APP_VARIANT=oversize): make exited with status")
    # Every linker message up to the count is about the IMAGE region: no check without numbers
    # (a linker-script ASSERT) stops the link first.
    linker = [line for line in message.splitlines() if "/ld: " in line or line.startswith("ld: ")]
    assert linker, message
    first = next((line for line in linker if "will not fit in region `IMAGE'" not in line), "")
    overflow = re.search(r"region `IMAGE' overflowed by (\d+) bytes", first)
    assert overflow, f"the first linker error has no byte count: {first or message}"
    # The blob alone is the whole limit: image + trailer exceed it by the rest of the application.
    assert 1000 < int(overflow.group(1)) < 64 * 1024
    # make stops at the first slot that fails (the other may or may not have linked by then).
    assert 1 <= len(re.findall(r"region `IMAGE' overflowed by \d+ bytes", message)) <= 2
    assert not list(out.glob("slot-*-oversize.elf"))


# --- tasks.py ----------------------------------------------------------------------------------

def _invoke(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False, env=env)


def test_invoke_lists_each_task_with_a_description() -> None:
    proc = _invoke("--list")
    assert proc.returncode == 0, proc.stderr
    listed = {}
    for line in proc.stdout.splitlines()[2:]:
        parts = line.split(None, 1)
        if len(parts) == 2 and line.startswith("  ") and not line.startswith("    "):
            listed[parts[0]] = parts[1]
    for name in ("build", "gen", "size", "clean", "lint", "test"):
        assert listed.get(name), f"`invoke --list` shows no description for {name}: {proc.stdout}"


def test_invoke_build_reports_a_user_error_without_traceback() -> None:
    proc = _invoke("build", "--version", "1.x")
    assert proc.returncode == 1
    assert "Failed to parse version '1.x': expected MAJOR.MINOR.PATCH" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_invoke_build_help_documents_every_option() -> None:
    proc = _invoke("build", "--help")
    assert proc.returncode == 0, proc.stderr
    for option in ("--version", "--build-number", "--build-dir", "--variant", "--jobs", "--verbose"):
        line = next((li for li in proc.stdout.splitlines() if option in li), "")
        assert len(line.split(option, 1)[1].strip()) > 10, f"no help text for {option}"


def test_invoke_size_prints_the_table_of_a_build(fw_build: BuildResult) -> None:
    proc = _invoke("size", "--build-dir", str(fw_build.build_dir))
    assert proc.returncode == 0, proc.stderr
    rows = [line.split()[:2] for line in proc.stdout.splitlines()[1:]]
    assert ["bootloader", "flash"] in rows and ["slot-a", "flash"] in rows and ["slot-b", "sram"] in rows


def test_invoke_size_without_a_build(tmp_path: Path) -> None:
    proc = _invoke("size", "--build-dir", str(tmp_path))
    assert proc.returncode == 1
    assert "Failed to report sizes: no complete build in" in proc.stderr


def test_invoke_clean_removes_only_build_directories(fw_build_copy: Path, tmp_path: Path) -> None:
    precious = tmp_path / "sources"
    (precious / "src").mkdir(parents=True)
    proc = _invoke("clean", "--build-dir", str(precious))
    assert proc.returncode == 1 and "refusing to remove" in proc.stderr
    assert (precious / "src").is_dir()
    proc = _invoke("clean", "--build-dir", str(fw_build_copy))
    assert proc.returncode == 0, proc.stderr
    assert not fw_build_copy.exists()


def test_tasks_load_without_the_project_packages() -> None:
    """`invoke --list` must work even when a part of the project (or all of it) fails to import."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('stm32_fota', 'fota_server', 'stm32_twin', 'esp32_twin'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import tasks\n"
        "from invoke import Collection\n"
        "print(' '.join(sorted(Collection.from_module(tasks).task_names)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert {"build", "clean", "gen", "lint", "size", "test"} <= set(proc.stdout.split())


@pytest.mark.slow
def test_variants_are_built_checked_and_post_linked(fw_build_variants: BuildResult) -> None:
    variants = sorted(p.stem for p in (ROOT / "stm32" / "app" / "variants").glob("*.c"))
    names = [t.target.name for t in fw_build_variants.targets]
    assert names[:3] == ["bootloader", "slot-a", "slot-b"]
    assert names[3:] == [f"slot-{s}-{v}" for v in variants for s in ("a", "b")]
    for t in fw_build_variants.targets[3:]:
        info = read_image(t.bin, t.target.slot)
        assert (info.version, info.build) == ((1, 0, 0), 0)
        # A variant differs from the plain application of its slot.
        plain = fw_build_variants.build_dir / f"slot-{info.slot_name.lower()}.bin"
        assert t.bin.read_bytes() != plain.read_bytes()
