"""Stand-in for the ESP32 port's `machine` module on the virtual ESP32.

    from machine import Pin, SPI
    cs = Pin(5, Pin.OUT, value=1)
    ready = Pin(27, Pin.IN)
    spi = SPI(2, baudrate=10_000_000, polarity=0, phase=0, sck=Pin(18), mosi=Pin(23), miso=Pin(19))
    cs(0); spi.write_readinto(tx, rx); cs(1)

Every pin and SPI operation goes to the host, which wires GPIO 5 (CS), 27 (READY) and 4 (NRST)
to the STM32 twin. What the bridge and a user's mpremote session touch is here, with the ESP32
port's names and values:
- Pin(id, mode, pull, *, value): `pull` -1 (the default) leaves the pad's pull-up/pull-down as it
  is, None clears both, PULL_UP/PULL_DOWN set one (ports/esp32/machine_pin.c,
  machine_pin_obj_init_helper); after a reset a pad has the pull of the ESP32 datasheet's IO_MUX
  table (GPIO 4: pull-down), which the host models;
- WDT(id=0, timeout=5000): started at creation, cannot be stopped, feed() restarts it; when it runs
  out the board resets with reset_cause() WDT_RESET (docs/library/machine.WDT.rst);
- RTC().datetime(): (year, month, day, weekday, hours, minutes, seconds, subseconds)
  (docs/library/machine.RTC.rst);
- SoftSPI: the bit-banged SPI on any pins (docs/library/machine.SPI.rst, "Software SPI").
"""

from vesp32_host import call


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        # mode -1: the port's default None (leave the mode); pull None: no pull (sent as 0)
        if not isinstance(id, int) or not 0 <= id <= 39:
            raise ValueError("invalid pin")
        self._id = id
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None):
        if mode not in (-1, None, Pin.IN, Pin.OUT, Pin.OPEN_DRAIN):
            raise ValueError("invalid pin mode")
        # The level is set before the mode, as on the ESP32: an output starts at `value`.
        if value is not None:
            call("pin_write", self._id, 1 if value else 0)
        if pull is None:
            pull = 0
        if mode is None:
            mode = -1
        if pull not in (-1, 0, Pin.PULL_UP, Pin.PULL_DOWN):
            raise ValueError("invalid pull")
        if mode != -1 or pull != -1:
            call("pin_mode", self._id, mode, pull)

    def value(self, x=None):
        if x is None:
            return call("pin_read", self._id)
        call("pin_write", self._id, 1 if x else 0)
        return None

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        call("pin_write", self._id, 1)

    def off(self):
        call("pin_write", self._id, 0)

    def __repr__(self):
        return f"Pin({self._id})"


class SPI:
    MSB = 0
    LSB = 1

    def __init__(self, id, baudrate=1000000, *, polarity=0, phase=0, bits=8, firstbit=0,
                 sck=None, mosi=None, miso=None):
        if id not in (1, 2):
            raise ValueError(f"SPI({id}) doesn't exist")
        self._id = id
        self._baudrate = 0
        self.init(baudrate=baudrate, polarity=polarity, phase=phase, bits=bits, firstbit=firstbit)

    def init(self, baudrate=None, *, polarity=0, phase=0, bits=8, firstbit=0, sck=None, mosi=None,
             miso=None):
        if baudrate is not None:
            self._baudrate = int(baudrate)
        if bits != 8 or firstbit != SPI.MSB or polarity or phase:
            # The link is mode 0, 8 bits, MSB first (docs/protocol.md); anything else is a bug.
            raise ValueError("virtual SPI supports mode 0, 8 bits, MSB first only")

    def deinit(self):
        pass

    def write_readinto(self, write_buf, read_buf):
        if len(write_buf) != len(read_buf):
            raise ValueError("buffers must be the same length")
        call("spi", self._baudrate, tx=write_buf, rx=read_buf)

    def write(self, buf):
        call("spi", self._baudrate, tx=buf)

    def readinto(self, buf, write=0):
        tx = bytes([write]) * len(buf)
        call("spi", self._baudrate, tx=tx, rx=buf)

    def read(self, nbytes, write=0):
        buf = bytearray(nbytes)
        self.readinto(buf, write)
        return bytes(buf)


class SoftSPI(SPI):
    """Software SPI: same methods as SPI; sck, mosi and miso are required Pins."""

    def __init__(self, baudrate=500000, *, polarity=0, phase=0, bits=8, firstbit=0, sck=None, mosi=None,
                 miso=None):
        if sck is None or mosi is None or miso is None:
            raise TypeError("must specify all of sck/mosi/miso")
        self._id = -1
        self._baudrate = 0
        self.init(baudrate=baudrate, polarity=polarity, phase=phase, bits=bits, firstbit=firstbit)


class WDT:
    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError("WDT(%d) doesn't exist" % id)  # noqa: UP031
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        call("wdt_init", int(timeout))

    def feed(self):
        call("wdt_feed")


class RTC:
    _offset = 0     # seconds set by datetime(tuple), until the next reset

    def __init__(self, id=0):
        pass

    def datetime(self, dt=None):
        import time
        if dt is None:
            t = time.localtime(time.time() + RTC._offset)
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        secs = time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0))
        RTC._offset = secs - time.time()
        return None

    def init(self, dt):
        self.datetime(dt)

    def memory(self, data=None):
        return b"" if data is None else None


def reset():
    """Hard reset of the ESP32: the host restarts the runtime; this call does not return."""
    call("reset")
    while True:  # the runner raises KeyboardInterrupt here and reboots
        call("sleep", 10)


def soft_reset():
    raise SystemExit


def unique_id():
    import binascii
    return binascii.unhexlify(call("unique_id"))


def freq(hz=None):
    return 160000000 if hz is None else None


def idle():
    call("sleep", 1)


def reset_cause():
    return call("reset_cause")


PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
