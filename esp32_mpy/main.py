"""Boot entry of the bridge: an update cycle, then the next one after `poll_interval_s` seconds
(sooner after a failure: `retry_min_s`, doubled each time), forever (updater.run_forever).

A cycle that fails prints its `fota: result failed ...` line and the loop goes on; an unexpected
error is printed and the loop goes on too, so that the bridge never stops polling. The watchdog
(`wdt_timeout_s`, see updater.watchdog) resets a board whose cycle hangs.
"""

import updater

updater.run_forever()
