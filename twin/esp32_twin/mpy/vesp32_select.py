"""The virtual ESP32's `select`: the build's, except that the console cannot be polled.

    import select, sys
    select.poll().register(sys.stdin.buffer, select.POLLIN)   # OSError EOPNOTSUPP here

On a board, a program can read the console (UART0) while it runs; `mpremote mount` relies on it
(its remote file system talks over sys.stdin/sys.stdout with Ctrl-C disabled). The WebAssembly
runner feeds the console only to the REPL, so a poll of sys.stdin would report it readable while
readinto returns nothing, and mount's reader would spin forever with Ctrl-C off. Refusing the
registration makes `mpremote mount` fail at once with a clear message and leaves the device usable.
"""

import sys
from select import *  # noqa: F403 - POLLIN, POLLOUT, POLLERR, POLLHUP, select()
from select import poll as _poll

_WHY = "virtual ESP32: the console cannot be read by a running program (mpremote mount is not supported)"


def _is_console(obj):
    return obj is sys.stdin or obj is getattr(sys.stdin, "buffer", None)


class _Poll:
    def __init__(self):
        self._p = _poll()

    def register(self, obj, *mask):
        if _is_console(obj):
            raise OSError(95, _WHY)    # EOPNOTSUPP
        self._p.register(obj, *mask)

    def unregister(self, obj):
        self._p.unregister(obj)

    def modify(self, obj, mask):
        self._p.modify(obj, mask)

    def poll(self, *timeout):
        return self._p.poll(*timeout)

    def ipoll(self, *args):
        return self._p.ipoll(*args)


def poll():
    return _Poll()
