"""A simulator of the STM32F407 that runs the unmodified stm32-fota firmware (docs/twin.md)."""

from .board import Stm32Twin
from .errors import TwinError, TwinFault
from .events import PS_PER_MS, PS_PER_S, PS_PER_US, Event

__all__ = ["PS_PER_MS", "PS_PER_S", "PS_PER_US", "Event", "Stm32Twin", "TwinError", "TwinFault"]
