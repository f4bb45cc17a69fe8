"""A stand-in for the update server's device API, for the bridge's tests and benchmarks.

    with FakeServer(image, "1.1.0", "B") as srv:    # offers `image` for Slot B at the next check-in
        config = {"server": srv.url}                # what the bridge talks to
        ...
    srv.checkins, srv.reports, srv.ranges           # what the bridge sent and asked for

Check-in, firmware download with Range, and report, on 127.0.0.1 (a port of its own), with switches
for the failures the bridge must survive: an error status at check-in (``checkin_status``), a
connection dropped in the middle of a download (``drop_after``). Reports are checked as the real
server's Report model checks them, so that a bridge sending what the server refuses fails here too.
``tls=(certificate, key)`` serves HTTPS, each session ended with a close_notify as uvicorn does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fota_formats.image import image_counter


class TlsHTTPServer(ThreadingHTTPServer):
    """HTTPS: the handshake in the handler's thread, a close_notify before each connection closes."""

    ctx: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        return self.ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr

    def shutdown_request(self, request: Any) -> None:
        with contextlib.suppress(OSError, ValueError):
            request.unwrap()
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that refused the certificate: nothing to report


class FakeServer:
    """Offers one image (``offer_release`` changes it) and records every request."""

    def __init__(self, image: bytes, version: str, target: str, downgrade: bool = False,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.image = image
        self.offer: dict[str, Any] | None = None
        self.file_url = ""
        self.offer_release(image, version, target, downgrade, update_id=17)
        self.checkins: list[dict[str, Any]] = []
        self.reports: list[dict[str, Any]] = []
        self.ranges: list[int] = []
        self.served = 0
        self.checkin_status = 200
        self.drop_after: int | None = None     # close the next download after this many bytes
        self.auth: list[str | None] = []
        if tls:
            self.httpd: ThreadingHTTPServer = TlsHTTPServer(("127.0.0.1", 0), self._handler())
            self.httpd.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # type: ignore[attr-defined]
            self.httpd.ctx.load_cert_chain(*tls)  # type: ignore[attr-defined]
        else:
            self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def offer_release(self, image: bytes, version: str, target: str, downgrade: bool = False,
                      update_id: int = 17) -> None:
        """What the next check-in is offered."""
        self.image = image
        self.file_url = f"/api/v1/firmware/{version}/slot-{target.lower()}.bin"
        self.offer = {
            "update": True, "update_id": update_id, "version": version, "target_slot": target,
            "url": self.file_url, "size": len(image),
            "sha256": hashlib.sha256(image).hexdigest(), "downgrade": downgrade,
            "security_counter": image_counter(image) or 0}

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _json(self, code: int, doc: object) -> None:
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                doc = json.loads(self.rfile.read(n))
                srv.auth.append(self.headers.get("Authorization"))
                if self.path == "/api/v1/checkin":
                    srv.checkins.append(doc)
                    if srv.checkin_status != 200:
                        self._json(srv.checkin_status, {"detail": "database unavailable"})
                    else:
                        self._json(200, srv.offer or {"update": False, "reason": "up to date"})
                elif self.path == "/api/v1/report":
                    # The checks of the real server's Report model that a bridge could trip.
                    if doc.get("outcome") not in (None, "confirmed", "reverted", "failed") \
                            or doc.get("stage") not in ("progress", "result") \
                            or len(doc.get("reason") or "") > 500 or len(doc.get("device_id", "")) != 24:
                        self._json(422, {"detail": "invalid report"})
                        return
                    srv.reports.append(doc)
                    self._json(200, {"ok": True})
                else:
                    self._json(404, {"detail": "not found"})

            def do_GET(self) -> None:
                if self.path != srv.file_url:
                    self._json(404, {"detail": "not found"})
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                srv.ranges.append(start)
                body = srv.image[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if srv.drop_after is not None:
                    cut, srv.drop_after = srv.drop_after, None
                    self.wfile.write(body[:cut])
                    srv.served += cut
                    self.close_connection = True
                    return
                self.wfile.write(body)
                srv.served += len(body)

        return Handler
