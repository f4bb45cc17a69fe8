"""The bridge's link code (esp32_mpy/fota_const.py and fotalink.py) loaded under CPython, so that the
host's reference master speaks the protocol with the very code the ESP32 runs.

    >>> bridge = BridgeModules(Path("esp32_mpy"))     # doctest: +SKIP
    >>> link = bridge.fotalink.Link(port)             # doctest: +SKIP
    >>> bridge.BridgeError                            # doctest: +SKIP
    <class 'fota_lab._bridge.fotalink.BridgeError'>

Each folder's modules are loaded once, on first use, under private names (``fota_lab._bridge.*``),
and never registered in ``sys.modules``: importing ``fota_lab.master`` leaves the top-level names
``fotalink`` and ``fota_const`` to whoever imports the bridge the way the device does (the tests of
tests/bridge put esp32_mpy/ on ``sys.path`` for that).

One exception, kept to this module: fotalink.py starts with ``from fota_const import ...``, as on
the device, where every module is top-level. That statement looks ``fota_const`` up in
``sys.modules``, so the private fota_const stands there while fotalink.py executes, and whatever
stood there before is put back right after; fotalink binds the constants it imports at that moment
and needs the module no more.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from functools import cache
from pathlib import Path
from types import ModuleType

from fota_formats.errors import FotaError

NAMESPACE = "fota_lab._bridge"


class BridgeModules:
    """fota_const and fotalink of the bridge folder ``bridge_dir``, loaded once, on first use."""

    def __init__(self, bridge_dir: Path) -> None:
        self.bridge_dir = bridge_dir
        self._lock = threading.Lock()
        self._fotalink: ModuleType | None = None

    @property
    def fotalink(self) -> ModuleType:
        with self._lock:
            if self._fotalink is None:
                const = self._load("fota_const", {})
                self._fotalink = self._load("fotalink", {"fota_const": const})
            return self._fotalink

    @property
    def BridgeError(self) -> type[Exception]:
        error: type[Exception] = self.fotalink.BridgeError
        return error

    def _load(self, name: str, imports: dict[str, ModuleType]) -> ModuleType:
        """Execute ``<bridge_dir>/<name>.py`` as a private module; ``imports``: the top-level modules
        it imports by name, visible in ``sys.modules`` while it executes only."""
        path = self.bridge_dir / f"{name}.py"
        if not path.is_file():
            raise FotaError(f"Failed to load the bridge module {name}: {path} does not exist")
        spec = importlib.util.spec_from_file_location(f"{NAMESPACE}.{name}", path)
        if spec is None or spec.loader is None:
            raise FotaError(f"Failed to load the bridge module {name}: {path} is not a Python module")
        module = importlib.util.module_from_spec(spec)
        before = {n: sys.modules.get(n) for n in imports}
        sys.modules.update(imports)
        try:
            spec.loader.exec_module(module)
        finally:
            for n, old in before.items():
                if old is None:
                    sys.modules.pop(n, None)
                else:
                    sys.modules[n] = old
        return module


@cache
def for_folder(bridge_dir: Path) -> BridgeModules:
    """The one loader of ``bridge_dir`` in this process (so that its BridgeError is one class)."""
    return BridgeModules(bridge_dir.resolve())
