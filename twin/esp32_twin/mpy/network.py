"""Stand-in for the ESP32 port's `network` module on the virtual ESP32 (station interface only).

    import network
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    wlan.connect("ssid", "password")
    while not wlan.isconnected(): ...
    ip, mask, gw, dns = wlan.ifconfig()

The host decides whether the network is reachable (VirtualEsp32(wifi=...)), so a test can take
Wi-Fi down. Sockets fail with EHOSTUNREACH while the station is not connected.
"""

import json

from vesp32_host import call

STA_IF = 0
AP_IF = 1

STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_BEACON_TIMEOUT = 200
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204


class WLAN:
    def __init__(self, interface_id=STA_IF):
        if interface_id != STA_IF:
            raise ValueError("virtual ESP32: only STA_IF is supported")

    def active(self, is_active=None):
        if is_active is None:
            return call("wifi_active", None)
        call("wifi_active", bool(is_active))
        return None

    def connect(self, ssid=None, key=None, *, bssid=None):
        call("wifi_connect", ssid, key)

    def disconnect(self):
        call("wifi_disconnect")

    def isconnected(self):
        return call("wifi_status") == STAT_GOT_IP

    def status(self, param=None):
        if param == "rssi":
            return -60
        return call("wifi_status")

    def ifconfig(self, config=None):
        if config is not None:
            return None
        return tuple(json.loads(call("wifi_ifconfig")))

    def config(self, *args, **kwargs):
        if args == ("mac",):
            import machine
            return machine.unique_id()
        if args == ("essid",) or args == ("ssid",):
            return call("wifi_ssid") or ""
        return None

    def scan(self):
        return []


def hostname(name=None):
    return "vesp32" if name is None else None
