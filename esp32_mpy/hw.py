"""The bridge's hardware: the STM32 link on ESP32 pins, as the port object fotalink.Link uses.

    import config, hw, fotalink
    link = fotalink.Link(hw.Port(config.load()))

VSPI (SPI id 2) in mode 0, CS on a plain GPIO (held high between transactions), READY from the
STM32 as an input with a pull-down (a missing or unpowered STM32 reads "not ready"), NRST driven
open-drain (the STM32 has its own pull-up; never drive it high). Pins and baud rate come from
config.json; the defaults match the wiring table of docs/protocol.md.

NRST gets `pull=None` explicitly: the ESP32 port's Pin constructor leaves a pad's pull-up and
pull-down as they are when no `pull` is given (ports/esp32/machine_pin.c, machine_pin_obj_init_helper:
the pull is only reconfigured when the argument is not -1, None clearing both), and GPIO 4 comes out
of reset with its internal pull-down enabled (ESP32 datasheet, "IO_MUX" pin list: GPIO4 "IE=1, WPD").
Left on, that ~45 kOhm pull-down against the STM32's ~40 kOhm NRST pull-up (DS8626 R_PU) holds NRST
near 1.6 V, between V_IL and V_IH: an STM32 that may or may not run.
"""

import time

from machine import SPI, Pin

_NRST_PULSE_MS = 10   # STM32 needs > 20 us low on NRST (DS8626 NRST pulse); 10 ms is generous


class Port:
    def __init__(self, cfg):
        self.spi = SPI(cfg["spi_id"], baudrate=cfg["spi_baud"], polarity=0, phase=0, bits=8,
                       firstbit=SPI.MSB, sck=Pin(cfg["pin_sck"]), mosi=Pin(cfg["pin_mosi"]),
                       miso=Pin(cfg["pin_miso"]))
        self.cs = Pin(cfg["pin_cs"], Pin.OUT, value=1)
        self.rdy = Pin(cfg["pin_ready"], Pin.IN, Pin.PULL_DOWN)
        self.nrst = Pin(cfg["pin_nrst"], Pin.OPEN_DRAIN, pull=None, value=1)

    def transfer(self, tx, rx):
        self.cs(0)
        try:
            self.spi.write_readinto(tx, rx)
        finally:
            self.cs(1)

    def ready(self):
        return self.rdy.value() == 1

    def ticks_ms(self):
        return time.ticks_ms()

    def sleep_ms(self, n):
        time.sleep_ms(n)

    def reset_target(self):
        self.nrst(0)
        try:
            time.sleep_ms(_NRST_PULSE_MS)
        finally:  # a Ctrl-C in the pulse must not leave the STM32 in reset (a soft reset keeps GPIOs)
            self.nrst(1)
