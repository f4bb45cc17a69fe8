"""A virtual ESP32 on a pseudo-terminal: MicroPython (WebAssembly port, under Node) behind it.

    with VirtualEsp32(peer=FakePeer(), fs_dir=tmp) as esp:
        subprocess.run(["mpremote", "connect", esp.port, "exec", "print(1)"])
        esp.board          # the STM32 twin when the peer is one (see twin_peer.py), else None

One service thread owns everything on the host side: it copies bytes between the pty and the Node
runner, answers the runner's calls (Services), and free-runs the peer while the REPL is idle.
The thread holds `lock` while it touches the peer (one slice at a time); take it to inspect or
change the twin from another thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import Any

from esp32_twin.channel import Frame, FrameReader, encode_frame
from esp32_twin.errors import DeviceOSError, Esp32TwinError
from esp32_twin.hostfs import HostFs
from esp32_twin.netstack import NetStack, WifiConfig
from esp32_twin.peer import Esp32Peer
from esp32_twin.services import Services

PACKAGE_DIR = Path(__file__).resolve().parent
RUNNER = PACKAGE_DIR / "node" / "runner.mjs"
STANDINS = PACKAGE_DIR / "mpy"
NPM_PACKAGE = "@micropython/micropython-webassembly-pyscript"
HEAP_BYTES = 110 * 1024          # initial MicroPython heap, like an ESP32 without PSRAM
START_TIMEOUT_S = 30.0
OUTPUT_QUEUE_MAX = 1 << 20        # serial output kept while nobody reads the pty
TRANSCRIPT_MAX = 1 << 20          # serial output kept for transcript()
CTRL_C = 0x03
PR_SET_PDEATHSIG = 1


def find_node_modules(start: Path = PACKAGE_DIR) -> Path | None:
    """The node_modules folder that Node will search from the runner (nearest ancestor)."""
    for parent in (start, *start.parents):
        candidate = parent / "node_modules" / NPM_PACKAGE / "micropython.mjs"
        if candidate.is_file():
            return parent / "node_modules"
    return None


def _die_with_parent() -> None:
    """In the child before exec: Linux sends SIGKILL to it when the parent dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the runner's own parent-pid watchdog still ends it


