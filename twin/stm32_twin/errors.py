"""Exceptions of the STM32 twin."""

from __future__ import annotations


class TwinError(Exception):
    """A usage error of the twin API (bad file, bad argument): the message says what is wrong."""


class TwinFault(TwinError):
    """The simulated firmware did something the twin refuses in strict mode (or crashed).

    ``message`` names the address, access width, PC and symbol when known.
    """
