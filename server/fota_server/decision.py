"""What a bridge should do after a check-in: a pure function of the device and the local release.

    >>> from fota_formats.semver import Version
    >>> decide("A", Version(1, 0, 0), None).reason
    'no release on this server yet'

Rules (the product's): the image always goes to the slot that is *not* running (Slot A running ->
the Slot-B image, Slot B running -> the Slot-A image); an update is offered only when the release is
newer than the running version, or older and explicitly marked as a downgrade; a release that this
device already tried and reverted is not offered again (it would loop: install, fail, revert).
"""

from __future__ import annotations

from dataclasses import dataclass

from fota_formats.semver import Version

from fota_server.firmware import LocalRelease

OTHER_SLOT = {"A": "B", "B": "A"}


@dataclass(frozen=True)
class Decision:
    update: bool
    reason: str
    version: str | None = None
    target_slot: str | None = None
    file: str | None = None
    size: int | None = None
    sha256: str | None = None
    downgrade: bool = False


def decide(running_slot: str, running_version: Version, release: LocalRelease | None,
           reverted_before: bool = False) -> Decision:
    if release is None:
        return Decision(False, "no release on this server yet")
    rel = release.version
    if rel == running_version:
        return Decision(False, f"up to date: running {running_version}, the release")
    downgrade = rel < running_version
    if downgrade and not release.downgrade:
        return Decision(False, f"release {rel} is older than the running {running_version} and not marked "
                        "as a downgrade")
    if reverted_before:
        return Decision(False, f"update to {rel} was reverted on this device before; publish a newer release")
    target = OTHER_SLOT[running_slot]
    name = release.file_for_slot(target)
    return Decision(True, "downgrade" if downgrade else "newer release", str(rel), target, name,
                    len(release.files[name]), release.sha256[name], downgrade)
