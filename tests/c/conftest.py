"""The C test runner of tests/c, built once per session: every C file of tests/c (harness, fixtures,
RAM flash, cases) with the firmware's portable modules, the agent and Monocypher (fetched into
build/third_party by scripts/fetch_monocypher.py when missing), under ASan + UBSan."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
STM32 = ROOT / "stm32"
MODULES = (*sorted((STM32 / "lib").glob("*.c")), STM32 / "agent" / "agent.c")
OTHER = (STM32 / "app" / "sched.c", STM32 / "drivers" / "temp_conv.c")
MONOCYPHER = ROOT / "build" / "third_party" / "monocypher"
SOURCES = sorted(HERE.glob("*.c"))
CFLAGS = [
    "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
    "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
    *(f"-I{STM32 / room}" for room in ("lib", "agent", "gen", "app", "drivers", "port", "include")),
    f"-I{HERE}", f"-I{MONOCYPHER}",
]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
MONOCYPHER_CFLAGS = ["-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", *SANITIZE]


def _fetch_monocypher() -> Path:
    """Monocypher's folder, fetched (pinned, hash-checked) when build/third_party lacks it."""
    script = ROOT / "scripts" / "fetch_monocypher.py"
    spec = importlib.util.spec_from_file_location("fetch_monocypher", script)
    assert spec is not None and spec.loader is not None
    fetcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetcher)
    try:
        fetcher.fetch(MONOCYPHER)
    except fetcher.FetchError as exc:
        pytest.fail(f"Monocypher is missing and could not be fetched: {exc}")
    return MONOCYPHER


def _need_gcc() -> None:
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed (apt-get install gcc)")


@pytest.fixture(scope="session")
def monocypher_obj() -> Path:
    """monocypher.c compiled once for the host under ASan + UBSan (-O2: it compiles and runs faster
    than at -O1), cached in build/third_party by a hash of compiler, flags and source, so the
    test workers and later sessions share it."""
    _need_gcc()
    src = _fetch_monocypher() / "monocypher.c"
    version = subprocess.run(["gcc", "--version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256("\0".join([version, *MONOCYPHER_CFLAGS]).encode() + src.read_bytes()).hexdigest()
    obj = MONOCYPHER / f"host-sanitized-{key[:16]}.o"
    with open(MONOCYPHER / ".host-build.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not obj.is_file():
            tmp = obj.with_suffix(f".{os.getpid()}.tmp")
            proc = subprocess.run(["gcc", *MONOCYPHER_CFLAGS, "-c", str(src), "-o", str(tmp)],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, "Failed to build Monocypher for the host:\n" + proc.stderr
            tmp.replace(obj)
    return obj


CACHE = ROOT / "build" / "test-cache"


def _inputs_key(cmd: Sequence[str]) -> str:
    """A hash of the compiler, the command and every C source and header it may read (tests/c and
    the firmware's rooms): equal keys build the same executable."""
    h = hashlib.sha256(subprocess.run(["gcc", "--version"], capture_output=True, text=True,
                                      check=True).stdout.encode())
    h.update("\0".join(cmd).encode())
    rooms = ("lib", "agent", "gen", "app", "drivers", "port", "include")
    for folder in (HERE, *(STM32 / room for room in rooms)):
        for path in sorted(folder.glob("*.[ch]")):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def runner(monocypher_obj: Path) -> Path:
    """The runner, built once per change of its inputs and kept in build/test-cache (the test
    workers and later sessions share it; the inner loop skips the 15 s compile)."""
    args = [*CFLAGS, *map(str, SOURCES), *map(str, MODULES), *map(str, OTHER), str(monocypher_obj)]
    CACHE.mkdir(parents=True, exist_ok=True)
    exe = CACHE / f"fw_tests-{_inputs_key(args)[:16]}"
    with open(CACHE / ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not exe.is_file():
            for old in CACHE.glob("fw_tests-*"):
                old.unlink()
            tmp = exe.with_suffix(f".{os.getpid()}.tmp")
            proc = subprocess.run(["gcc", *args, "-o", str(tmp)], capture_output=True, text=True)
            assert proc.returncode == 0, "Failed to build the C test runner:\n" + proc.stderr
            tmp.replace(exe)
    return exe




@pytest.fixture(scope="session")
def crypto_cli(tmp_path_factory: pytest.TempPathFactory, monocypher_obj: Path) -> Path:
    """tests/c/tools/crypto_cli.c (batch SHA-512 and Ed25519 verification) with the firmware's
    sha512.c and ed25519.c, under ASan + UBSan."""
    exe = tmp_path_factory.mktemp("crypto_cli") / "crypto_cli"
    lib = STM32 / "lib"
    cmd = ["gcc", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
           *SANITIZE, f"-I{lib}", f"-I{MONOCYPHER}", str(HERE / "tools" / "crypto_cli.c"),
           str(lib / "ed25519.c"), str(lib / "sha512.c"), str(monocypher_obj), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, "Failed to build crypto_cli:\n" + proc.stderr
    return exe


FuzzBuilder = Callable[[str, Sequence[Path]], Path]


@pytest.fixture(scope="session")
def fuzz_driver(tmp_path_factory: pytest.TempPathFactory, monocypher_obj: Path) -> FuzzBuilder:
    """build(target, sources) -> the driver fuzz/fuzz_main.c + fuzz/target_<target>.c + sources,
    under ASan + UBSan, the target and sources with gcc's -fsanitize-coverage=trace-pc,trace-cmp
    (the engine's feedback); Monocypher is linked uninstrumented. Built once per target."""
    out = tmp_path_factory.mktemp("fuzz")
    built: dict[str, Path] = {}
    flags = [flag for flag in CFLAGS if flag != "-Werror"] + ["-Werror", f"-I{HERE / 'fuzz'}"]

    def compile_(name: str, srcs: Sequence[Path], extra: list[str]) -> list[str]:
        objdir = out / name
        objdir.mkdir(parents=True, exist_ok=True)
        objs = [str(objdir / f"{i}-{src.stem}.o") for i, src in enumerate(srcs)]
        for src, obj in zip(srcs, objs, strict=True):
            proc = subprocess.run(["gcc", *flags, *extra, "-c", str(src), "-o", obj], capture_output=True,
                                  text=True)
            assert proc.returncode == 0, f"Failed to build the fuzz driver {name}:\n{proc.stderr}"
        return objs

    def build(target: str, sources: Sequence[Path]) -> Path:
        if target not in built:
            engine = compile_(f"{target}-engine", [HERE / "fuzz" / "fuzz_main.c"], [])
            code = compile_(target, [HERE / "fuzz" / f"target_{target}.c", *sources],
                            ["-fsanitize-coverage=trace-pc,trace-cmp"])
            exe = out / f"fuzz_{target}"
            proc = subprocess.run(["gcc", *SANITIZE, *engine, *code, str(monocypher_obj), "-o", str(exe)],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, f"Failed to link the fuzz driver {target}:\n{proc.stderr}"
            built[target] = exe
        return built[target]

    return build
