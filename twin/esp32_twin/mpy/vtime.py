"""The virtual ESP32's `time` (also `utime`): the port's functions on the host's device clock.

    import time
    t0 = time.ticks_ms()
    time.sleep_ms(100)          # the STM32 twin runs 100 ms meanwhile
    time.ticks_diff(time.ticks_ms(), t0)   # >= 100

ticks_ms() is the virtual ESP32's clock, kept by the host together with the STM32 twin's: it
advances with wall-clock time and during every wait, so timeouts in the bridge and the twin's
flash timings share one time base. A sleep is interruptible with Ctrl-C, as on the board.
"""

from time import gmtime, localtime, mktime, ticks_add, ticks_cpu, ticks_diff, time, time_ns  # noqa: F401

from vesp32_host import call

_TICKS_MAX = 0x3FFFFFFF  # ticks wrap like the port's (MICROPY_PY_TIME_TICKS_PERIOD = 2**30)


def ticks_ms():
    return call("ticks")  # already wrapped by the host: a small int, nothing allocated


def ticks_us():
    return (call("ticks") * 1000) & _TICKS_MAX


def sleep_ms(ms):
    if ms > 0:
        call("sleep", int(ms))


def sleep_us(us):
    if us >= 1000:
        call("sleep", us // 1000)


def sleep(seconds):
    sleep_ms(int(seconds * 1000))
