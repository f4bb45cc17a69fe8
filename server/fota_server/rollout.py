"""Rollouts as plain values: targets, stages, stage membership by hash, maintenance windows.

    >>> fleet = [f"{i:024x}" for i in range(1000)]
    >>> stages = (Stage(percent=10), Stage(percent=100))
    >>> r = Rollout(1, "1.2.0", Target("all"), stages, cutoffs=cutoffs(1, stages, fleet))
    >>> sum(r.stage_of(d) == 0 for d in fleet)
    100
    >>> r.stage_of("0123456789abcdef01234567")
    1

Nothing here touches the registry: :mod:`fota_server.fleet` loads these from it, and
:func:`fota_server.decision.decide` decides with them.

**Stage membership.** A device's *position* in a rollout is the SHA-256 of the rollout id and the
device id, its first 8 bytes as a number in [0, 2**64): fair, and independent per rollout. When the
rollout is created, the positions of the devices of its target that the registry knows are sorted,
and each percentage stage gets a *cutoff*: the position of the device at rank ceil(p % x N) (every
position, at 100 %). A device is in the first stage whose cutoff is above its position. So the
stages hold exactly their share of the devices known at creation (at least one device per stage),
a device stays in its stage across check-ins, server restarts and processes (the cutoffs are
stored with the rollout), and a device first seen later falls into a stage with the stage's
probability. Stages of fixed counts (the first n devices of the target that check in while the
stage is open) are admitted by the registry instead (:func:`fota_server.fleet_store.enrol`), since a
count needs to know who came first.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

SPACE = 2**64
States = Literal["active", "paused", "aborted", "completed"]
STATES: tuple[str, ...] = ("active", "paused", "aborted", "completed")
TERMINAL = ("aborted", "completed")
MINUTES_PER_DAY = 24 * 60


def position(device_id: str, rollout_id: int) -> int:
    """The device's place in the rollout, in [0, SPACE): stable, and independent per rollout."""
    digest = hashlib.sha256(f"{rollout_id}:{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def cutoffs(rollout_id: int, stages: tuple[Stage, ...], population: Iterable[str]) -> tuple[int, ...]:
    """The cutoff of each percentage stage for the devices known at the rollout's creation (see the
    module's text); with none known, the stage's share of the position space."""
    known = sorted(position(d, rollout_id) for d in set(population))
    out = []
    for stage in stages:
        assert stage.percent is not None
        if not known:
            out.append(SPACE * round(stage.percent * 100) // 10_000)  # percent: a multiple of 0.01
            continue
        rank = math.ceil(len(known) * stage.percent / 100 - 1e-9)
        out.append(known[rank] if rank < len(known) else SPACE)
    return tuple(out)


@dataclass(frozen=True)
class Stage:
    """One stage: a share of the target (``percent``, 0.01 .. 100) or a number of devices (``count``)."""

    percent: float | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if (self.percent is None) == (self.count is None):
            raise ValueError("a stage is a percent or a count, exactly one of them")

    def describe(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else f"{self.count} devices"


@dataclass(frozen=True)
class Target:
    """Who a rollout is for: ``all`` devices, one ``group``, or a list of ``devices``."""

    kind: Literal["all", "group", "devices"]
    group: str | None = None
    devices: frozenset[str] = field(default_factory=frozenset)

    def holds(self, device_id: str, group: str | None) -> bool:
        if self.kind == "all":
            return True
        if self.kind == "group":
            return group is not None and group == self.group
        return device_id in self.devices

    def describe(self) -> str:
        if self.kind == "all":
            return "all devices"
        if self.kind == "group":
            return f"group {self.group}"
        return f"{len(self.devices)} listed devices"


@dataclass(frozen=True)
class Rollout:
    """A rollout's state as the decision needs it."""

    id: int
    version: str
    target: Target
    stages: tuple[Stage, ...]
    state: States = "active"
    current_stage: int = 0  # the newest stage opened (0-based)
    advance_due_at: float | None = None  # when the next stage opens by itself (Unix seconds)
    cutoffs: tuple[int, ...] = ()  # percentage stages: from :func:`cutoffs`, at creation

    @property
    def by_count(self) -> bool:
        return self.stages[0].count is not None

    def stage_of(self, device_id: str) -> int | None:
        """The percentage stage that holds the device (None: in no stage; a share under 100 %).
        Stages of fixed counts: None, the registry admits devices (see the module's text)."""
        if self.by_count:
            return None
        pos = position(device_id, self.id)
        for k, cut in enumerate(self.cutoffs):
            if pos < cut:
                return k
        return None

    def count_cap(self) -> int:
        """Fixed counts: how many devices the opened stages admit together."""
        return sum(s.count or 0 for s in self.stages[:self.current_stage + 1])

    def describe_stage(self) -> str:
        stage = self.stages[self.current_stage]
        return f"stage {self.current_stage + 1} of {len(self.stages)} ({stage.describe()})"


@dataclass(frozen=True)
class Window:
    """A daily maintenance window in UTC minutes of the day, [start, end); end < start wraps midnight."""

    start: int
    end: int

    def __post_init__(self) -> None:
        for name, v in (("start", self.start), ("end", self.end)):
            if not 0 <= v < MINUTES_PER_DAY:
                raise ValueError(f"window {name} {v} is not a minute of the day (0 .. {MINUTES_PER_DAY - 1})")
        if self.start == self.end:
            raise ValueError("a window's start and end are the same time; delete the window to allow "
                             "any time")

    def contains(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def describe(self) -> str:
        return f"{hhmm(self.start)}-{hhmm(self.end)} UTC"


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_hhmm(text: str) -> int:
    """``"22:30"`` -> 1350 (minutes of the day); a clear error otherwise."""
    hh, sep, mm = text.partition(":")
    if not (sep and hh.isdigit() and mm.isdigit() and len(mm) == 2 and 1 <= len(hh) <= 2
            and int(hh) < 24 and int(mm) < 60):
        raise ValueError(f"{text!r} is not a time of day HH:MM (00:00 .. 23:59)")
    return int(hh) * 60 + int(mm)


def shares(percents: list[float], known: int) -> list[int | None]:
    """How many of ``known`` devices each percentage stage holds (None each when none are known)."""
    if not known:
        return [None] * len(percents)
    ranks = [min(known, math.ceil(known * p / 100 - 1e-9)) for p in percents]
    return [r - (ranks[k - 1] if k else 0) for k, r in enumerate(ranks)]


def minute_of_day(unix_s: float) -> int:
    return int(unix_s // 60) % MINUTES_PER_DAY
