"""Packages depend downward only: the import-linter contracts of pyproject.toml hold, a wrong
import breaks them, and each extra pulls only what its packages need."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("host", "server", "twin")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, pythonpath: list[Path]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath))
    return subprocess.run([str(LINT_IMPORTS), str(cwd / "pyproject.toml"), "--no-cache"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def _copy(tmp_path: Path) -> Path:
    """The packages and the contracts in a scratch folder, to break on purpose."""
    for src in SOURCES:
        shutil.copytree(ROOT / src, tmp_path / src,
                        ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold() -> None:
    proc = _lint(ROOT, [ROOT / s for s in SOURCES])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "BROKEN" not in proc.stdout and proc.stdout.count("KEPT") >= 7, proc.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("server/fota_server/app.py", "import stm32_fota.elfcheck",
     "fota_server is not allowed to import stm32_fota"),
    ("server/fota_server/ranges.py", "import elftools", "fota_server is not allowed to import elftools"),
    ("twin/stm32_twin/__init__.py", "import fota_formats.spec",
     "stm32_twin is not allowed to import fota_formats"),
    ("twin/esp32_twin/channel.py", "import fota_formats", "esp32_twin is not allowed to import fota_formats"),
    ("host/fota_formats/semver.py", "import fota_s3.store", "fota_formats"),
    ("host/stm32_fota/build.py", "import fota_lab.lab", "stm32_fota"),
])
def test_a_wrong_import_breaks_a_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    root = _copy(tmp_path)
    path = root / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # deliberately wrong\n", encoding="utf-8")
    proc = _lint(root, [root / s for s in SOURCES])
    assert proc.returncode != 0, proc.stdout
    assert contract in proc.stdout, proc.stdout


def _extra_closure(name: str) -> set[str]:
    """Distribution names an extra pulls in, following the project's references to its own extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    seen: set[str] = set()
    todo = [name]
    out: set[str] = {r.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower()
                     for r in project["dependencies"]}
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in extras[extra]:
            if req.startswith(project["name"] + "["):
                todo.extend(req[len(project["name"]) + 1:].rstrip("]").split(","))
            else:
                out.add(req.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower())
    return out


def test_the_server_extra_pulls_no_emulator_elf_reader_or_s3_stand_in() -> None:
    server = _extra_closure("server")
    assert {"fastapi", "uvicorn", "boto3"} <= server
    assert not server & {"unicorn", "pyelftools", "moto", "mpremote", "esptool"}, server
    assert {"unicorn", "moto", "pyelftools"} <= _extra_closure("dev")


def test_importing_the_server_loads_no_tool_or_twin_module() -> None:
    code = ("import sys, fota_server.app, fota_server.cli, fota_server.serve\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'unicorn', 'elftools', 'moto', 'stm32_fota', 'stm32_twin', 'esp32_twin', 'fota_lab', "
            "'invoke'})\n"
            "print(','.join(bad))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=True)
    assert proc.stdout.strip() == ""


def test_the_server_starts_as_a_module_and_as_a_console_script() -> None:
    for argv in ([sys.executable, "-m", "fota_server", "--help"],
                 [str(Path(sys.executable).with_name("fota-server")), "--help"]):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "Run the stm32-fota update server" in proc.stdout
