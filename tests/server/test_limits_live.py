"""The limits on the real server process (``python -m fota_server``, uvicorn with its options):
a flood of oversized requests is refused before the body is read and the memory stays flat;
heads too large are refused by the protocol; no token reaches the log."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from fota_server.firmware import FirmwareFolder
from fota_server.limits import MAX_HEAD_BYTES, MAX_URL_BYTES
from fota_testkit.server import ServerProcess, install_release

DEVICE = "live-device-token-5d1c"
OPERATOR = "live-operator-token-9e07"
MB = 1024 * 1024
BODY = 20 * MB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("live")
    folder = FirmwareFolder(tmp / "fw")
    install_release(folder, tmp, "1.1.0")
    env = {"FOTA_SERVER_TOKEN": DEVICE, "FOTA_OPERATOR_TOKEN": OPERATOR}
    with ServerProcess(tmp, folder.root, env) as srv:
        yield srv


def send_oversized(
    port: int, head: bytes, body_bytes: int, chunked: bool, timeout: float = 20.0
) -> tuple[int, int, float]:
    """Send ``head`` then up to ``body_bytes`` in 64 KB pieces, reading at the same time; stop at the
    first answer. Returns (status, body bytes sent before the answer, seconds to the answer)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    piece = b"[" + b"{}," * 21_845  # 64 KB of JSON-ish bytes
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    t0 = time.monotonic()
    sock.sendall(head)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent = 0
    pending = memoryview(b"")
    answer = b""
    writing = True
    try:
        while b"\r\n" not in answer and time.monotonic() - t0 < timeout:
            for _, events in sel.select(1.0):
                if events & selectors.EVENT_READ:
                    try:
                        got = sock.recv(65536)
                    except ConnectionResetError:
                        got = b""
                    if not got:
                        raise AssertionError(f"connection closed without an answer after {sent} bytes")
                    answer += got
                elif writing and events & selectors.EVENT_WRITE:
                    if not pending:
                        if sent >= body_bytes:
                            sel.modify(sock, selectors.EVENT_READ)
                            writing = False
                            continue
                        pending = memoryview(frame)
                    try:
                        n = sock.send(pending)
                    except (BrokenPipeError, ConnectionResetError):
                        sel.modify(sock, selectors.EVENT_READ)
                        writing = False
                        continue
                    pending = pending[n:]
                    sent += n
    finally:
        sock.close()
    assert b"\r\n" in answer, f"no answer within {timeout} s ({sent} bytes sent)"
    return int(answer.split(b" ", 2)[1]), sent, time.monotonic() - t0


def post_head(path: str, token: str | None, chunked: bool, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {BODY}\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    return (head + extra + "\r\n").encode()


def test_memory_stays_flat_under_a_flood_of_oversized_requests(server: ServerProcess):
    kinds = [  # (head, status): refused before the body (401) or while reading it (413)
        (post_head("/api/v1/checkin", None, chunked=False), 401),
        (post_head("/api/v1/checkin", None, chunked=True), 401),
        (post_head("/api/v1/report", "wrong", chunked=True), 401),
        (post_head("/api/v1/checkin", DEVICE, chunked=False), 413),  # Content-Length too large
        (post_head("/api/v1/checkin", DEVICE, chunked=True), 413),  # counted while streaming
    ]
    for head, _ in kinds:  # warm-up: every code path has run once before the measurement
        send_oversized(server.port, head, BODY, chunked=b"chunked" in head)
    before = server.rss_kb()
    slowest = 0.0
    most = 0
    for i in range(50):
        head, want = kinds[i % len(kinds)]
        status, sent, seconds = send_oversized(server.port, head, BODY, chunked=b"chunked" in head)
        assert status == want, (i, status)
        # answered long before the end of the body (what was sent is in the kernel's socket buffers)
        assert sent < BODY // 2, f"answered only after {sent} body bytes"
        slowest = max(slowest, seconds)
        most = max(most, sent)
    after = server.rss_kb()
    print(
        f"RSS {before} kB -> {after} kB over 50 requests of {BODY // MB} MB; slowest answer "
        f"{slowest:.2f} s, at most {most} bytes sent before it"
    )
    assert after - before < 8 * 1024, f"the server grew by {after - before} kB"
    assert slowest < 5.0
    ok = httpx.get(server.url + "/api/v1/status", headers={"Authorization": f"Bearer {OPERATOR}"})
    assert ok.status_code == 200 and ok.json()["version"] == "1.1.0"  # and it still serves


def test_heads_too_large_are_refused_by_the_protocol(server: ServerProcess):
    before = server.rss_kb()
    for _ in range(10):
        # one endless header line: refused once the head passes the limit, long before its end
        head = b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: "
        status, sent, _ = send_oversized(server.port, head, BODY, chunked=False)
        assert status == 431 and sent < BODY // 2, sent
    status, _, _ = send_oversized(
        server.port, b"GET /api/v1/status?q=" + b"a" * (4 * MAX_URL_BYTES), 0, chunked=False
    )
    assert status == 414  # a URL that does not end
    assert server.rss_kb() - before < 4 * 1024
    # below the protocol's limit, the middleware's finer limits answer with the same statuses
    r = httpx.get(server.url + "/api/v1/status?q=" + "a" * MAX_URL_BYTES)
    assert r.status_code == 414 and "URL" in r.json()["detail"]
    r = httpx.get(server.url + "/api/v1/status", headers={"X-Filler": "b" * (MAX_HEAD_BYTES // 2)})
    assert r.status_code == 431 and "headers" in r.json()["detail"]


def test_no_token_reaches_the_log(server: ServerProcess):
    query_secret = "QuerySecret-31f4c2"
    header_secret = "HeaderSecret-77ab10"
    refused = httpx.get(
        f"{server.url}/api/v1/status",
        params={"token": query_secret},
        headers={"Authorization": f"Bearer {header_secret}"},
    )
    listed = httpx.get(
        f"{server.url}/api/v1/devices",
        params={"token": query_secret, "offset": 0},
        headers={"Authorization": f"Bearer {OPERATOR}"},
    )
    deadline = time.monotonic() + 5
    while server.log().count("GET /api/v1/") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log()
    assert log.count("GET /api/v1/") >= 2, log[-2000:]  # the access log is on
    for secret in (query_secret, header_secret, OPERATOR, DEVICE):
        assert secret not in log
    assert refused.status_code == 401 and '"GET /api/v1/status HTTP/1.1" 401' in log
    assert listed.status_code == 200 and '"GET /api/v1/devices HTTP/1.1" 200' in log
