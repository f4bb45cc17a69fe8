"""Start-up of the virtual ESP32's MicroPython runtime (run by the Node runner at every reset).

    import vesp32_boot
    vesp32_boot.install()            # stand-in modules + flash filesystem at "/"
    vesp32_boot.run_file("boot.py", globals())  # skipped when absent, like the port

After install() the runtime looks like an ESP32's: `import machine, network, socket, ssl, tls, time,
gc, errno, os, esp, esp32` give the stand-ins, "/" is the flash filesystem and sys.path is the port's.
"""

import sys


def install():
    import os
    import socket
    import ssl

    import esp
    import esp32
    import flashfs
    import machine
    import network
    import tls
    import vesp32_errno
    import vesp32_host
    import vesp32_os
    import vesp32_select
    import vfs
    import vgc
    import vtime

    for name, module in (("time", vtime), ("utime", vtime), ("gc", vgc), ("usocket", socket),
                         ("socket", socket), ("machine", machine), ("network", network), ("tls", tls),
                         ("ssl", ssl), ("errno", vesp32_errno), ("uerrno", vesp32_errno), ("os", vesp32_os),
                         ("uos", vesp32_os), ("esp", esp), ("esp32", esp32), ("select", vesp32_select),
                         ("uselect", vesp32_select)):
        sys.modules[name] = module
    vfs.umount("/")
    vfs.mount(flashfs.FlashFs(), "/")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]
    vesp32_host.set_sampler(vgc.mem_alloc)
    # The runner calls vgc.set_base() next, in a call of its own, once this one's garbage is gone.


def run_file(name, main_globals):
    """Execute a file of the flash filesystem in the REPL's globals (the runner passes them),
    printing any exception like pyexec does."""
    try:
        try:
            with open(name) as f:
                source = f.read()
        except (OSError, KeyboardInterrupt):  # absent, or Ctrl-C before it started
            return
        exec(source, main_globals)
    except SystemExit:
        pass
    except BaseException as e:  # KeyboardInterrupt included: the REPL comes next, as on a board
        sys.print_exception(e)
