"""The virtual ESP32's `gc`: the port's collector, with figures of an ESP32-sized heap.

    import gc
    gc.collect()
    gc.mem_alloc(), gc.mem_free()   # bytes in use by the program, bytes left of the ESP32 heap

The WebAssembly port grows its heap on demand (split heap), so its own mem_free() is huge. Here
mem_free() is what an ESP32 heap of HEAP_BYTES would have left, and mem_alloc() leaves out the
stand-in modules (machine, network, socket, this one, the flash filesystem), which an ESP32 keeps in
flash. peak() is the largest mem_alloc() seen by mem_alloc() and at every host call (SPI transfer,
socket read, file access).

Caution: this port collects garbage only between two calls from JavaScript (at the REPL's top
level), never while a program runs (gc.collect() is then deferred), so during one program
mem_alloc() and peak() count its garbage too: an upper bound of what an ESP32 would need, which
collects as it goes.
"""

import gc as _gc
from gc import collect, disable, enable, isenabled, threshold  # noqa: F401

HEAP_BYTES = 111168  # gc.mem_free() of ESP32_GENERIC v1.2x right after boot, roughly
_base = 0
_peak = 0


def set_base():
    """Called once the stand-ins are loaded: what they occupy is not counted."""
    global _base, _peak
    _gc.collect()
    _base = _gc.mem_alloc()
    _peak = 0


def mem_alloc():
    global _peak
    n = _gc.mem_alloc() - _base
    if n < 0:
        n = 0
    if n > _peak:
        _peak = n
    return n


def mem_free():
    n = HEAP_BYTES - mem_alloc()
    return n if n > 0 else 0


def peak(reset=False):
    """Largest mem_alloc() seen since boot (or since the last peak(reset=True))."""
    global _peak
    mem_alloc()
    p = _peak
    if reset:
        _peak = 0
    return p
