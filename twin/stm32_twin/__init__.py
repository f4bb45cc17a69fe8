"""A simulator of the STM32F407 that runs the unmodified stm32-fota firmware (docs/twin.md).

It knows the chip from ST's documents only (chip.py) and imports nothing of the project."""

from .board import DEFAULT_UID, Stm32Twin
from .errors import TwinError, TwinFault
from .events import PS_PER_MS, PS_PER_S, PS_PER_US, Event
from .flash import ERASE_MS, PROGRAM_US, FlashOp

__all__ = ["DEFAULT_UID", "ERASE_MS", "PROGRAM_US", "PS_PER_MS", "PS_PER_S", "PS_PER_US", "Event", "FlashOp",
           "Stm32Twin", "TwinError", "TwinFault"]
