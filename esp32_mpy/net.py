"""Network access of the bridge: Wi-Fi and a small HTTP/1.1 client on plain sockets.

    ip = net.wifi_connect("ssid", "password", retries=3, timeout_ms=10000)
    http = net.Http("http://192.168.1.10:8000", token="secret", timeout_s=10)
    reply = http.post_json("/api/v1/checkin", {"device_id": "..."})    # -> dict
    body = http.get("/api/v1/firmware/1.1.0/slot-b.bin", offset=8192)  # Range: bytes=8192-
    n = body.readinto(buf)                                                # streams, no whole file
    body.close()

No `requests` dependency: the same code runs on MicroPython (socket.readinto) and CPython
(socket.recv_into). Every socket operation has a timeout; every failure raises BridgeError with a
reason that names the operation. Only http:// URLs (the server is on the local network).
"""

import errno
import json

from fotalink import BridgeError

try:
    from time import sleep_ms, ticks_diff, ticks_ms
except ImportError:  # CPython
    import time as _time

    def ticks_ms():
        return int(_time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def sleep_ms(n):
        _time.sleep(n / 1000)

_HEAD_MAX = 1024        # response status line + headers, bytes


def wifi_connect(ssid, password, retries=3, timeout_ms=10000):
    """Join the Wi-Fi network `ssid`; returns the IP address. Bounded: `retries` attempts of at
    most `timeout_ms` each."""
    import network
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if wlan.isconnected():
        return wlan.ifconfig()[0]
    for _ in range(retries):
        try:
            wlan.connect(ssid, password)
        except OSError as e:
            raise BridgeError(f"Failed to join Wi-Fi {ssid}: {e}") from None
        start = ticks_ms()
        while ticks_diff(ticks_ms(), start) < timeout_ms:
            if wlan.isconnected():
                return wlan.ifconfig()[0]
            sleep_ms(100)
        wlan.disconnect()
    raise BridgeError(f"Failed to join Wi-Fi {ssid}: not connected after {retries} attempts")


def split_url(url):
    """'http://host:port/path' -> (host, port, path)."""
    if not url.startswith("http://"):
        raise BridgeError(f"Failed to parse URL {url}: only http:// is supported")
    rest = url[7:]
    i = rest.find("/")
    hostport, path = (rest, "/") if i < 0 else (rest[:i], rest[i:])
    j = hostport.rfind(":")
    if j < 0:
        return hostport, 80, path
    try:
        return hostport[:j], int(hostport[j + 1:]), path
    except ValueError:
        raise BridgeError(f"Failed to parse URL {url}: bad port") from None


class Body:
    """A response body being received: readinto() until it returns 0."""

    def __init__(self, sock, status, length, first):
        self.sock = sock
        self.status = status
        self.length = length          # Content-Length, or -1: until the server closes
        self._first = first           # body bytes that arrived with the headers
        self.received = 0
        self._rd = getattr(sock, "readinto", None) or sock.recv_into

    def readinto(self, mv):
        """Fill the start of `mv`; returns the byte count, 0 at the end of the body."""
        if self.length >= 0:
            left = self.length - self.received
            if left <= 0:
                return 0
            if len(mv) > left:
                mv = mv[:left]
        if self._first:
            n = min(len(mv), len(self._first))
            mv[:n] = self._first[:n]
            self._first = self._first[n:]
        else:
            try:
                n = self._rd(mv)
            except OSError as e:
                raise BridgeError(f"Failed to receive the response: {e}") from None
            if not n:
                if self.length >= 0:
                    raise BridgeError(f"Failed to receive the response: connection closed after "
                                      f"{self.received} of {self.length} bytes")
                return 0
        self.received += n
        return n

    def readfull(self, mv):
        """Fill all of `mv` or raise."""
        got = 0
        size = len(mv)
        while got < size:
            n = self.readinto(mv[got:] if got else mv)
            if not n:
                raise BridgeError(f"Failed to receive the response: it ended after {self.received} bytes")
            got += n

    def read_all(self, limit, scratch=None):
        """The whole body, at most `limit` bytes, as bytes. It is read into `scratch` (a buffer
        smaller than `limit`) first, and moves to a new buffer of `limit` bytes only when it
        outgrows it: a short JSON answer allocates nothing but its bytes."""
        mv = memoryview(scratch if scratch is not None and len(scratch) < limit else bytearray(limit))
        got = 0
        while True:
            if got == len(mv):
                if got >= limit:
                    if self.length < 0 or self.received < self.length:
                        raise BridgeError(f"Failed to receive the response: longer than {limit} bytes")
                    break
                big = memoryview(bytearray(limit))
                big[:got] = mv
                mv = big
            n = self.readinto(mv[got:] if got else mv)
            if not n:
                break
            got += n
        return bytes(mv[:got])

    def close(self):
        try:  # noqa: SIM105 (MicroPython has no contextlib)
            self.sock.close()
        except OSError:
            pass


class Http:
    """HTTP/1.1 requests to one server, one connection per request (Connection: close)."""

    def __init__(self, base_url, token="", timeout_s=10):
        self.host, self.port, self.prefix = split_url(base_url)
        self.prefix = self.prefix.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._head = bytearray(_HEAD_MAX)

    def _url(self, path):
        if path.startswith("http://"):
            return split_url(path)
        return self.host, self.port, self.prefix + path

    def request(self, method, path, body=None, headers=None):
        """Send a request, parse the response head; returns a Body (caller closes it)."""
        import socket  # here, not at import time: the module loads on runtimes without sockets

        host, port, target = self._url(path)
        what = f"{method} {target}"
        try:
            ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
        except OSError as e:
            raise BridgeError(f"Failed to {what}: cannot resolve {host} ({e})") from None
        sock = socket.socket(ai[0], ai[1], ai[2])
        try:
            sock.settimeout(self.timeout_s)
            sock.connect(ai[-1])
            # One formatted string and few concatenations (a list of lines and its join would
            # leave a string per line behind).
            head = ("%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n"  # noqa: UP031
                    "User-Agent: stm32-fota-bridge\r\n" % (method, target, host, port))
            if self.token:
                head += "Authorization: Bearer " + self.token + "\r\n"
            if headers:
                for k in headers:
                    head += k + ": " + headers[k] + "\r\n"
            if body is not None:
                head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)  # noqa: UP031
            head = (head + "\r\n").encode()
            if body is not None:
                head += body
            send = getattr(sock, "sendall", None) or sock.write
            send(head)
            return self._response(sock, what)
        except OSError as e:
            sock.close()
            raise BridgeError(f"Failed to {what} on {host}:{port}: {_oserror(e)}") from None
        except BridgeError:
            sock.close()
            raise

    def _response(self, sock, what):
        rd = getattr(sock, "readinto", None) or sock.recv_into
        buf = self._head
        mv = memoryview(buf)
        got = 0
        end = -1
        while end < 0:
            if got >= len(buf):
                raise BridgeError(f"Failed to {what}: response headers longer than {len(buf)} bytes")
            n = rd(mv[got:])
            if not n:
                raise BridgeError(f"Failed to {what}: the server closed the connection without a response")
            end = _head_end(buf, got - 3 if got > 3 else 0, got + n)
            got += n
        # Only the status line and the two headers that matter are decoded; the others are
        # skipped in the buffer (no string per header line).
        i = _find(buf, 13, 0, end)
        first = str(mv[:i], "utf-8")
        parts = first.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise BridgeError(f"Failed to {what}: not an HTTP response")
        try:
            status = int(parts[1])
        except ValueError:
            raise BridgeError(f"Failed to {what}: bad status line {first[:40]}") from None
        length = -1
        i += 2
        while i < end:
            j = _find(buf, 13, i, end)        # CR of this line's CRLF (or the head's end)
            c = _find(buf, 58, i, j)          # the colon, or j: a line without one has no value
            if _name_is(buf, i, c, b"content-length"):
                v = str(mv[c + 1:j], "utf-8").strip() if c < j else ""
                try:
                    length = int(v)
                except ValueError:
                    raise BridgeError(f"Failed to {what}: bad Content-Length {v[:20]}") from None
            elif _name_is(buf, i, c, b"transfer-encoding"):
                v = str(mv[c + 1:j], "utf-8").strip() if c < j else ""
                if v.lower() != "identity":
                    raise BridgeError(f"Failed to {what}: transfer encoding {v} is not supported")
            i = j + 2
        return Body(sock, status, length, bytes(mv[end + 4:got]))

    def json(self, method, path, doc=None):
        body = None if doc is None else json.dumps(doc).encode()
        resp = self.request(method, path, body)
        try:
            data = resp.read_all(4096, self._head)   # the head is parsed: its buffer is free
        finally:
            resp.close()
        if resp.status != 200:
            reason = data.decode()[:120] if data else ""
            raise BridgeError(f"Failed to {method} {path}: server answered {resp.status} {reason}".rstrip())
        try:
            return json.loads(data)
        except ValueError:
            raise BridgeError(f"Failed to {method} {path}: the answer is not JSON") from None

    def post_json(self, path, doc):
        return self.json("POST", path, doc)

    def get(self, path, offset=0):
        """GET a file from `offset` on (Range request); returns the Body, positioned there."""
        resp = self.request("GET", path, headers={"Range": f"bytes={offset}-"} if offset else None)
        if resp.status == 206 or (resp.status == 200 and offset == 0):
            return resp
        resp.close()
        if resp.status == 200:
            raise BridgeError(f"Failed to GET {path}: the server ignored Range bytes={offset}-")
        raise BridgeError(f"Failed to GET {path}: server answered {resp.status}")


