"""Where a release lives in the bucket and on the server's disk, and what its manifest may weigh.

Under the configured prefix (the names of the product brief, so an existing bucket keeps working)::

    slot-a.bin  slot-b.bin  manifest.json  version.txt      the current release
    releases/<version>/{slot-a.bin,slot-b.bin,manifest.json,version.txt}   every release, kept

The publisher (``stm32_fota.release``) writes this layout and the server (``fota_server.firmware``)
reads it; both take the names from here.
"""

from __future__ import annotations

from .image import SLOTS

MANIFEST_FORMAT = 1
VERSION_FILE = "version.txt"
MANIFEST_FILE = "manifest.json"
RELEASES_DIR = "releases"
# file name -> slot number: the image for each slot, as the bridge asks for it
SLOT_FILES: dict[str, int] = {f"slot-{name.lower()}.bin": num for num, name in SLOTS.items()}
MAX_MANIFEST_SIZE = 64 * 1024
