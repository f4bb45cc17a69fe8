"""The bridge's HTTP client (esp32_mpy/net.py) under CPython against a raw TCP server that sends
scripted bytes in scripted pieces: the end of the head split across reads, JSON answers longer
than the 1 KB head buffer they are read into first, and the limits."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator

import net
import pytest
from fotalink import BridgeError


class RawServer:
    """Answers every connection with `pieces`, each sent on its own after a short pause."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.pieces: list[bytes] = []
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(4096)
                self.requests.append(head + b"\r\n\r\n" + body)
                for piece in self.pieces:
                    conn.sendall(piece)
                    time.sleep(0.02)   # the client sees each piece as its own read

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw() -> Iterator[RawServer]:
    srv = RawServer()
    yield srv
    srv.close()


def _answer(doc: object, length: bool = True) -> bytes:
    body = json.dumps(doc).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    if length:
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


def test_head_end_split_across_reads(raw: RawServer) -> None:
    whole = _answer({"ok": True, "n": 7})
    cut = whole.index(b"\r\n\r\n") + 3          # the last LF of the head arrives alone
    for split in ([whole[:cut], whole[cut:]], [whole[:cut - 2], whole[cut - 2:cut], whole[cut:]]):
        raw.pieces = split
        assert net.Http(raw.url).post_json("/api/v1/checkin", {"a": 1}) == {"ok": True, "n": 7}
    assert raw.requests[-1].endswith(b'{"a": 1}')


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
def test_json_answer_longer_than_the_head_buffer(raw: RawServer, length: bool) -> None:
    doc = {"url": "x" * 2500, "list": list(range(200))}   # > 1 KB, < 4 KB
    whole = _answer(doc, length)
    cut = whole.index(b"\r\n\r\n") + 4
    raw.pieces = [whole[:cut + 10], whole[cut + 10:cut + 1500], whole[cut + 1500:]]
    assert net.Http(raw.url).post_json("/api/v1/checkin", {}) == doc


def test_json_answer_of_exactly_the_limit(raw: RawServer) -> None:
    doc = {"pad": ""}
    doc["pad"] = "y" * (4096 - len(json.dumps(doc).encode()))
    raw.pieces = [_answer(doc)]
    assert net.Http(raw.url).post_json("/x", {}) == doc


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
def test_json_answer_beyond_the_limit_is_refused(raw: RawServer, length: bool) -> None:
    raw.pieces = [_answer({"pad": "z" * 5000}, length)]
    with pytest.raises(BridgeError, match="Failed to receive the answer to POST /x: longer than 4096 bytes"):
        net.Http(raw.url).post_json("/x", {})


def test_headers_beyond_the_head_buffer_are_refused(raw: RawServer) -> None:
    raw.pieces = [b"HTTP/1.1 200 OK\r\nX-Pad: " + b"p" * 1100 + b"\r\n\r\n{}"]
    with pytest.raises(BridgeError, match="Failed to POST /x: response headers longer than 1024 bytes"):
        net.Http(raw.url).post_json("/x", {})


def test_body_bytes_that_came_with_the_head_start_the_stream(raw: RawServer) -> None:
    data = bytes(range(256)) * 20
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data)
    raw.pieces = [head + data[:100], data[100:3000], data[3000:]]
    body = net.Http(raw.url).get("/img.bin")
    try:
        buf = bytearray(len(data))
        mv = memoryview(buf)
        body.readfull(mv[:4000])
        body.readfull(mv[4000:])
        assert bytes(buf) == data and body.readinto(mv) == 0
    finally:
        body.close()


def test_header_names_in_any_case_and_spacing(raw: RawServer) -> None:
    body = b'{"k": 1}'
    raw.pieces = [b"HTTP/1.1 200 OK\r\nServer: x\r\n  cONTENT-lENGTH :  8 \r\nNoColonLine\r\n"
                  b"Transfer-Encoding: IDENTITY\r\n\r\n" + body + b"trailing bytes beyond the length"]
    assert net.Http(raw.url).post_json("/x", {}) == {"k": 1}


@pytest.mark.parametrize(("head", "reason"), [
    (b"HTTP/1.1 200 OK\r\ncontent-length: 12x\r\n\r\n", "bad Content-Length 12x"),
    (b"HTTP/1.1 200 OK\r\nContent-Length\r\n\r\n", r"bad Content-Length $"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "transfer encoding chunked is not supported"),
    (b"HTTP/1.1 2xx OK\r\n\r\n", "bad status line HTTP/1.1 2xx OK"),
    (b"SSH-2.0-x\r\n\r\n", "not an HTTP response"),
])
def test_bad_heads_are_named(raw: RawServer, head: bytes, reason: str) -> None:
    raw.pieces = [head]
    with pytest.raises(BridgeError, match="Failed to POST /x: " + reason):
        net.Http(raw.url).post_json("/x", {})


