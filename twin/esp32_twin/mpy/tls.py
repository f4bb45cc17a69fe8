"""Stand-in for the ESP32 port's `tls` module (MicroPython >= 1.23, extmod/modtls_mbedtls.c) on the
virtual ESP32: TLS client connections whose handshake and records the host does (tlshost.py).

    import socket, tls
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)      # verify_mode CERT_REQUIRED for a client
    ctx.load_verify_locations(open("ca.pem").read())   # PEM (one or more) or DER; positional only
    s = socket.socket(); s.connect(addr)
    t = ctx.wrap_socket(s, server_hostname="192.168.1.10")   # handshake; the name is checked
    t.write(b"GET / HTTP/1.1\\r\\n..."); n = t.readinto(buf); t.close()

The behaviour of the firmware's module, as the bridge relies on it:
- a client context starts with CERT_REQUIRED (the `ssl` wrapper of micropython-lib resets it to
  CERT_NONE: see ssl.py); CERT_REQUIRED without server_hostname is
  ValueError("CERT_REQUIRED requires server_hostname"); without CA certificates the handshake
  fails with OSError(-0x7680, "SSL - No CA Chain is set, but required to operate");
- a certificate that fails verification is ValueError("\\n<reason>\\n"), the reasons being
  mbedTLS' ("The certificate is not correctly signed by the trusted CA", "The certificate Common
  Name (CN) does not match with the expected CN", "The certificate validity has expired", ...);
- other TLS failures are OSError(-code, "SSL - ..."), socket failures OSError(errno);
- the socket is a stream: read/readinto read until the buffer is full or the peer ends the
  session (close_notify: 0 bytes); when the socket under it is non-blocking (setblocking(False),
  which the SSLSocket passes down) they return what has arrived, None when nothing has
  (py/stream.c, mp_stream_rw); there is no recv/send (those exist for DTLS builds only); an end
  without close_notify is OSError(-0x7280, "SSL - The connection indicated an EOF"); write writes
  everything; close closes the socket under it too.
Only a client is emulated (server_side=True is refused); no load_cert_chain.
"""

from vesp32_errno import EAGAIN
from vesp32_host import call

MBEDTLS_VERSION = "Mbed TLS (virtual ESP32: the host's TLS)"
PROTOCOL_TLS_CLIENT = 0
PROTOCOL_TLS_SERVER = 1
CERT_NONE = 0
CERT_OPTIONAL = 1
CERT_REQUIRED = 2
_CA_CHAIN_REQUIRED = -0x7680


def _check(r):
    """A host answer that is an error string raises what the firmware raises."""
    if type(r) is str:
        if r[:2] == "\0V":
            raise ValueError(r[2:])
        if r[:2] == "\0O":
            code, _, text = r[2:].partition("\0")
            raise OSError(int(code), text)
    return r


class SSLContext:
    def __init__(self, protocol):
        if protocol not in (PROTOCOL_TLS_CLIENT, PROTOCOL_TLS_SERVER):
            raise ValueError("invalid protocol")
        self._server = protocol == PROTOCOL_TLS_SERVER
        self.verify_mode = CERT_NONE if self._server else CERT_REQUIRED
        self._ca = 0

    def load_verify_locations(self, *args):
        # The firmware's method takes one positional argument (no cafile=, no cadata=).
        if len(args) != 1:
            raise TypeError(f"function takes 2 positional arguments but {len(args) + 1} were given")
        cadata = args[0]
        if not isinstance(cadata, (str, bytes, bytearray)):
            raise TypeError("can't convert to str implicitly")
        data = cadata.encode() if isinstance(cadata, str) else cadata
        self._ca = _check(call("tls_ca", tx=data))

    def wrap_socket(self, sock, *, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        if server_side or self._server:
            raise NotImplementedError("virtual ESP32: server-side TLS is not emulated")
        if getattr(sock, "_id", None) is None:
            raise OSError(9)  # EBADF: not an open socket of this device
        if server_hostname is None and self.verify_mode == CERT_REQUIRED:
            raise ValueError("CERT_REQUIRED requires server_hostname")
        ssock = SSLSocket(sock, server_hostname, self._ca if self.verify_mode == CERT_REQUIRED else 0,
                          self.verify_mode == CERT_REQUIRED)
        if do_handshake_on_connect:
            ssock._handshake()
        return ssock


class SSLSocket:
    def __init__(self, sock, hostname, ca, verify):
        self._sock = sock
        self._hostname = hostname
        self._ca = ca
        self._verify = verify
        self._open = False      # handshake done

    def _handshake(self):
        sock = self._sock
        if sock is None:
            raise OSError(9)
        if self._verify and not self._ca:
            self._sock = None
            raise OSError(_CA_CHAIN_REQUIRED, "SSL - No CA Chain is set, but required to operate")
        try:
            _check(call("tls_wrap", sock._id, self._hostname, self._ca, sock._timeout))
        except BaseException:
            self._sock = None   # as the firmware: the session is freed, the plain socket is the caller's
            raise
        self._open = True

    def _ready(self):
        if not self._open:
            self._handshake()
        return self._sock

    def readinto(self, buf, nbytes=None):
        sock = self._ready()
        mv = memoryview(buf)
        if nbytes is not None and nbytes < len(mv):
            mv = mv[:nbytes]
        if not len(mv):
            return 0
        try:
            return _check(call("tls_read", sock._id, len(mv), sock._timeout, rx=mv))
        except OSError as e:
            if e.errno == EAGAIN:   # non-blocking, nothing arrived
                return None
            raise

    def setblocking(self, flag):
        # extmod/modtls_mbedtls.c, socket_setblocking: passed to the socket under the session.
        if self._sock is None:
            raise OSError(9)
        self._sock.setblocking(flag)

    def read(self, size=-1):
        if size is None or size < 0:
            out = b""
            while True:
                chunk = self.read(1024)
                if not chunk:
                    return out
                out += chunk
        buf = bytearray(size)
        n = self.readinto(buf)
        if n is None:
            return None
        return bytes(buf) if n == size else bytes(buf[:n])

    def readline(self):
        line = bytearray()
        one = bytearray(1)
        while self.readinto(one):
            line += one
            if one[0] == 10:
                break
        return bytes(line)

    def write(self, buf):
        sock = self._ready()
        if isinstance(buf, str):
            buf = buf.encode()
        return _check(call("tls_write", sock._id, sock._timeout, tx=buf))

    def close(self):
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __repr__(self):
        return "<SSLSocket>"
