"""Network access of the bridge: Wi-Fi and a small HTTP/1.1 client over plain or TLS sockets.

    ip = net.wifi_connect("ssid", "password", retries=3, timeout_ms=10000)
    http = net.Http("https://192.168.1.10:8443", token="secret", timeout_s=10, ca_file="ca.pem")
    reply = http.post_json("/api/v1/checkin", {"device_id": "..."})    # -> dict
    body = http.get("/api/v1/firmware/1.1.0/slot-b.bin", offset=8192)  # Range: bytes=8192-
    n = body.readinto(buf)                                                # streams, no whole file
    body.close()

No `requests` dependency: the same code runs on MicroPython and CPython. The response head is read
as it arrives (recv_into on CPython, a non-blocking readinto on MicroPython: _read_some), never with
a blocking stream read: on MicroPython `readinto(buf)` or `read(n)` on a blocking socket returns
only when `buf` is full or the stream ends (py/stream.c, mp_stream_rw loops until the size is
reached), so a head read into a 1 KB buffer would wait for a keep-alive server to close the
connection. The body is read with readinto into buffers that its Content-Length fills exactly (a
chunk of the image, a JSON answer of known length). Every socket operation has a timeout; every
failure raises BridgeError with a reason that names the operation.

https:// URLs go through the firmware's own `ssl` module (MicroPython >= 1.23 on the ESP32: mbedTLS)
with the server's certificate verified: one SSLContext per Http, CERT_REQUIRED, the CA
certificates of `ca_file` (PEM, written by `deploy-esp32 --ca`), and the URL's host name checked
against the certificate. http:// stays possible (a server on the same machine, or a LAN where the
operator chose plain HTTP). A URL on another host (a presigned S3 URL of a direct download) gets
no Authorization header: the device token goes to the configured server only.

mbedTLS checks certificate dates against the ESP32's clock, which starts at 2000-01-01 after a
reset: before its first TLS connection an Http whose clock is unset sets it with NTP (`ntp_host`;
"" disables). The local CA of `invoke certs` is valid from 2000-01-01, so the update server is
reachable even when NTP is not; a public certificate (S3) needs the clock.
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
_POLL_MS = 5            # while the response head is awaited
_CLOCK_SET_YEAR = 2024  # a clock before this year has not been set since the last reset


# network.WLAN.status() values of the ESP32 port (docs: library/network.WLAN.rst, "status";
# ports/esp32/network_wlan.c: WIFI_REASON_* codes), for a build whose `network` lacks a name.
_STAT_NO_AP_FOUND = 201
_STAT_WRONG_PASSWORD = 202
_STAT_HANDSHAKE_TIMEOUT = 204   # what an ESP32 usually reports for a wrong WPA2 password


def _wifi_reason(network, status, ssid):
    """Why joining `ssid` failed, from wlan.status(); "" when the status does not say."""
    if status == getattr(network, "STAT_WRONG_PASSWORD", _STAT_WRONG_PASSWORD):
        return "wrong password (wifi_password in config.json)"
    if status == getattr(network, "STAT_HANDSHAKE_TIMEOUT", _STAT_HANDSHAKE_TIMEOUT):
        return "no answer to the WPA handshake (a wrong password, most often)"
    if status == getattr(network, "STAT_NO_AP_FOUND", _STAT_NO_AP_FOUND):
        return "no access point named " + ssid + " in range"
    return ""


def wifi_connect(ssid, password, retries=3, timeout_ms=10000):
    """Join the Wi-Fi network `ssid`; returns the IP address. Bounded: `retries` attempts of at
    most `timeout_ms` each; a wrong password or a missing access point (wlan.status()) is named."""
    import network
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if wlan.isconnected():
        return wlan.ifconfig()[0]
    why = ""
    for _ in range(retries):
        try:
            wlan.connect(ssid, password)
        except OSError as e:
            raise BridgeError(f"Failed to join Wi-Fi {ssid}: {e}") from None
        start = ticks_ms()
        while ticks_diff(ticks_ms(), start) < timeout_ms:
            if wlan.isconnected():
                return wlan.ifconfig()[0]
            status = wlan.status() if hasattr(wlan, "status") else None
            why = _wifi_reason(network, status, ssid) or why
            if why.startswith("wrong"):
                break   # another attempt gets the same answer
            sleep_ms(100)
        wlan.disconnect()
        if why.startswith("wrong"):
            break
    raise BridgeError(f"Failed to join Wi-Fi {ssid}: " + (why or f"not connected after {retries} attempts"))


def require_network(path="config.json"):
    """No Wi-Fi settings: the station must be up already (MicroPython without `network` is a
    host with its own network), else "no Wi-Fi configured" rather than a socket error."""
    try:
        import network
    except ImportError:
        return
    wlan = network.WLAN(network.STA_IF)
    if not wlan.isconnected():
        raise BridgeError(f"no Wi-Fi configured: wifi_ssid is empty in {path} and the ESP32 is not "
                          "on a network (set it with `invoke deploy-esp32 --wifi SSID --password ...`)")


def split_url(url):
    """'http[s]://host[:port]/path' -> (tls, host, port, path)."""
    if url.startswith("https://"):
        tls, rest, port = True, url[8:], 443
    elif url.startswith("http://"):
        tls, rest, port = False, url[7:], 80
    else:
        raise BridgeError(f"Failed to parse URL {_short(url)}: only http:// and https:// are supported")
    i = rest.find("/")
    hostport, path = (rest, "/") if i < 0 else (rest[:i], rest[i:])
    j = hostport.rfind(":")
    if j >= 0:
        try:
            port = int(hostport[j + 1:])
        except ValueError:
            raise BridgeError(f"Failed to parse URL {_short(url)}: bad port") from None
        hostport = hostport[:j]
    if not hostport:
        raise BridgeError(f"Failed to parse URL {_short(url)}: no host")
    return tls, hostport, port, path


def _short(target):
    """A URL or path for messages: without its query (a presigned URL's signature stays out of
    logs and reports)."""
    i = target.find("?")
    return target if i < 0 else target[:i] + "?..."


class Body:
    """A response body being received: readinto() until it returns 0."""

    def __init__(self, sock, status, length, first, what="the request"):
        self.sock = sock
        self.what = what              # "GET /path": named in errors
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
                raise BridgeError(f"Failed to receive the answer to {self.what}: {_oserror(e)}") from None
            if not n:
                if self.length >= 0:
                    raise BridgeError(f"Failed to receive the answer to {self.what}: connection closed "
                                      f"after {self.received} of {self.length} bytes")
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
                raise BridgeError(f"Failed to receive the answer to {self.what}: it ended after "
                                  f"{self.received} bytes")
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
                        raise BridgeError(f"Failed to receive the answer to {self.what}: longer than "
                                          f"{limit} bytes")
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

    def __init__(self, base_url, token="", timeout_s=10, ca_file="ca.pem", ntp_host=""):
        self.tls, self.host, self.port, self.prefix = split_url(base_url)
        self.prefix = self.prefix.rstrip("/")
        self.token = token
        # the header line for this server's own requests, made once (never for another host)
        self._auth = "Authorization: Bearer %s\r\n" % token if token else ""  # noqa: UP031
        self.timeout_s = timeout_s
        self.ca_file = ca_file
        self.ntp_host = ntp_host
        self._head = bytearray(_HEAD_MAX)
        self._ai = None             # getaddrinfo's answer for the server, once resolved
        self._ctx = None            # the SSLContext, made at the first https:// request
        self._clock = None          # None: not checked yet; else why the clock may be wrong ("" if set)

    def _url(self, path):
        if path.startswith("https://") or path.startswith("http://"):
            return split_url(path)
        return self.tls, self.host, self.port, self.prefix + path

    def _context(self):
        """The SSLContext of this client: CERT_REQUIRED with the CA certificates of ca_file."""
        if self._ctx is not None:
            return self._ctx
        import ssl
        try:
            with open(self.ca_file) as f:
                cadata = f.read()
        except OSError:
            raise BridgeError(f"no CA certificate file {self.ca_file} on the device for https:// "
                              "(deploy it with `invoke deploy-esp32 --ca ...`)") from None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED      # MicroPython's ssl.SSLContext starts with CERT_NONE
        try:
            ctx.load_verify_locations(cadata=cadata)
        except (ValueError, OSError) as e:
            raise BridgeError(f"{self.ca_file} holds no valid CA certificate ({_oserror(e)})") from None
        self._ctx = ctx
        return ctx

    def _check_clock(self):
        """Set an unset clock with NTP, once per Http; returns "" or why the clock may be wrong."""
        if self._clock is None:
            import time
            self._clock = ""
            if time.gmtime()[0] < _CLOCK_SET_YEAR:
                self._clock = "the ESP32's clock is not set"
                if self.ntp_host:
                    try:
                        import ntptime
                        ntptime.host = self.ntp_host
                        ntptime.settime()
                        self._clock = ""
                    except Exception as e:  # no NTP: the local CA (valid from 2000) still works
                        why = _oserror(e) if isinstance(e, OSError) else str(e)
                        self._clock += " (NTP " + self.ntp_host + ": " + why + ")"
                else:
                    self._clock += " (no ntp_host configured)"
        return self._clock

    def _wrap(self, sock, host):
        """TLS over the connected `sock`, the server's certificate verified for `host`."""
        ctx = self._context()
        clock = self._check_clock()
        try:
            return ctx.wrap_socket(sock, server_hostname=host)
        except ValueError as e:   # MicroPython: mbedTLS' verification flags; CPython: SSLCertVerification...
            why = getattr(e, "verify_message", None) or str(e).strip().replace("\n", "; ")
            raise BridgeError(f"the server's TLS certificate was refused: {why} (CA file {self.ca_file}"
                              + ("; " + clock if clock else "") + ")") from None

    def request(self, method, path, body=None, headers=None):
        """Send a request, parse the response head; returns a Body (caller closes it)."""
        import socket  # here, not at import time: the module loads on runtimes without sockets

        tls, host, port, target = self._url(path)
        what = f"{method} {_short(target)}"
        ai = self._ai if host == self.host and port == self.port else None
        if ai is None:
            try:
                ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
            except OSError as e:
                raise BridgeError(f"Failed to {what}: cannot resolve {host} ({e})") from None
            if host == self.host and port == self.port:
                self._ai = ai   # the server's address, resolved once per Http (one update cycle)
        sock = raw = socket.socket(ai[0], ai[1], ai[2])
        try:
            sock.settimeout(self.timeout_s)
            sock.connect(ai[-1])
            if tls:
                sock = self._wrap(sock, host)   # on failure `sock` is still the plain socket: closed below
            # The head is one formatted string (each += of a string copies it all on MicroPython:
            # a request made that way left about 1 KB of garbage), sent before the body, which is
            # not copied onto it. The port is left out when it is the scheme's (a presigned URL is
            # signed for the host as its URL names it).
            hostport = host if port == (443 if tls else 80) else "%s:%d" % (host, port)  # noqa: UP031
            ours = host == self.host and port == self.port and tls == self.tls
            extra = ""
            if headers:
                for k in headers:
                    extra += "%s: %s\r\n" % (k, headers[k])  # noqa: UP031
            if body is not None:
                extra += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)  # noqa: UP031
            head = ("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: stm32-fota-bridge\r\n"  # noqa: UP031
                    "%s%s\r\n" % (method, target, hostport, self._auth if ours else "", extra)).encode()
            send = getattr(sock, "sendall", None) or sock.write
            send(head)
            if body is not None:
                send(body)
            return self._response(sock, raw, what)
        except OSError as e:
            sock.close()
            raise BridgeError(f"Failed to {what} on {host}:{port}: {_oserror(e)}") from None
        except BridgeError as e:
            sock.close()
            if e.reason.startswith("Failed to "):
                raise
            raise BridgeError(f"Failed to {what} on {host}:{port}: {e.reason}") from None

    def _response(self, sock, raw, what):
        buf = self._head
        mv = memoryview(buf)
        got = 0
        end = -1
        while end < 0:
            if got >= len(buf):
                raise BridgeError(f"Failed to {what}: response headers longer than {len(buf)} bytes")
            n = _read_some(sock, raw, mv[got:], self.timeout_s)
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
        return Body(sock, status, length, bytes(mv[end + 4:got]), what)

    def json(self, method, path, doc=None, answer=True):
        """``doc`` as JSON; the answer parsed, or None with ``answer`` False: a 200's body is then
        not read at all (a report needs nothing from it: saves its bytes and its objects)."""
        body = None if doc is None else json.dumps(doc).encode()
        resp = self.request(method, path, body)
        try:
            if not answer and resp.status == 200:
                return None
            data = resp.read_all(4096, self._head)   # the head is parsed: its buffer is free
        finally:
            resp.close()
        if resp.status != 200:
            reason = data.decode()[:120] if data else ""
            what = f"Failed to {method} {_short(path)}: server answered {resp.status} {reason}"
            raise BridgeError(what.rstrip())
        try:
            return json.loads(data)
        except ValueError:
            raise BridgeError(f"Failed to {method} {_short(path)}: the answer is not JSON") from None

    def post_json(self, path, doc, answer=True):
        return self.json("POST", path, doc, answer)

    def get(self, path, offset=0):
        """GET a file from `offset` on (Range request); returns the Body, positioned there."""
        resp = self.request("GET", path, headers={"Range": f"bytes={offset}-"} if offset else None)
        if resp.status == 206 or (resp.status == 200 and offset == 0):
            return resp
        resp.close()
        if resp.status == 200:
            raise BridgeError(f"Failed to GET {_short(path)}: the server ignored Range bytes={offset}-")
        raise BridgeError(f"Failed to GET {_short(path)}: server answered {resp.status}")


