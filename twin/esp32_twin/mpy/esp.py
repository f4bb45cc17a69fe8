"""Stand-in for the ESP32 port's `esp` module (docs/library/esp.rst; ports/esp32/modesp.c).

    import esp
    esp.osdebug(None)          # boot.py's classic line: silences the IDF log on UART0
    esp.flash_size()           # 4194304 (the 4 MB flash of an ESP32-WROOM-32 DevKit)

Flash reads and writes of the raw flash are not emulated (OSError EIO): the virtual ESP32's file
system is a directory of the host.
"""

LOG_NONE = 0
LOG_ERROR = 1
LOG_WARNING = 2
LOG_INFO = 3
LOG_DEBUG = 4
LOG_VERBOSE = 5

_FLASH_SIZE = 4 * 1024 * 1024
_USER_START = 0x200000          # where the ESP32 port's partition table puts the vfs partition


def osdebug(uart, level=LOG_ERROR):
    return None


def flash_size():
    return _FLASH_SIZE


def flash_user_start():
    return _USER_START


def flash_read(offset, buf):
    raise OSError(5)


def flash_write(offset, buf):
    raise OSError(5)


def flash_erase(sector):
    raise OSError(5)


def gpio_matrix_in(*args):
    return None


def gpio_matrix_out(*args):
    return None
