"""Project tasks (invoke). Each task is a thin call into library code under host/, server/, twin/.

    invoke --list          # every task with a one-line description
    invoke build           # firmware: bootloader, slot-a, slot-b into build/, checked, with a size table
    invoke test            # the test suite

Library modules are imported inside the tasks, so that this file loads (and ``invoke --list``
works) even when an optional part of the project is missing or broken. User errors end the task
with ``invoke.Exit("message")`` rather than a traceback.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from invoke import Context, Exit, task

ROOT = Path(__file__).resolve().parent
BUILD_DIR = "build"


def _fail(e: Exception) -> Exit:
    return Exit(f"invoke: {e}", code=1)


def _quote(arg: str) -> str:
    return shlex.quote(arg)


@task(iterable=["variant"], help={
    "version": "firmware version MAJOR.MINOR.PATCH written into both slot images (default 1.0.0)",
    "build_number": "build number written into both slot images (default 0)",
    "build_dir": f"output directory (default {BUILD_DIR}/)",
    "variant": "extra application variant to build as slot-a-<name>/slot-b-<name> (repeatable)",
    "jobs": "parallel make jobs (default 2)",
    "verbose": "show make's own output",
})
def build(c: Context, version: str = "1.0.0", build_number: int = 0, build_dir: str = BUILD_DIR,
          variant: list[str] | None = None, jobs: int = 2, verbose: bool = False) -> None:
    """Build the bootloader and both slot images, check them, print sizes."""
    from stm32_fota.build import build as do_build
    from stm32_fota.errors import FotaError
    from stm32_fota.sizes import format_size_table

    try:
        result = do_build(version, build_number, ROOT / build_dir, variant or (), jobs=jobs, verbose=verbose,
                          log=print)
    except FotaError as e:
        raise _fail(e) from None
    print(format_size_table(result.reports))
    for t in result.targets:
        what = t.image.describe() if t.image else f"{t.report.flash_used} bytes"
        state = "written" if t.postlinked else "up to date"
        print(f"{t.target.name}: {what} ({state})")
    print(f"build: v{result.version}+{result.build_number} in {result.build_dir} ({result.seconds:.1f} s)")


@task(help={"build_dir": f"directory of a previous `invoke build` (default {BUILD_DIR}/)"})
def size(c: Context, build_dir: str = BUILD_DIR) -> None:
    """Print flash and RAM use per target of the last build."""
    from stm32_fota.errors import FotaError
    from stm32_fota.sizes import format_size_table, report_build_dir

    try:
        reports = report_build_dir(ROOT / build_dir)
    except FotaError as e:
        raise _fail(e) from None
    print(format_size_table(reports))


@task(help={"check": "only check that the generated files are up to date (exit 1 when stale)"})
def gen(c: Context, check: bool = False) -> None:
    """Regenerate C headers, linker maps and bridge constants from spec."""
    from stm32_fota import gen as generator

    rc = generator.main(["--check"] if check else [])
    if rc:
        raise Exit("invoke: generated files are stale: run `invoke gen`", code=rc)


@task(help={"build_dir": f"directory to remove (default {BUILD_DIR}/)"})
def clean(c: Context, build_dir: str = BUILD_DIR) -> None:
    """Remove the build directory."""
    target = (ROOT / build_dir).resolve()
    if target == ROOT or ROOT.is_relative_to(target) or (target / ".git").exists():
        raise Exit(f"invoke: refusing to remove {target}: it is not a build directory", code=1)
    if target.exists():
        shutil.rmtree(target)
        print(f"removed {target}")


@task(help={"fix": "let ruff fix what it can"})
def lint(c: Context, fix: bool = False) -> None:
    """Run ruff and check that the generated files are up to date."""
    result = c.run(f"{_quote(sys.executable)} -m ruff check {'--fix ' if fix else ''}.", warn=True, pty=False)
    gen(c, check=True)
    if result is None or result.failed:
        raise Exit("invoke: ruff found problems (see above)", code=1)


@task(help={
    "k": "only tests matching this pytest -k expression",
    "path": "test file or directory (default: the whole suite)",
    "jobs": "parallel pytest workers (default 2; 0 runs in one process)",
})
def test(c: Context, k: str = "", path: str = "", jobs: int = 2) -> None:
    """Run the test suite with pytest (2 workers, one file per worker)."""
    args = [sys.executable, "-m", "pytest"]
    if jobs:
        args += ["-n", str(jobs), "--dist", "loadfile"]
    if k:
        args += ["-k", k]
    if path:
        args.append(path)
    result = c.run(" ".join(_quote(a) for a in args), warn=True, pty=False)
    if result is None or result.failed:
        raise Exit("invoke: tests failed (see above)", code=1)
