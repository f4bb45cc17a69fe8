"""Fast batch access to a fixed set of CPU registers (one ctypes call per batch).

The Python binding's ``reg_read_batch`` resolves the class of every register on every call, which
made exception entry and return the largest host cost of a sleeping firmware (1000 SysTick
interrupts per virtual second). All registers used here are 32-bit.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

from unicorn import Uc, UcError
from unicorn.unicorn_py3.unicorn import uclib


class RegBank:
    def __init__(self, uc: Uc, regs: Sequence[int]) -> None:
        n = len(regs)
        self._uc = uc
        self._n = n
        self._ids = (ctypes.c_int32 * n)(*regs)
        self._vals = (ctypes.c_uint32 * n)()
        base = ctypes.addressof(self._vals)
        self._ptrs = (ctypes.c_void_p * n)(*(base + 4 * i for i in range(n)))

    def read(self) -> list[int]:
        status = uclib.uc_reg_read_batch(self._uc._uch, self._ids, self._ptrs, self._n)
        if status:
            raise UcError(status)
        return self._vals[:]

    def write(self, values: Sequence[int]) -> None:
        self._vals[:] = [v & 0xFFFF_FFFF for v in values]
        status = uclib.uc_reg_write_batch(self._uc._uch, self._ids, self._ptrs, self._n)
        if status:
            raise UcError(status)
