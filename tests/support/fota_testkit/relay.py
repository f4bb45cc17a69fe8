"""A TCP relay on loopback between the bridge and the update server: the network path of the
scenarios, with small buffers, that a test can cut.

    relay = Relay(server_port).start(); url = relay.url     # give this URL to the bridge
    Relay(server_port, scheme="https")                      # the same bytes; the URL says https
    relay.cut()                                             # every open connection is reset
    relay.cut_after = 100_000     # reset them once that many more bytes went towards the client

On loopback the kernel buffers a whole image between two processes, so a restarted server would
never break a download in progress. A real network holds far less in flight: the relay forwards
in 1 KB steps through 4 KB socket buffers, and ``cut`` resets the connections it carries, which
is what the bridge sees when the server goes away in the middle of a response.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

BUF = 4096
STEP = 1024
ACCEPT_POLL_S = 0.1


class Relay:
    def __init__(self, target_port: int, scheme: str = "http") -> None:
        self.target_port = target_port
        self.scheme = scheme
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.settimeout(ACCEPT_POLL_S)
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.cuts = 0
        self.bytes_down = 0                    # bytes forwarded from the target to the clients
        self.cut_after: int | None = None      # cut once bytes_down grew by this much (then None)
        self._cut_base: int | None = None
        self.thread = threading.Thread(target=self._accept, name="relay", daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Relay:
        self.listener.listen(8)
        self.thread.start()
        return self

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUF)
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUF)
            try:
                upstream.connect(("127.0.0.1", self.target_port))
            except OSError:
                self._reset(client)
                upstream.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b, down in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(a, b, down), daemon=True).start()

    def _count(self, n: int) -> bool:
        """Count bytes towards the client; True when cut_after is reached (the caller cuts)."""
        with self.lock:
            if self.cut_after is not None and self._cut_base is None:
                self._cut_base = self.bytes_down
            self.bytes_down += n
            if self.cut_after is not None and self.bytes_down - (self._cut_base or 0) >= self.cut_after:
                self.cut_after = None
                self._cut_base = None
                return True
        return False

    def _pump(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            while True:
                data = src.recv(STEP)
                if not data:
                    break
                if down and self._count(len(data)):
                    self.cut()
                    return
                dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
        except OSError:
            self._reset(dst)

    @staticmethod
    def _reset(s: socket.socket) -> None:
        """Close with RST (SO_LINGER 0), as a vanished peer does."""
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            s.close()

    def cut(self) -> None:
        """Reset every connection the relay carries now."""
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            self._reset(s)
        self.cuts += 1

    def stop(self) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        self.cut()
        self.thread.join(2)
