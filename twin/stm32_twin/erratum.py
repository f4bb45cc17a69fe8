"""Cortex-M4 erratum 838869 (ARM errata notice; ST lists it in ES0182 section 1): a store
immediately before an exception return can still be in the write buffer when the return decides
which exception comes next; if another exception tail-chains then, a late change in that choice
can make the core acknowledge one interrupt and fetch the vector of another. The workaround is a
DSB between the store and the return.

The twin watches the exception handlers it enters: a block hook over the first ``SPAN`` bytes of
each vector taken records the last basic block run there. At an exception return that tail-chains,
the block that ended with the return is decoded; when the instruction before the return is a store
(STR, STRB, STRH, STRD, STM, PUSH, VSTR, VSTM), that is reported: a fault in strict mode, a warning
otherwise. Any store counts, SRAM included: the erratum needs a store that waits on the bus, and
the SRAM does when the DMA writes it at the same time.

Hooks are added between CPU slices (Unicorn does not survive changes made from inside its
callbacks), so a handler is watched from its second run on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unicorn import UC_HOOK_BLOCK, Uc

if TYPE_CHECKING:
    from .faults import Faults

SPAN = 0x100  # bytes watched from a vector: the handlers of this firmware are shorter


def _size(hw: int) -> int:
    return 4 if hw >> 11 in (0b11101, 0b11110, 0b11111) else 2


def is_return(hw1: int, hw2: int) -> bool:
    """BX LR, POP {..., PC}, POP.W {..., PC}, LDR.W PC, [SP], #4 (ARMv7-M ARM A7.7)."""
    return (hw1 == 0x4770 or hw1 & 0xFF00 == 0xBD00 or (hw1 == 0xE8BD and bool(hw2 & 0x8000))
            or (hw1 == 0xF85D and hw2 == 0xFB04))


def is_store(hw1: int) -> bool:
    """A store to memory, from the first halfword (ARMv7-M ARM A5.2, A5.3)."""
    if _size(hw1) == 2:
        return (hw1 >> 11 in (0b01100, 0b01110, 0b10000, 0b10010, 0b11000)   # STR/STRB/STRH imm, SP, STM
                or hw1 >> 9 in (0b0101000, 0b0101001, 0b0101010, 0b1011010))  # STR/STRH/STRB reg, PUSH
    if hw1 & 0x10:
        return False                            # L = 1: a load
    return (hw1 & 0xFF00 == 0xF800              # STR/STRB/STRH (.W, immediate, register)
            or hw1 & 0xFE00 == 0xE800           # STM, STRD, STREX
            or hw1 & 0xFE00 == 0xEC00 or hw1 & 0xFF00 == 0xED00)  # VSTM, VPUSH, VSTR


class StoreBeforeReturn:
    """The erratum 838869 check. ``entered(vector)`` at each exception entry, ``install()``
    between slices, ``returning()`` at each exception return, ``tail_chained(exc)`` after it."""

    def __init__(self, uc: Uc, faults: Faults) -> None:
        self.uc = uc
        self.faults = faults
        self.watched: set[int] = set()
        self.pending: list[int] = []
        self.last: tuple[int, int] | None = None   # (address, size) of the last watched block
        self.store_pc: int | None = None           # the store right before the current return
        self.seen_return = False                   # the current return ended a watched block
        self.checked = 0                           # tail-chains at returns the check could see

    def entered(self, vector: int) -> None:
        self.last = None
        vector &= ~1  # the Thumb bit
        if vector not in self.watched:
            self.watched.add(vector)
            self.pending.append(vector)

    def install(self) -> None:
        for v in self.pending:
            self.uc.hook_add(UC_HOOK_BLOCK, self._block, begin=v, end=v + SPAN - 1)
            self.uc.ctl_remove_cache(v, v + SPAN)   # blocks translated before the hook
        self.pending.clear()

    def _block(self, uc: Uc, address: int, size: int, _ud: object) -> None:
        self.last = (address, size)

    def returning(self) -> None:
        """An exception return: find the store right before it, if the return ended the last
        watched block."""
        self.store_pc = None
        self.seen_return = False
        last, self.last = self.last, None
        if last is None:
            return
        start, size = last
        try:
            code = bytes(self.uc.mem_read(start, size))
        except Exception:
            return
        pcs = []
        at = 0
        while at + 2 <= len(code):
            pcs.append(at)
            at += _size(int.from_bytes(code[at:at + 2], "little"))
        if len(pcs) < 2:
            return

        def hw(off: int) -> int:
            return int.from_bytes(code[off:off + 2], "little") if off + 2 <= len(code) else 0

        ret, prev = pcs[-1], pcs[-2]
        if is_return(hw(ret), hw(ret + 2)):
            self.seen_return = True
            if is_store(hw(prev)):
                self.store_pc = start + prev

    def tail_chained(self, exc: int) -> None:
        self.checked += self.seen_return
        if self.store_pc is None:
            return
        pc, self.store_pc = self.store_pc, None
        message = (f"store at 0x{pc:08X} right before an exception return, no DSB between, and "
                   f"exception {exc} tail-chains: Cortex-M4 erratum 838869 may take the wrong interrupt")
        if self.faults.strict:
            self.faults.fail(message)
        else:
            self.faults.warn(message)
