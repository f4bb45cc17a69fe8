"""The host side of the virtual ESP32's TLS: what MicroPython's `tls` module does with mbedTLS on
an ESP32, done with Python's ssl module on the host's end of a virtual socket.

    tls = TlsHost(net)
    ca = tls.load_ca(pem_bytes)                                  # handle, or ValueError("invalid cert")
    err = tls.wrap(sid, "192.168.1.10", ca, 10.0, interrupted)  # None: handshake done, certificate verified
    data = tls.read(sid, 4096, 10.0, interrupted)               # bytes, or an error string

The firmware's module (extmod/modtls_mbedtls.c of MicroPython >= 1.23) reports failures in three
ways, which the stand-in (mpy/tls.py) reproduces from what these methods return:

- a certificate that fails verification: ValueError whose text is mbedTLS'
  mbedtls_x509_crt_verify_info() with "\\n" as prefix, one line per reason, e.g.
  "\\nThe certificate is not correctly signed by the trusted CA\\n";
- another TLS failure: OSError(code, "SSL - <mbedTLS error string>"), the code negative
  (-0x7280 when the peer closed the connection without a TLS close_notify);
- a socket failure under TLS: OSError(errno), as for a plain socket (raised as DeviceOSError).

The first two come back as strings "\\0V<text>" and "\\0O<code>\\0<text>" (a DeviceOSError carries only
an errno name). Like the ESP32 builds of MicroPython, the client speaks TLS 1.2, ECDHE with AES.
OpenSSL stops at the first verification failure where mbedTLS lists every one, so a certificate
that is both untrusted and for another name is reported with its first reason only.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

from esp32_twin.errors import DeviceOSError
from esp32_twin.netstack import NetStack

# mbedtls/ssl.h error codes and the texts of mbedtls_strerror().
CONN_EOF = (-0x7280, "SSL - The connection indicated an EOF")
INVALID_RECORD = (-0x7200, "SSL - An invalid SSL record was received")
INVALID_MAC = (-0x7180, "SSL - Verification of the message MAC failed")
CA_CHAIN_REQUIRED = (-0x7680, "SSL - No CA Chain is set, but required to operate")
FATAL_ALERT = (-0x7780, "SSL - A fatal alert message was received from our peer")
HANDSHAKE_FAILURE = (-0x6E00, "SSL - The handshake negotiation failed")

# mbedtls_x509_crt_verify_info() lines, by the OpenSSL verification result that means the same.
NOT_TRUSTED = "The certificate is not correctly signed by the trusted CA"
CN_MISMATCH = "The certificate Common Name (CN) does not match with the expected CN"
EXPIRED = "The certificate validity has expired"
FUTURE = "The certificate validity starts in the future"
BAD_KEY = "The certificate is signed with an unacceptable key (eg bad curve, RSA too short)."
OTHER = "Other reason (can be used by verify callback)"
_VERIFY_TEXT = {
    2: NOT_TRUSTED,    # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
    4: NOT_TRUSTED,    # X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE
    7: NOT_TRUSTED,    # X509_V_ERR_CERT_SIGNATURE_FAILURE
    9: FUTURE,         # X509_V_ERR_CERT_NOT_YET_VALID
    10: EXPIRED,       # X509_V_ERR_CERT_HAS_EXPIRED
    18: NOT_TRUSTED,   # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    19: NOT_TRUSTED,   # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
    20: NOT_TRUSTED,   # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: NOT_TRUSTED,   # X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
    24: NOT_TRUSTED,   # X509_V_ERR_INVALID_CA
    62: CN_MISMATCH,   # X509_V_ERR_HOSTNAME_MISMATCH
    64: CN_MISMATCH,   # X509_V_ERR_IP_ADDRESS_MISMATCH
    66: BAD_KEY,       # X509_V_ERR_EE_KEY_TOO_SMALL
}
_CIPHERS = "ECDHE+AESGCM:ECDHE+AES"   # what an ESP32's mbedTLS offers (no ChaCha20 in its build)

Interrupted = Callable[[], bool]


def value_error(text: str) -> str:
    return "\0V" + text


def os_error(err: tuple[int, str]) -> str:
    return f"\0O{err[0]}\0{err[1]}"


def _ssl_error(e: ssl.SSLError) -> str:
    """An OpenSSL failure as the mbedTLS error an ESP32 would raise for the same event."""
    if isinstance(e, ssl.SSLEOFError):
        return os_error(CONN_EOF)
    reason = (e.reason or "").upper()
    if "ALERT" in reason:
        return os_error(FATAL_ALERT)
    if "WRONG_VERSION" in reason or "RECORD" in reason or "PACKET_LENGTH" in reason or "HTTP" in reason:
        return os_error(INVALID_RECORD)
    if "MAC" in reason or "DECRYPT" in reason:
        return os_error(INVALID_MAC)
    return os_error(HANDSHAKE_FAILURE)


class TlsHost:
    """TLS client connections over the sockets of a NetStack."""

    def __init__(self, net: NetStack) -> None:
        self.net = net
        self._cas: dict[int, bytes] = {}
        self._next = 1

    def reset(self) -> None:
        """The runtime restarts: its SSLContext objects are gone."""
        self._cas.clear()

    def load_ca(self, data: bytes) -> int:
        """Parse CA certificates (PEM, one or more, or one DER) as load_verify_locations() does;
        returns a handle. Unparsable data is ValueError("invalid cert"), mbedTLS' answer."""
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            if b"-----BEGIN " in data:
                probe.load_verify_locations(cadata=data.rstrip(b"\0").decode("ascii"))
            else:
                probe.load_verify_locations(cadata=data)
        except (ssl.SSLError, ValueError, UnicodeDecodeError):
            raise ValueError("invalid cert") from None
        handle = self._next
        self._next += 1
        self._cas[handle] = data
        return handle

    def _context(self, ca: int) -> ssl.SSLContext | str:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(_CIPHERS)
        if ca:
            data = self._cas.get(ca)
            if data is None:
                return os_error(CA_CHAIN_REQUIRED)
            if b"-----BEGIN " in data:
                ctx.load_verify_locations(cadata=data.rstrip(b"\0").decode("ascii"))
            else:
                ctx.load_verify_locations(cadata=data)
        else:   # CERT_NONE and CERT_OPTIONAL: mbedTLS finishes the handshake whatever the certificate
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def wrap(self, sid: int, hostname: str | None, ca: int, timeout: float | None,
             interrupted: Interrupted) -> str | None:
        """Handshake on the connected socket ``sid``, the peer's certificate verified against the
        CA certificates of handle ``ca`` (CERT_REQUIRED) or not at all (``ca`` 0); None when done,
        else the error string."""
        raw = self.net.get(sid)
        self.net.require_network()
        ctx = self._context(ca)
        if isinstance(ctx, str):
            return ctx
        try:
            s = ctx.wrap_socket(raw, server_hostname=hostname or None, do_handshake_on_connect=False,
                                suppress_ragged_eofs=False)
        except (OSError, ValueError) as e:
            raise DeviceOSError("EIO", f"TLS setup: {e}") from None
        self.net.put(sid, s)
        s.setblocking(False)
        try:
            while True:
                try:
                    s.do_handshake()
                    return None
                except ssl.SSLWantReadError:
                    self.net.wait(s, False, timeout, interrupted)
                except ssl.SSLWantWriteError:
                    self.net.wait(s, True, timeout, interrupted)
        except ssl.SSLCertVerificationError as e:
            return value_error("\n" + _VERIFY_TEXT.get(e.verify_code, OTHER) + "\n")
        except ssl.SSLError as e:
            return _ssl_error(e)
        except DeviceOSError:
            raise
        except OSError as e:
            raise DeviceOSError.from_oserror(e) from None

    def _tls(self, sid: int) -> ssl.SSLSocket:
        s = self.net.get(sid)
        if not isinstance(s, ssl.SSLSocket):
            raise DeviceOSError("EBADF", f"socket {sid} has no TLS session")
        self.net.require_network()
        return s

    def read(self, sid: int, n: int, timeout: float | None, interrupted: Interrupted) -> bytes | str:
        """Up to ``n`` bytes: fewer only at the end of the stream (the peer's close_notify), as the
        port's stream read does on a blocking socket; an end without close_notify is an error. On a
        non-blocking socket (timeout 0): what has arrived, EAGAIN when nothing has."""
        s = self._tls(sid)
        got = bytearray()
        try:
            while len(got) < n:
                try:
                    chunk = s.recv(n - len(got))
                except ssl.SSLWantReadError:
                    if got and timeout is not None and timeout <= 0:
                        break   # non-blocking: what has arrived (py/stream.c: EAGAIN after some bytes)
                    self.net.wait(s, False, timeout, interrupted)   # EAGAIN when non-blocking
                    continue
                except ssl.SSLWantWriteError:
                    self.net.wait(s, True, timeout, interrupted)
                    continue
                if not chunk:
                    break
                got += chunk
        except ssl.SSLError as e:
            return _ssl_error(e)
        except DeviceOSError:
            raise
        except OSError as e:
            raise DeviceOSError.from_oserror(e) from None
        return bytes(got)

    def write(self, sid: int, data: bytes, timeout: float | None, interrupted: Interrupted) -> int | str:
        """All of ``data`` (the port's stream write loops until everything is written)."""
        s = self._tls(sid)
        mv = memoryview(data)
        try:
            while len(mv):
                try:
                    k = s.send(mv)
                except ssl.SSLWantWriteError:
                    self.net.wait(s, True, timeout, interrupted)
                    continue
                except ssl.SSLWantReadError:
                    self.net.wait(s, False, timeout, interrupted)
                    continue
                mv = mv[k:]
        except ssl.SSLError as e:
            return _ssl_error(e)
        except DeviceOSError:
            raise
        except OSError as e:
            raise DeviceOSError.from_oserror(e) from None
        return len(data)
