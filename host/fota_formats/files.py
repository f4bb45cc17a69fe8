"""Writing a file so that a reader sees the old content or the new, never a part of it.

    >>> write_atomic(Path("state/objects/slot-a.bin"), data)              # doctest: +SKIP
    >>> write_atomic(Path(".fota/tls/server.key"), key_pem, mode=0o600)    # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, synced, then renamed
    over it. The temporary file has ``mode`` from its creation, so a private key is never readable
    by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
