"""Certificates and TLS servers for the HTTPS tests, made with the product's `invoke certs` code.

    pki = make_pki(tmp_path)             # a CA, its certificates for 127.0.0.1/localhost and for
                                         # localhost only, and a second CA that signed nothing served
    with TlsEchoServer(pki.cert, pki.key) as srv:   # answers a line with its upper-case copy
        ...srv.port...
    https_moto(folder, pki)              # moto's S3 server over HTTPS with pki.cert (context manager)
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fota_lab import locals3
from stm32_fota.certs import make_certs


@dataclass(frozen=True)
class Pki:
    ca: Path              # the CA that signed cert and named_cert
    cert: Path            # for 127.0.0.1 and localhost
    key: Path
    named_cert: Path      # for localhost only (a bridge that asks for 127.0.0.1 must refuse it)
    named_key: Path
    other_ca: Path        # a CA of its own: trusting it alone, a bridge refuses every certificate above


def make_pki(folder: Path) -> Pki:
    main = make_certs(folder / "main", ["127.0.0.1", "localhost"])
    cert, key = folder / "server-ip.pem", folder / "server-ip.key"
    shutil.copy(main.files.server_cert, cert)
    shutil.copy(main.files.server_key, key)
    named = make_certs(folder / "main", ["localhost"], force=True)
    other = make_certs(folder / "other", ["127.0.0.1"])
    return Pki(main.files.ca_cert, cert, key, named.files.server_cert, named.files.server_key,
               other.files.ca_cert)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class TlsEchoServer:
    """On loopback, per connection: TLS handshake, read a line, answer it in upper case, then end
    the session with a close_notify (``close_notify``) or by closing the TCP connection alone.
    ``plain``: no TLS at all (what a TLS client sees when it reaches an HTTP server)."""

    def __init__(self, cert: Path, key: Path, close_notify: bool = True, plain: bool = False) -> None:
        self.ctx = server_context(cert, key)
        self.close_notify = close_notify
        self.plain = plain
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> TlsEchoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            try:
                self._one(conn)
            except (OSError, ssl.SSLError) as e:
                self.errors.append(str(e))
            finally:
                conn.close()

    def _one(self, conn: socket.socket) -> None:
        if self.plain:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        tls = self.ctx.wrap_socket(conn, server_side=True)
        self.handshakes += 1
        line = b""
        while not line.endswith(b"\n"):
            data = tls.recv(256)
            if not data:
                return
            line += data
        tls.sendall(line.upper())
        if self.close_notify:
            tls.unwrap()


@contextlib.contextmanager
def https_moto(folder: Path, cert: Path, key: Path) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 over HTTPS with ``cert``; yields its endpoint URL."""
    port = locals3.free_port()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "moto-https.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port),
                                 "-c", str(cert), "-k", str(key)], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        locals3.wait_port(port, proc, 30)
        yield f"https://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
