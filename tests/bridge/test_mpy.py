"""mpy-cross compiles every bridge module; a syntax stock MicroPython rejects fails the build."""

from __future__ import annotations

from pathlib import Path

import pytest
from stm32_fota.errors import BuildError
from stm32_fota.mpy import compile_bridge
from stm32_fota.project import current

BRIDGE_DIR = current().bridge_dir


def test_every_bridge_module_compiles(tmp_path: Path) -> None:
    out = compile_bridge(tmp_path)
    names = sorted(p.name for p in out.files)
    expected = sorted(p.stem + ".mpy" if p.name != "main.py" else "main.py" for p in BRIDGE_DIR.glob("*.py"))
    assert names == expected
    for p in out.files:
        if p.suffix == ".mpy":
            head = p.read_bytes()[:2]
            assert head[0:1] == b"M" and head[1] == 6       # .mpy format version 6 (MicroPython >= 1.19)
    assert (tmp_path / "main.py").read_bytes() == (BRIDGE_DIR / "main.py").read_bytes()
    again = compile_bridge(tmp_path)
    assert again.compiled == []                              # up to date: nothing recompiled


def test_syntax_micropython_rejects_fails_with_the_module_named(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "good.py").write_text("X = 1\n")
    (src / "bad.py").write_text("def f(x):\n    match x:\n        case 1:\n            return 2\n")
    with pytest.raises(BuildError, match=r"^Failed to compile bad.py for MicroPython: .*SyntaxError"):
        compile_bridge(tmp_path / "out", src)
    assert not (tmp_path / "out" / "bad.mpy").exists()
