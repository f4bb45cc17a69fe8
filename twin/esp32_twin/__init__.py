"""The virtual ESP32: MicroPython's WebAssembly port behind a pseudo-terminal, wired to a peer.

    from esp32_twin import VirtualEsp32, FakePeer
    with VirtualEsp32(FakePeer()) as esp:
        print(esp.port)        # /dev/pts/N: use it with mpremote like a board's serial port
"""

from esp32_twin.device import VirtualEsp32
from esp32_twin.errors import DeviceOSError, Esp32TwinError
from esp32_twin.netstack import WifiConfig
from esp32_twin.peer import Esp32Peer, FakePeer

__all__ = ["DeviceOSError", "Esp32Peer", "Esp32TwinError", "FakePeer", "VirtualEsp32", "WifiConfig"]