def _head_end(buf, start, stop):
    """Index of the first CRLF CRLF in buf[start:stop] (an index into buf), or -1; no copy."""
    for i in range(start, stop - 3):
        if buf[i] == 13 and buf[i + 1] == 10 and buf[i + 2] == 13 and buf[i + 3] == 10:
            return i
    return -1


def _find(buf, byte, start, stop):
    """Index of the first `byte` in buf[start:stop], or stop; no copy."""
    while start < stop and buf[start] != byte:
        start += 1
    return start


def _name_is(buf, start, stop, name):
    """Whether buf[start:stop], blanks around it ignored, is `name` (lower-case ASCII bytes) in
    any case; no copy."""
    while start < stop and (buf[start] == 32 or buf[start] == 9):
        start += 1
    while stop > start and (buf[stop - 1] == 32 or buf[stop - 1] == 9):
        stop -= 1
    if stop - start != len(name):
        return False
    for k in range(len(name)):
        b = buf[start + k]
        if 65 <= b <= 90:   # A-Z
            b |= 0x20
        if b != name[k]:
            return False
    return True


def _oserror(e):
    """A readable reason for a socket error on either runtime."""
    code = e.args[0] if e.args else None
    for name, text in (("ETIMEDOUT", "timed out"), ("ECONNREFUSED", "connection refused"),
                       ("ECONNRESET", "connection reset"), ("EHOSTUNREACH", "host unreachable")):
        if isinstance(code, int) and code == getattr(errno, name, None):
            return text
    return str(e) or "socket error"
