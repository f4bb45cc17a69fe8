"""The checkout the tools work on: where the firmware sources, the bridge and the outputs live.

    >>> from stm32_fota.project import Project, current, use
    >>> use(Project.at(Path("~/src/stm32-fota").expanduser()))   # doctest: +SKIP   (tasks.py does this)
    >>> current().stm32_dir                                       # doctest: +SKIP
    PosixPath('.../stm32-fota/stm32')

The packages never locate the checkout from their own file paths (they may be installed anywhere).
``tasks.py`` hands its folder down with :func:`use`; anything else resolves it once, from the
``FOTA_ROOT`` environment variable or by looking upwards from the working directory for a folder
that holds ``stm32/Makefile`` and ``esp32_mpy/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fota_formats.errors import FotaError

ROOT_ENV = "FOTA_ROOT"
_MARKERS = ("stm32/Makefile", "esp32_mpy/main.py")


class ProjectError(FotaError):
    """No stm32-fota checkout where one was expected."""


@dataclass(frozen=True)
class Project:
    root: Path

    @classmethod
    def at(cls, root: Path) -> Project:
        """The checkout at ``root``; refuses a folder that is not one, naming what is missing."""
        root = root.resolve()
        missing = [m for m in _MARKERS if not (root / m).exists()]
        if missing:
            raise ProjectError(f"{root} is not an stm32-fota checkout: {', '.join(missing)} missing")
        return cls(root)

    @classmethod
    def find(cls, start: Path | None = None, env: dict[str, str] | None = None) -> Project:
        """``FOTA_ROOT`` when set, else the nearest checkout at or above ``start`` (default: cwd)."""
        env = dict(os.environ) if env is None else env
        if env.get(ROOT_ENV):
            return cls.at(Path(env[ROOT_ENV]))
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if all((folder / m).exists() for m in _MARKERS):
                return cls(folder)
        raise ProjectError(f"no stm32-fota checkout at or above {here}: run from inside one, "
                           f"or set {ROOT_ENV}")

    @property
    def stm32_dir(self) -> Path:
        """Firmware sources and their Makefile."""
        return self.root / "stm32"

    @property
    def gen_dir(self) -> Path:
        """C headers and linker memory maps generated from the specs."""
        return self.stm32_dir / "gen"

    @property
    def bridge_dir(self) -> Path:
        """The ESP32 bridge's MicroPython sources."""
        return self.root / "esp32_mpy"

    @property
    def build_dir(self) -> Path:
        """Default output folder of builds."""
        return self.root / "build"

    @property
    def bench_dir(self) -> Path:
        """Benchmark scripts and their results."""
        return self.root / "bench"


_current: Project | None = None


def use(project: Project) -> None:
    """Make ``project`` the checkout every default refers to (tasks.py calls this first)."""
    global _current
    _current = project


def current() -> Project:
    """The checkout handed down with :func:`use`, else the one found once from the environment."""
    global _current
    if _current is None:
        _current = Project.find()
    return _current
