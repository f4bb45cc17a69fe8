"""The virtual ESP32's `os`: the port's os module, with what the WebAssembly build lacks.

    import os
    os.uname()     # (sysname='esp32', nodename='esp32', release='1.x.y', version='v1.x.y on ...',
                   #  machine='Generic ESP32 module with ESP32')

os.uname() reports the ESP32 port's names (ports/esp32/mpconfigport.h: MICROPY_PY_SYS_PLATFORM
"esp32", MICROPY_HW_BOARD_NAME "Generic ESP32 module", MICROPY_HW_MCU_NAME "ESP32"; extmod/modos.c
builds machine as "<board> with <mcu>") with the release of the MicroPython that runs it.
"""

from os import *  # noqa: F403 - everything of the build's os: stat, listdir, ilistdir, mount, ...

_MACHINE = "Generic ESP32 module with ESP32"


class _UName(tuple):
    sysname = property(lambda self: self[0])
    nodename = property(lambda self: self[1])
    release = property(lambda self: self[2])
    version = property(lambda self: self[3])
    machine = property(lambda self: self[4])


def uname():
    import sys
    release = ".".join(str(x) for x in sys.implementation[1][:3])
    return _UName(("esp32", "esp32", release, "v" + release + " (virtual ESP32)", _MACHINE))
