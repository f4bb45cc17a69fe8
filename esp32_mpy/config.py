"""Configuration of the bridge: config.json on the device, written by `invoke deploy-esp32`.

    import config
    cfg = config.load()            # the defaults below, overridden by config.json
    cfg["server"]                  # "http://192.168.1.10:8000"

The file holds secrets (Wi-Fi password, device token): it is written to the device and never
committed. Unknown keys are kept; a missing file means "defaults only".
"""

import json

from fotalink import BridgeError

PATH = "config.json"


def defaults():
    return {
        "wifi_ssid": "",            # empty: the network is already up (or not needed)
        "wifi_password": "",
        "wifi_retries": 3,
        "wifi_timeout_ms": 10000,
        "server": "",               # base URL of the update server, https://host:port (or http://)
        "token": "",                # device token: Authorization: Bearer <token>
        "group": "",                # fleet group reported at check-in (an operator's setting wins); "" none
        "ca_file": "ca.pem",        # CA certificates (PEM) for https:// (deploy-esp32 --ca)
        "ntp_host": "pool.ntp.org", # sets an unset clock before TLS (certificate dates); "" disables
        "http_timeout_s": 10,
        "http_retries": 3,          # reconnections (HTTP Range) per chunk after a network error
        "spi_id": 2,                # VSPI
        "spi_baud": 10000000,       # SPI2 slave limit of the STM32 is 10.5 MHz (docs/protocol.md)
        "pin_sck": 18,
        "pin_mosi": 23,
        "pin_miso": 19,
        "pin_cs": 5,
        "pin_ready": 27,
        "pin_nrst": 4,
        "reset": "command",         # "command" (RESET frame) or "nrst" (pulse the NRST line)
        "poll_interval_s": 3600,    # main.py: time between update cycles
        "start_delay_s": 60,        # main.py: wait after boot before the first cycle
        "retry_min_s": 60,          # first retry after a failed cycle, doubled up to poll_interval_s
        "wdt_timeout_s": 300,       # machine.WDT: no console line this long resets the board; 0: off
        "pending_file": "fota_pending.json",  # update activated by an interrupted cycle, to report
        "confirm_timeout_s": 60,    # how long the new image may take to confirm itself
    }


def load(path=PATH):
    cfg = defaults()
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return cfg
    try:
        cfg.update(json.loads(text))
    except ValueError:
        raise BridgeError(f"Failed to read {path}: not valid JSON") from None
    return cfg
