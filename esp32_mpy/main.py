"""Boot entry of the bridge: runs an update cycle every `poll_interval_s` seconds, forever.

A cycle that fails prints its `fota: result failed ...` line and the loop goes on; an unexpected
error is printed and the loop goes on too, so that the bridge never stops polling.
"""

import time

import updater
from fotalink import BridgeError


def main():
    import config
    while True:
        try:
            interval = config.load()["poll_interval_s"]
        except BridgeError as e:
            print("fota: error " + e.reason)
            interval = config.defaults()["poll_interval_s"]
        try:
            updater.update()
        except BridgeError as e:
            print("fota: error " + e.reason)
        except Exception as e:  # keep polling whatever happened
            print("fota: error unexpected " + repr(e))
        time.sleep(interval)


main()
