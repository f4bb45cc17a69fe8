"""The virtual ESP32's `machine` and `network` under CPython, for tests of the bridge modules.

    with cpython_standins(FakePeer()) as services:
        import hw                      # esp32_mpy/hw.py: `from machine import SPI, Pin` works
        services.net.wifi.up = False   # Wi-Fi down for the next connect

The very files that run inside MicroPython (twin/esp32_twin/mpy/machine.py, network.py) are
loaded, with their host calls served in-process by a `Services` object instead of the Node runner.
CPython keeps its own `socket` and `time`: the bridge feature-detects those.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from esp32_twin.device import STANDINS
from esp32_twin.errors import DeviceOSError
from esp32_twin.hostfs import HostFs
from esp32_twin.netstack import NetStack, WifiConfig
from esp32_twin.peer import Esp32Peer
from esp32_twin.services import Services

MODULES = ("vesp32_errno", "vesp32_host", "machine", "network")


def _load(name: str, register: bool = True) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, STANDINS / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"Failed to load stand-in {name} from {STANDINS}")
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def standin(name: str) -> ModuleType:
    """Inside cpython_standins: another stand-in (``socket``, ``vtime``, ...) as a module object
    that is not put into sys.modules (CPython's own ``socket`` stays what the test imports)."""
    return _load(name, register=False)


@contextlib.contextmanager
def cpython_standins(peer: Esp32Peer | None = None, *, wifi: WifiConfig | None = None,
                     fs_dir: Path | None = None) -> Iterator[Services]:
    """Put the stand-ins into sys.modules (restored afterwards); yields the Services behind them."""
    saved = {name: sys.modules.get(name) for name in MODULES}
    with tempfile.TemporaryDirectory(prefix="vesp32-fs-") as tmp:
        services = Services(peer, HostFs(fs_dir or Path(tmp)), NetStack(wifi), realtime=False)

        def backend(op: str, args: Any, tx: Any, rx: Any) -> Any:
            try:
                reply = services.handle(op, list(args or ()), bytes(tx) if tx is not None else b"",
                                        lambda: False)
            except DeviceOSError as e:
                host = sys.modules["vesp32_host"]
                raise OSError(host.errno_value(e.name), e.message) from None
            if rx is not None and reply.binary:
                n = min(len(rx), len(reply.binary))
                memoryview(rx)[:n] = reply.binary[:n]
            return reply.value

        try:
            _load("vesp32_errno")
            host = _load("vesp32_host")
            host.set_backend(backend)
            _load("machine")
            _load("network")
            yield services
        finally:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
