"""HTTPS in the lab: a throwaway CA and server certificate per lab, the server's environment to
serve with them, and a client context that trusts only that CA.

    files = lab_certs(state_dir)               # <state_dir>/tls/{ca,server}.{pem,key}, made once
    env.update(server_env(files))              # FOTA_SERVER_TLS_CERT / FOTA_SERVER_TLS_KEY
    urllib.request.urlopen(url, context=client_context(files.ca_cert))

The certificates come from the product's own ``invoke certs`` code (stm32_fota.certs), for the
names the lab's bridge and clients use (127.0.0.1, localhost); they live in the lab's state folder
and go with it.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from stm32_fota.certs import TlsFiles, make_certs

LAB_NAMES = ("127.0.0.1", "localhost")


def lab_certs(state_dir: Path) -> TlsFiles:
    files = TlsFiles.under(state_dir)
    if not (files.server_cert.is_file() and files.server_key.is_file() and files.ca_cert.is_file()):
        files = make_certs(state_dir, LAB_NAMES, force=True).files
    return files


def server_env(files: TlsFiles) -> dict[str, str]:
    return {"FOTA_SERVER_TLS_CERT": str(files.server_cert), "FOTA_SERVER_TLS_KEY": str(files.server_key)}


def client_context(ca_cert: Path) -> ssl.SSLContext:
    """A client context that trusts ``ca_cert`` alone (not the system's CAs)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(ca_cert))
    return ctx
