"""What a bridge should do after a check-in: a pure function of the device, its rollout and a release.

    >>> from fota_formats.semver import Version
    >>> decide(Device("0123456789abcdef01234567", "A", Version(1, 0, 0)), None).reason
    'no release on this server yet'

Rules (the product's): the image always goes to the slot that is *not* running (Slot A running ->
the Slot-B image, Slot B running -> the Slot-A image); an update is offered only when the release is
newer than the running version, or older and explicitly marked as a downgrade; a release that this
device already tried and reverted is not offered again (it would loop: install, fail, revert) unless
an operator allowed a retry.

The fleet's rules, in this order (docs/fleet.md):

1. a **pin** holds the device at its version: nothing else is offered (the pinned version is, when
   it is the release given here and newer, or a marked downgrade);
2. a device that a **rollout** holds is offered that rollout's release only while the rollout is
   active and the device's stage is open (paused, aborted: nothing new; completed: every stage
   stays open);
3. a release that has a rollout (``gated``) is offered by its rollouts only: a device outside all of
   them gets nothing; a release without any rollout goes to every device, as before rollouts existed;
4. the device's group's **maintenance window** must be open (UTC time of day).

Which rollout holds a device and which release is given here is the server's choice
(:meth:`fota_server.fleet.FleetConfig.plan`), also pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from fota_formats.semver import Version

from fota_server.firmware import LocalRelease
from fota_server.rollout import Rollout, Window

OTHER_SLOT = {"A": "B", "B": "A"}


@dataclass(frozen=True)
class Device:
    """What the decision knows of a device at its check-in."""

    device_id: str
    running_slot: str
    running_version: Version
    group: str | None = None
    pin: str | None = None  # held at this version (its own pin, else its group's)
    window: Window | None = None  # its group's maintenance window
    minute: int = 0  # the check-in's UTC minute of the day
    reverted_before: bool = False  # this device reverted the release and no retry was allowed since
    stage: int | None = None  # its stage in the rollout (None: in none of its stages)


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
    rollout_id: int | None = None
    stage: int | None = None
    security_counter: int | None = None  # the image's SEC_CNT: the bridge announces it in BEGIN


def decide(device: Device, release: LocalRelease | None, rollout: Rollout | None = None,
           gated: bool = False) -> Decision:
    """``rollout``: the rollout that holds the device (its release is ``release``); ``gated``: without
    such a rollout, ``release`` has rollouts that do not hold this device."""
    running = device.running_version
    if device.pin is not None and (release is None or str(release.version) != device.pin):
        return Decision(False, f"held at {device.pin} by a pin")
    if release is None:
        if rollout is not None:
            return Decision(False, f"release {rollout.version} of rollout {rollout.id} is not on this server")
        return Decision(False, "no release on this server yet")
    rel = release.version
    if rel == running:
        return Decision(False, f"up to date: running {running}, the release")
    downgrade = rel < running
    if downgrade and not release.downgrade:
        return Decision(False, f"release {rel} is older than the running {running} and not marked "
                        "as a downgrade")
    if rollout is not None:
        if rollout.state in ("paused", "aborted"):
            return Decision(False, f"rollout {rollout.id} of {rel} is {rollout.state}")
        opened = len(rollout.stages) - 1 if rollout.state == "completed" else rollout.current_stage
        if device.stage is None or device.stage > opened:
            return Decision(False, f"not in an open stage of rollout {rollout.id} of {rel} "
                            f"({rollout.describe_stage()} open)")
    elif gated:
        return Decision(False, f"release {rel} is being rolled out; this device is in none of its rollouts")
    if device.window is not None and not device.window.contains(device.minute):
        return Decision(False, f"outside the maintenance window of group {device.group} "
                        f"({device.window.describe()})")
    if device.reverted_before:
        return Decision(False, f"update to {rel} was reverted on this device before; publish a newer release "
                        "or allow a retry")
    target = OTHER_SLOT[device.running_slot]
    name = release.file_for_slot(target)
    return Decision(True, "downgrade" if downgrade else "newer release", str(rel), target, name,
                    len(release.files[name]), release.sha256[name], downgrade,
                    rollout.id if rollout else None, device.stage if rollout else None,
                    release.security_counter.get(name))
