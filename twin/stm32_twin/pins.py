"""The pins of the STM32F4-Discovery: GPIO ports A-E, what a level change does (a 'pin' event, an
'led' event for PD12-PD15, an EXTI edge on the line SYSCFG selects, RM0090 12.2.5), and the names
the outside world uses for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import TwinError
from .periph.gpio import GpioPort

if TYPE_CHECKING:
    from .events import EventLog
    from .faults import Faults
    from .periph.gpio import Exti, Syscfg
    from .power import Supply

LEDS = {12: "green", 13: "orange", 14: "red", 15: "blue"}  # STM32F4-Discovery, port D
PIN_ALIASES = {"NSS": "PB12", "READY": "PB11", "SCK": "PB13", "MISO": "PB14", "MOSI": "PB15",
               "USART2_TX": "PA2", "BUTTON": "PA0",
               "green": "PD12", "orange": "PD13", "red": "PD14", "blue": "PD15"}


class Pins:
    def __init__(self, faults: Faults, supply: Supply, log: EventLog, syscfg: Syscfg, exti: Exti) -> None:
        self.log = log
        self.syscfg = syscfg
        self.exti = exti
        self.ports = {c: GpioPort(faults, c, supply, self.changed) for c in "ABCDE"}

    def changed(self, port: str, pin: int, level: int) -> None:
        if port == "D" and pin in LEDS:
            self.log.emit("led", {"led": LEDS[pin], "on": bool(level)})
        self.log.emit("pin", {"pin": f"P{port}{pin}", "level": level})
        if self.syscfg.port_of_line(pin) == port:
            self.exti.edge(pin, rising=bool(level))

    def resolve(self, name: str) -> tuple[str, int]:
        """'PB11', or an alias such as 'READY' -> ('B', 11)."""
        n = PIN_ALIASES.get(name, name)
        if len(n) < 3 or n[0] != "P" or n[1] not in self.ports or not n[2:].isdigit() or int(n[2:]) > 15:
            raise TwinError(f"Failed to find pin {name!r}: use a name like 'PB11' or one of "
                            f"{', '.join(sorted(PIN_ALIASES))}, or 'NRST'")
        return n[1], int(n[2:])

    def level(self, name: str) -> int:
        port, pin = self.resolve(name)
        return self.ports[port].level(pin)

    def drive(self, name: str, level: int | None) -> None:
        port, pin = self.resolve(name)
        self.ports[port].set_external(pin, level)

    @property
    def leds(self) -> dict[str, bool]:
        return {colour: bool(self.ports["D"].level(pin)) for pin, colour in LEDS.items()}
