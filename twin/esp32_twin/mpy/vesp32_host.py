"""The virtual ESP32's line to its host: one call per hardware or network operation.

    from vesp32_host import call
    level = call("pin_read", 27)                 # -> int
    n = call("spi", 5000000, tx=frame, rx=buf)   # tx and rx: any buffer, rx filled in place

Under the WebAssembly port the call goes to the Node runner's `_vesp32` module; buffers cross by
address, so a transfer allocates nothing on the MicroPython heap. Under CPython a test installs a
backend with `set_backend` (esp32_twin.standins does). A host error becomes OSError with
the ESP32 port's errno value (vesp32_errno).
"""

import vesp32_errno

try:
    import _vesp32
    from uctypes import addressof
except ImportError:  # CPython: esp32_twin.standins sets a backend
    _vesp32 = None

_backend = None
_sampler = None

def errno_value(name):
    """The ESP32 port's errno number for a name such as 'ETIMEDOUT' (vesp32_errno: 116)."""
    # imported once at the top: an import here would search the flash filesystem, whose failure
    # would call this function again.
    return getattr(vesp32_errno, name, vesp32_errno.EIO)


def set_backend(backend):
    """CPython only: backend(op, args, tx, rx) -> value, raising OSError on failure."""
    global _backend
    _backend = backend


def set_sampler(sampler):
    """sampler() runs before every call: gc's peak tracking sees the heap at each I/O."""
    global _sampler
    _sampler = sampler


def call(op, a=None, b=None, c=None, d=None, tx=None, rx=None):
    """Run `op` on the host with arguments a..d, `tx` bytes to send, `rx` a writable buffer for
    the bytes that come back. Returns the host's value."""
    if _vesp32 is None:
        if _backend is None:
            raise OSError(errno_value("ENODEV"))
        return _backend(op, (a, b, c, d), tx, rx)
    if _sampler is not None:
        _sampler()
    if tx is not None and len(tx):
        tx_addr, tx_len = addressof(tx), len(tx)
    else:
        tx_addr, tx_len = 0, 0
    if rx is not None and len(rx):
        rx_addr, rx_cap = addressof(rx), len(rx)
    else:
        rx_addr, rx_cap = 0, 0
    r = _vesp32.call(op, a, b, c, d, tx_addr, tx_len, rx_addr, rx_cap)
    if type(r) is str and r[:2] == "\0E":
        # One argument, as the ESP32 port raises it: prints "OSError: [Errno 2] ENOENT".
        raise OSError(errno_value(r[2:].partition("\0")[0]))
    return r
