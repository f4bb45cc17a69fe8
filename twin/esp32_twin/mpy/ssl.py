"""Stand-in for the `ssl` module of the ESP32 firmware: micropython-lib's python-stdlib/ssl, frozen
into the ESP32 builds (bundle-networking), a thin layer over the `tls` module (here mpy/tls.py).

    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED          # needed: this module's contexts start with CERT_NONE
    ctx.load_verify_locations(cadata=pem_text)   # or cafile="ca.pem"
    s = ctx.wrap_socket(sock, server_hostname="192.168.1.10")

What differs from the `tls` module underneath, as on the firmware: SSLContext() sets verify_mode
to CERT_NONE (a program that forgets CERT_REQUIRED verifies nothing, on the board as here),
load_verify_locations takes cafile= or cadata= keywords, wrap_socket takes its options by position
too, and the module-level wrap_socket(sock, ..., cert_reqs=CERT_NONE, cadata=None,
server_hostname=None) builds a context per call.
"""

import tls
from tls import (  # noqa: F401 (the module's constants)
    CERT_NONE,
    CERT_OPTIONAL,
    CERT_REQUIRED,
    MBEDTLS_VERSION,
    PROTOCOL_TLS_CLIENT,
    PROTOCOL_TLS_SERVER,
)


class SSLContext:
    def __init__(self, *args):
        self._ctx = tls.SSLContext(*args)
        self._ctx.verify_mode = CERT_NONE

    @property
    def verify_mode(self):
        return self._ctx.verify_mode

    @verify_mode.setter
    def verify_mode(self, mode):
        self._ctx.verify_mode = mode

    def load_cert_chain(self, certfile, keyfile):
        raise NotImplementedError("virtual ESP32: client certificates are not emulated")

    def load_verify_locations(self, cafile=None, cadata=None):
        if cafile:
            with open(cafile, "rb") as f:
                cadata = f.read()
        self._ctx.load_verify_locations(cadata)

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        return self._ctx.wrap_socket(sock, server_side=server_side,
                                     do_handshake_on_connect=do_handshake_on_connect,
                                     server_hostname=server_hostname)


def wrap_socket(sock, server_side=False, key=None, cert=None, cert_reqs=CERT_NONE, cadata=None,
                server_hostname=None, do_handshake=True):
    ctx = SSLContext(PROTOCOL_TLS_SERVER if server_side else PROTOCOL_TLS_CLIENT)
    if key or cert:
        ctx.load_cert_chain(cert, key)
    if cadata:
        ctx.load_verify_locations(cadata=cadata)
    ctx.verify_mode = cert_reqs
    return ctx.wrap_socket(sock, server_side=server_side, do_handshake_on_connect=do_handshake,
                           server_hostname=server_hostname)
