"""Stand-in for the ESP32 port's `esp32` module (docs/library/esp32.rst; ports/esp32/modesp32.c).

    import esp32
    esp32.raw_temperature()    # the internal sensor, degrees Fahrenheit (an uncalibrated ~120)
    esp32.idf_heap_info(esp32.HEAP_DATA)   # [(total, free, largest free, min free), ...]

What a user's session reads is here; deep sleep wake-up sources are accepted and do nothing.
"""

HEAP_DATA = 4
HEAP_EXEC = 1
WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True


def raw_temperature():
    return 120


def idf_heap_info(capabilities):
    # Regions of an ESP32 without PSRAM after MicroPython and Wi-Fi took theirs (sizes in bytes).
    return [(240960, 68000, 65536, 60000), (7288, 0, 0, 0), (16648, 4, 4, 4), (94904, 20000, 16384, 15000)]


def wake_on_touch(wake):
    return None


def wake_on_ext0(pin, level):
    return None


def wake_on_ext1(pins, level):
    return None