def test_error_status_with_its_reason(raw: RawServer) -> None:
    raw.pieces = [b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"]
    with pytest.raises(BridgeError, match=r"Failed to POST /x: server answered 503 busy$"):
        net.Http(raw.url).post_json("/x", {})


def test_request_bytes(raw: RawServer) -> None:
    port = raw.url.rsplit(":", 1)[1]
    raw.pieces = [_answer({})]
    net.Http(raw.url, token="tk").post_json("/api/v1/report", {"a": 1})
    assert raw.requests[-1] == (
        b"POST /api/v1/report HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode() + b"\r\nConnection: close\r\n"
        b"User-Agent: stm32-fota-bridge\r\nAuthorization: Bearer tk\r\nContent-Type: application/json\r\n"
        b'Content-Length: 8\r\n\r\n{"a": 1}')
    raw.pieces = [b"HTTP/1.1 206 Partial Content\r\nContent-Length: 0\r\n\r\n"]
    net.Http(raw.url + "/base/").get("/img.bin", offset=4096).close()
    assert raw.requests[-1] == (
        b"GET /base/img.bin HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode() + b"\r\nConnection: close\r\n"
        b"User-Agent: stm32-fota-bridge\r\nRange: bytes=4096-\r\n\r\n")


@pytest.mark.parametrize(("url", "parts"), [
    ("http://10.0.0.2:8080/base", (False, "10.0.0.2", 8080, "/base")),
    ("https://10.0.0.2:8443", (True, "10.0.0.2", 8443, "/")),
    ("https://fw.s3.amazonaws.com/k/b.bin?X-Amz-Signature=ab:cd",
     (True, "fw.s3.amazonaws.com", 443, "/k/b.bin?X-Amz-Signature=ab:cd")),
    ("http://server.lan/", (False, "server.lan", 80, "/")),
])
def test_split_url(url: str, parts: tuple[bool, str, int, str]) -> None:
    assert net.split_url(url) == parts


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://x/y", "only http:// and https:// are supported"),
    ("https://x:44a/y", "bad port"),
    ("https://:443/y", "no host"),
    ("https://s3:x/k?X-Amz-Signature=secret", r"Failed to parse URL https://s3:x/k\?\.\.\.: bad port"),
])
def test_bad_urls_are_named_without_their_query(url: str, reason: str) -> None:
    with pytest.raises(BridgeError, match=reason) as e:
        net.split_url(url)
    assert "secret" not in e.value.reason


def test_host_header_leaves_out_the_scheme_s_port_and_the_token_stays_with_the_server(
        raw: RawServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A presigned URL is signed for its host as written (no :80, no :443), and it must not carry
    the device token: S3 would refuse two authentications, and the token is the server's."""
    real = socket.getaddrinfo
    port = int(raw.url.rsplit(":", 1)[1])
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, p, *a: real("127.0.0.1", port, *a)
                        if host == "s3.example" else real(host, p, *a))
    raw.pieces = [b"HTTP/1.1 206 Partial Content\r\nContent-Length: 0\r\n\r\n"]
    http = net.Http(raw.url, token="tk")
    http.get("http://s3.example/fw/slot-b.bin?X-Amz-Signature=s", offset=10).close()
    assert raw.requests[-1] == (b"GET /fw/slot-b.bin?X-Amz-Signature=s HTTP/1.1\r\nHost: s3.example\r\n"
                                b"Connection: close\r\nUser-Agent: stm32-fota-bridge\r\n"
                                b"Range: bytes=10-\r\n\r\n")
    http.get(raw.url + "/fw/own.bin", offset=10).close()        # the server's own origin: token sent
    assert b"Authorization: Bearer tk\r\n" in raw.requests[-1]


def test_errors_name_the_path_without_the_query(raw: RawServer) -> None:
    raw.pieces = [b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"]
    with pytest.raises(BridgeError,
                       match=r"^Failed to GET http://127\.0\.0\.1:\d+/k\?\.\.\.: server answered 403$"):
        net.Http(raw.url).get(raw.url + "/k?X-Amz-Signature=secret")


def test_mbedtls_errors_read_as_their_text() -> None:
    assert net._oserror(OSError(-29312, "SSL - The connection indicated an EOF")) == \
        "SSL - The connection indicated an EOF"
    assert net._oserror(OSError(-0x2700)) == "TLS error -0x2700"


class FakeNtp:
    def __init__(self, fails: bool) -> None:
        self.host = ""
        self.fails = fails
        self.calls = 0

    def settime(self) -> None:
        self.calls += 1
        if self.fails:
            raise OSError(110)


@pytest.mark.parametrize("fails", [False, True])
def test_an_unset_clock_is_set_with_ntp_once_before_tls(monkeypatch: pytest.MonkeyPatch, fails: bool) -> None:
    """After a reset an ESP32's clock says 2000-01-01 and mbedTLS would find every certificate
    not yet valid: the first TLS connection sets it with NTP first (once per Http)."""
    ntp = FakeNtp(fails)
    monkeypatch.setitem(sys.modules, "ntptime", ntp)
    monkeypatch.setattr(time, "gmtime", lambda *a: (2000, 1, 1, 0, 0, 5, 5, 1, 0))
    http = net.Http("https://10.0.0.2", ntp_host="time.lan")
    why = http._check_clock()
    assert (ntp.host, ntp.calls) == ("time.lan", 1)
    assert why == ("the ESP32's clock is not set (NTP time.lan: timed out)" if fails else "")
    http._check_clock()
    assert ntp.calls == 1
    assert net.Http("https://10.0.0.2", ntp_host="")._check_clock() == \
        "the ESP32's clock is not set (no ntp_host configured)"


def test_a_set_clock_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    ntp = FakeNtp(False)
    monkeypatch.setitem(sys.modules, "ntptime", ntp)
    assert net.Http("https://10.0.0.2", ntp_host="time.lan")._check_clock() == "" and ntp.calls == 0
