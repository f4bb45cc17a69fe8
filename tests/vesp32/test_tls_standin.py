"""The virtual ESP32's `tls` and `ssl` stand-ins inside the real MicroPython runtime behave like the
firmware's modules (MicroPython >= 1.23 on mbedTLS, micropython-lib's ssl): verification on by
default in `tls`, off in `ssl` until CERT_REQUIRED, a wrong CA and a wrong host name refused with
mbedTLS' ValueError texts, other failures as OSError(-code, "SSL - ..."), stream semantics, and the
plain socket unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from esp32_twin import VirtualEsp32
from fota_testkit.mpremote import Mp
from fota_testkit.tls import Pki, TlsEchoServer, make_pki

NOT_TRUSTED = "\\nThe certificate is not correctly signed by the trusted CA\\n"
CN_MISMATCH = "\\nThe certificate Common Name (CN) does not match with the expected CN\\n"

# A device program: join Wi-Fi, then `go(port, ca_file, host, mode)` opens a TLS connection through
# the module named by `mod`, sends a line and prints the answer, or prints the exception.
PRELUDE = """\
import network, socket, ssl, tls
w = network.WLAN(network.STA_IF); w.active(True); w.connect('lab', 'pw')
def connect(port):
    s = socket.socket(); s.settimeout(5); s.connect(socket.getaddrinfo('127.0.0.1', port)[0][-1])
    return s
def go(port, ca, host, mode=ssl.CERT_REQUIRED, mod=ssl):
    s = connect(port)
    try:
        ctx = mod.SSLContext(mod.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = mode
        if ca:
            if mod is ssl:
                ctx.load_verify_locations(cafile=ca)
            else:
                ctx.load_verify_locations(open(ca).read())
        t = ctx.wrap_socket(s, server_hostname=host)
        t.write(b'hello tls\\n')
        buf = bytearray(64)
        n = t.readinto(buf)
        print('ok', n, bytes(buf[:n]), t.readinto(buf))
        t.close()
    except Exception as e:
        s.close()
        print('err', type(e).__name__, repr(e.args))
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def device(esp: VirtualEsp32, pki: Pki) -> VirtualEsp32:
    for name, src in (("ca.pem", pki.ca), ("other.pem", pki.other_ca)):
        (esp.fs_dir / name).write_bytes(src.read_bytes())
    (esp.fs_dir / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n"
                                         "-----END CERTIFICATE-----\n")
    return esp


@pytest.fixture
def server(pki: Pki) -> Iterator[TlsEchoServer]:
    with TlsEchoServer(pki.cert, pki.key) as srv:
        yield srv


def run(mp: Mp, body: str) -> list[str]:
    return mp("exec", PRELUDE + body).stdout.splitlines()


def test_right_ca_and_name_connect_and_the_stream_reads_until_close_notify(
        mp: Mp, device: VirtualEsp32, server: TlsEchoServer) -> None:
    out = run(mp, f"go({server.port}, 'ca.pem', '127.0.0.1')\ngo({server.port}, 'ca.pem', 'localhost', "
                  "mod=tls)\n")
    # readinto(64) waits for the whole buffer or the end of the session: 10 bytes, then 0.
    assert out == ["ok 10 b'HELLO TLS\\n' 0"] * 2
    assert server.handshakes == 2


def test_wrong_ca_is_refused_with_mbedtls_text(mp: Mp, device: VirtualEsp32, server: TlsEchoServer) -> None:
    out = run(mp, f"go({server.port}, 'other.pem', '127.0.0.1')\n"
                  f"go({server.port}, 'other.pem', '127.0.0.1', mod=tls)\n")
    assert out == [f"err ValueError ('{NOT_TRUSTED}',)"] * 2
    assert server.handshakes == 0


def test_host_name_is_checked(mp: Mp, device: VirtualEsp32, pki: Pki) -> None:
    with TlsEchoServer(pki.named_cert, pki.named_key) as srv:     # a certificate for localhost only
        out = run(mp, f"go({srv.port}, 'ca.pem', '127.0.0.1')\ngo({srv.port}, 'ca.pem', 'localhost')\n")
    assert out == [f"err ValueError ('{CN_MISMATCH}',)", "ok 10 b'HELLO TLS\\n' 0"]


def test_defaults_of_tls_and_of_the_ssl_wrapper(mp: Mp, device: VirtualEsp32, server: TlsEchoServer) -> None:
    out = run(mp, "print(tls.SSLContext(tls.PROTOCOL_TLS_CLIENT).verify_mode == tls.CERT_REQUIRED,\n"
                  "      ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).verify_mode == ssl.CERT_NONE)\n"
                  # ssl's CERT_NONE verifies nothing: a program that forgets CERT_REQUIRED is fooled
                  f"go({server.port}, 'other.pem', 'example.com', mode=ssl.CERT_NONE)\n"
                  f"go({server.port}, 'ca.pem', None)\n"
                  f"go({server.port}, None, '127.0.0.1')\n"
                  f"go({server.port}, 'junk.pem', '127.0.0.1', mod=tls)\n")
    assert out == ["True True",
                   "ok 10 b'HELLO TLS\\n' 0",
                   "err ValueError ('CERT_REQUIRED requires server_hostname',)",
                   "err OSError (-30336, 'SSL - No CA Chain is set, but required to operate')",
                   "err ValueError ('invalid cert',)"]


def test_end_without_close_notify_and_a_plain_server_are_mbedtls_errors(
        mp: Mp, device: VirtualEsp32, pki: Pki) -> None:
    with TlsEchoServer(pki.cert, pki.key, close_notify=False) as ragged, \
            TlsEchoServer(pki.cert, pki.key, plain=True) as plain:
        out = run(mp, f"go({ragged.port}, 'ca.pem', '127.0.0.1')\ngo({plain.port}, 'ca.pem', '127.0.0.1')\n")
    assert out == ["err OSError (-29312, 'SSL - The connection indicated an EOF')",
                   "err OSError (-29184, 'SSL - An invalid SSL record was received')"]


def test_api_is_the_firmware_s_and_plain_sockets_are_unchanged(mp: Mp, device: VirtualEsp32,
                                                               server: TlsEchoServer) -> None:
    out = run(mp, f"s = connect({server.port})\n"
                  "ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)\n"
                  "ctx.load_verify_locations(open('ca.pem').read())\n"
                  "t = ctx.wrap_socket(s, server_hostname='127.0.0.1')\n"
                  # no CPython-only names (check_hostname, load_default_certs, SSLSocket.do_handshake)
                  "print([hasattr(ctx, n) for n in ('check_hostname', 'load_default_certs')],\n"
                  "      [hasattr(t, n) for n in ('readinto', 'write', 'close', 'do_handshake')])\n"
                  "try:\n ctx.load_verify_locations(cadata=open('ca.pem').read())\n"
                  "except TypeError as e:\n print('positional only')\n"
                  "t.write(b'x\\n'); print(t.read(2)); t.close(); s2 = socket.socket()\n"
                  "print(hasattr(s2, 'sendall') and hasattr(s2, 'recv'), type(s2).__name__); s2.close()\n")
    assert out == ["[False, False] [True, True, True, False]", "positional only", "b'X\\n'",
                   "True socket"]