class VirtualEsp32:
    """See the module docstring. `board` is passed through for the caller's convenience."""

    def __init__(
        self,
        peer: Esp32Peer | None = None,
        *,
        fs_dir: Path | None = None,
        wifi: WifiConfig | None = None,
        board: Any = None,
        heap_bytes: int = HEAP_BYTES,
        realtime: bool = True,
        node: str = "node",
        log_path: Path | None = None,
        baud: int | None = None,
    ) -> None:
        self.peer = peer
        # The UART's speed (ESP32 DevKit: 115200 baud through its USB-serial chip, 10 bits a
        # byte): bytes cross the pty no faster in either direction. None: as fast as the pty goes.
        self.baud = baud
        self._budget = {"in": 0.0, "out": 0.0}
        self._budget_at = time.monotonic()
        self.board = board
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if fs_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="vesp32-fs-")
            fs_dir = Path(self._tmp.name)
        self.fs_dir = Path(fs_dir)
        self.services = Services(peer, HostFs(self.fs_dir), NetStack(wifi), realtime=realtime)
        self.lock = self.services.lock
        self._transcript_lock = threading.Lock()
        self.heap_bytes = heap_bytes
        self.node = node
        self.log_path = log_path
        self.port = ""
        self.started_s = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._master = self._slave = self._to_node = self._from_node = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._up = threading.Event()
        self._input = bytearray()       # serial bytes from the pty not yet given to the runner
        self._output = bytearray()      # serial bytes for the pty not yet written
        self._waiting_read = False      # the runner waits for serial input (REPL idle)
        self._interrupt = False         # Ctrl-C arrived while the runner was busy
        self._booting = False           # between "boot" and "up": the stand-ins are being installed
        self._reader = FrameReader()
        self._transcript = bytearray()
        self.error: str | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> VirtualEsp32:
        """Open the pty, start the runner and wait until MicroPython runs."""
        node_modules = find_node_modules()
        if node_modules is None:
            raise Esp32TwinError(
                f"Failed to start the virtual ESP32: npm package {NPM_PACKAGE} is not installed; "
                "run `npm ci` in the repository root"
            )
        if shutil.which(self.node) is None:
            raise Esp32TwinError(f"Failed to start the virtual ESP32: `{self.node}` (Node.js) not found")
        t0 = time.monotonic()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        to_node_r, self._to_node = os.pipe()
        self._from_node, from_node_w = os.pipe()
        stderr = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [self.node, str(RUNNER), "--in-fd", str(to_node_r), "--out-fd", str(from_node_w),
                 "--lib", str(STANDINS), "--heap", str(self.heap_bytes), "--parent-pid", str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                pass_fds=(to_node_r, from_node_w), preexec_fn=_die_with_parent,
            )
        except OSError as e:
            raise Esp32TwinError(f"Failed to start the virtual ESP32: {e}") from None
        finally:
            os.close(to_node_r)
            os.close(from_node_w)
            if stderr is not None:
                stderr.close()
        self._thread = threading.Thread(target=self._serve, name="vesp32", daemon=True)
        self._thread.start()
        if not self._up.wait(START_TIMEOUT_S) or self.error:
            reason = self.error or f"MicroPython did not start within {START_TIMEOUT_S:.0f} s"
            self.stop()
            raise Esp32TwinError(f"Failed to start the virtual ESP32: {reason}")
        self.started_s = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """End the runner (the process this object started) and close the pty."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        for fd in (self._master, self._slave, self._to_node, self._from_node):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = self._to_node = self._from_node = -1
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> VirtualEsp32:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def transcript(self) -> str:
        """Everything the device printed on its serial port (the last TRANSCRIPT_MAX bytes),
        whether or not a program was reading the pty."""
        with self._transcript_lock:
            return self._transcript.decode("utf-8", "replace")

    def set_wifi(self, up: bool) -> None:
        """Take the access point away (False) or bring it back (True) while the device runs."""
        self.services.net.wifi.up = up

    # -- the service thread ----------------------------------------------------------------

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._master, selectors.EVENT_READ, "pty")
        sel.register(self._from_node, selectors.EVENT_READ, "node")
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.02):
                    if key.data == "pty":
                        self._read_pty()
                    elif not self._read_node():
                        return
                if self._waiting_read and self._input:
                    self._give_input()
                elif self._waiting_read:
                    self.services.idle()
                    if self.services.wdt_expired():   # a REPL left idle with the watchdog running
                        self._waiting_read = False
                        self._send({"r": None, "reboot": "hard"})
                self._write_pty()
        except Exception as e:  # the thread must report, not vanish
            self.error = f"service thread failed: {type(e).__name__}: {e}"
            self._up.set()
            raise
        finally:
            sel.close()

    def _read_pty(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EIO):
                return
            raise
        if not self._waiting_read and CTRL_C in data:
            # Ctrl-C while MicroPython runs: KeyboardInterrupt at its next call to the host.
            self._interrupt = True
            data = data.replace(bytes([CTRL_C]), b"", 1)
        self._input += data

    def _poll_interrupt(self) -> bool:
        """For long calls (sleep, socket waits): has Ctrl-C arrived (or is the device stopping)?"""
        if self._stop.is_set():
            return True
        self._read_pty()
        return self._interrupt

    def _read_node(self) -> bool:
        try:
            data = os.read(self._from_node, 65536)
        except BlockingIOError:
            return True
        if not data:
            if not self._stop.is_set():
                code = self._proc.poll() if self._proc else None
                self.error = f"the MicroPython runner exited (code {code})"
            self._up.set()
            return False
        for frame in self._reader.feed(data):
            self._handle(frame)
        return True

    def _send(self, header: dict[str, Any], binary: bytes = b"") -> None:
        data = encode_frame(header, binary)
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._to_node, view)
            except BrokenPipeError:
                return
            view = view[n:]

    def _refill(self) -> None:
        """Token buckets of the UART: baud/10 bytes a second each way, at most 20 ms' worth saved."""
        now = time.monotonic()
        if self.baud:
            rate = self.baud / 10.0
            for k in self._budget:
                self._budget[k] = min(self._budget[k] + (now - self._budget_at) * rate,
                                      max(1.0, rate * 0.02))
        self._budget_at = now

    def _allowance(self, way: str, want: int) -> int:
        if not self.baud:
            return want
        self._refill()
        n = min(want, int(self._budget[way]))
        self._budget[way] -= n
        return n

    def _refund(self, n: int) -> None:
        if self.baud:
            self._budget["out"] += n

    def _give_input(self) -> None:
        n = self._allowance("in", len(self._input))
        if n == 0 and not self._interrupt:
            return
        data = bytes(self._input[:n])
        del self._input[:n]
        if self._interrupt:  # a Ctrl-C that came too late to interrupt anything
            self._interrupt = False
            data = b"\x03" + data
        self._waiting_read = False
        self._send({"r": None}, data)

    def _handle(self, frame: Frame) -> None:
        op = frame.header.get("op")
        if op == "out":
            with self._transcript_lock:
                self._transcript += frame.binary
                if len(self._transcript) > TRANSCRIPT_MAX:
                    del self._transcript[: len(self._transcript) - TRANSCRIPT_MAX]
            self._output += frame.binary
            if len(self._output) > OUTPUT_QUEUE_MAX:
                del self._output[: len(self._output) - OUTPUT_QUEUE_MAX]
            self._write_pty()
            return
        if op == "serial_read":
            self._up.set()
            self._waiting_read = True
            self.services.settle()
            if self._input or self._interrupt:
                self._give_input()
            return
        if op == "up":
            self._booting = False
            self._up.set()
            self._send({"r": None})
            return
        if op == "boot":
            self._booting = True
        args = frame.header.get("a") or []
        header: dict[str, Any] = {}
        binary = b""
        try:
            reply = self.services.handle(str(op), list(args), frame.binary, self._poll_interrupt)
            header["r"] = reply.value
            binary = reply.binary
            if reply.reboot:
                header["reboot"] = reply.reboot
        except DeviceOSError as e:
            header["e"] = e.name
            header["m"] = e.message
        # A Ctrl-C during the runtime's own start-up waits: it would abort the installation of the
        # stand-ins. It interrupts boot.py/main.py, or reaches the REPL as a character.
        if self._interrupt and not self._booting:
            self._interrupt = False
            header["i"] = 1
        self._send(header, binary)

    def _write_pty(self) -> None:
        while self._output:
            allowed = self._allowance("out", min(len(self._output), 4096))
            if not allowed:
                return
            try:
                n = os.write(self._master, self._output[:allowed])
            except BlockingIOError:
                self._refund(allowed)
                return
            except OSError as e:
                if e.errno == errno.EIO:
                    return
                raise
            self._refund(allowed - n)
            del self._output[:n]