def _read_some(sock, raw, mv, timeout_s):
    """What has arrived into `mv` (at least one byte; 0 at the end of the stream), waiting at most
    `timeout_s`. CPython: recv_into. MicroPython: readinto on the socket made non-blocking, which
    returns what is there or None (py/stream.c, mp_stream_rw: EAGAIN after some bytes ends the
    read, before any it is None) - the same for a plain socket and an SSLSocket, which has no recv
    (extmod/modtls_mbedtls.c); `raw` is the plain socket whose blocking mode SSLSocket delegates
    to. It is blocking with `timeout_s` again afterwards."""
    rd = getattr(sock, "recv_into", None)
    if rd is not None:
        return rd(mv)
    raw.setblocking(False)
    try:
        start = ticks_ms()
        while True:
            n = sock.readinto(mv)
            if n is not None:
                return n
            if ticks_diff(ticks_ms(), start) >= timeout_s * 1000:
                raise OSError(getattr(errno, "ETIMEDOUT"))  # noqa: B009 (errno.X is folded at compile time)
            sleep_ms(_POLL_MS)
    finally:
        raw.settimeout(timeout_s)


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
    """A readable reason for a socket or TLS error on either runtime (MicroPython's mbedTLS errors
    are OSError(-code, "SSL - ...") when the firmware has mbedTLS' error strings)."""
    args = e.args
    code = args[0] if args else None
    for name, text in (("ETIMEDOUT", "timed out"), ("ECONNREFUSED", "connection refused"),
                       ("ECONNRESET", "connection reset"), ("EHOSTUNREACH", "host unreachable")):
        if isinstance(code, int) and code == getattr(errno, name, None):
            return text
    if len(args) > 1 and isinstance(args[1], str) and args[1]:
        return args[1]
    if isinstance(code, int) and code < -255:
        return "TLS error -0x%x" % -code
    return str(e) or "socket error"
