"""Stand-in for the ESP32 port's `socket` module on the virtual ESP32: real TCP through the host.

    import socket
    addr = socket.getaddrinfo("127.0.0.1", 8000)[0][-1]
    s = socket.socket()
    s.settimeout(10)
    s.connect(addr)
    s.write(b"GET / HTTP/1.0\\r\\n\\r\\n")
    n = s.readinto(buf)

The host opens the connection (only while Wi-Fi is up) and applies the timeout; errors are
OSError with the ESP32 port's errno values (vesp32_errno: ETIMEDOUT 116, ECONNREFUSED 111,
EHOSTUNREACH 118, ...).

Reads follow the port, not CPython:
- `recv(n)` is one receive: whatever has arrived, at least one byte, b"" at the end of the stream
  (ports/esp32/modsocket.c, socket_recv -> _socket_read_data, one lwip_recvfrom);
- `readinto(buf)` and `read(n)` are stream reads (py/stream.c, mp_stream_rw): on a blocking socket
  they loop until `buf` is full or the stream ends, so an answer shorter than the buffer on a
  connection the server keeps open returns only at the timeout (OSError ETIMEDOUT, the bytes
  already read are lost); on a non-blocking socket they return what has arrived, or None when
  nothing has (EAGAIN before any byte);
- `read()` reads to the end of the stream; the timeout applies to each receive (SO_RCVTIMEO).
"""

from vesp32_errno import EAGAIN
from vesp32_host import call

AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
IPPROTO_TCP = 6
IPPROTO_UDP = 17
SOL_SOCKET = 4095
SO_REUSEADDR = 4


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    ip = call("getaddrinfo", host)
    return [(AF_INET, SOCK_STREAM, IPPROTO_TCP, "", (ip, port))]


class socket:
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=IPPROTO_TCP):
        if af != AF_INET or type != SOCK_STREAM:
            raise OSError(95)  # EOPNOTSUPP: the virtual ESP32 speaks TCP over IPv4 only
        self._id = call("sock_new")
        self._timeout = None

    def _check(self):
        if self._id is None:
            raise OSError(9)  # EBADF

    def settimeout(self, value):
        self._timeout = None if value is None else float(value)

    def setblocking(self, flag):
        self._timeout = None if flag else 0.0

    def setsockopt(self, level, optname, value):
        pass

    def connect(self, address):
        self._check()
        call("sock_connect", self._id, address[0], address[1], self._timeout)

    def send(self, buf):
        self._check()
        if isinstance(buf, str):
            buf = buf.encode()
        return call("sock_send", self._id, self._timeout, tx=buf)

    def sendall(self, buf):
        mv = memoryview(buf.encode() if isinstance(buf, str) else buf)
        while len(mv):
            n = self.send(mv)
            mv = mv[n:]

    def write(self, buf):
        self.sendall(buf)
        return len(buf)

    def _recv_into(self, mv):
        """One receive into `mv`: the byte count, 0 at the end of the stream."""
        self._check()
        return call("sock_recv", self._id, len(mv), self._timeout, rx=mv)

    def readinto(self, buf, nbytes=None):
        mv = memoryview(buf)
        if nbytes is not None:
            mv = mv[:nbytes]
        got = 0
        while got < len(mv):
            try:
                n = self._recv_into(mv[got:])
            except OSError as e:
                if e.errno == EAGAIN:          # non-blocking: what has arrived, or None
                    return got if got else None
                raise
            if not n:
                break
            got += n
        return got

    def recv(self, bufsize):
        buf = bytearray(bufsize)
        n = self._recv_into(memoryview(buf))
        return bytes(buf[:n])

    def read(self, size=-1):
        if size is not None and size >= 0:
            buf = bytearray(size)
            n = self.readinto(buf)
            if n is None:
                return None
            return bytes(buf[:n])
        chunks = []
        while True:
            b = self.recv(512)
            if not b:
                return b"".join(chunks)
            chunks.append(b)

    def readline(self):
        line = bytearray()
        one = bytearray(1)
        while self.readinto(one):
            line += one
            if one[0] == 10:
                break
        return bytes(line)

    def makefile(self, mode="rb", buffering=0):
        return self

    def close(self):
        if self._id is not None:
            call("sock_close", self._id)
            self._id = None

    def __repr__(self):
        return f"<socket {self._id}>"
