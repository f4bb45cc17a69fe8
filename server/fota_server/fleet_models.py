"""Request and response bodies of the fleet routes: rollouts, groups, pins, windows, retries.

Every field is bounded; a bad request is a 422 naming the field and what is wrong with it.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from fota_server.models import DeviceId, GroupName, VersionStr, _Body
from fota_server.rollout import parse_hhmm

ACTOR_PATTERN = r"^[^\x00-\x1f\x7f]+$"   # printable: no NUL (PostgreSQL text), no control characters
Actor = Annotated[str, Field(min_length=1, max_length=64, pattern=ACTOR_PATTERN, examples=["ana"],
                             description="who does this (recorded with the change)")]
Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]+$",
                              examples=["the self-test fails on rev-B boards"])]
MAX_STAGES = 20
MAX_SOAK_S = 30 * 24 * 3600


def _hhmm(text: str) -> str:
    parse_hhmm(text)  # ValueError: the 422 names the field and the text
    return text


TimeOfDay = Annotated[str, Field(max_length=5, examples=["22:00"]), AfterValidator(_hhmm)]
RolloutState = Literal["active", "paused", "aborted", "completed"]


class TargetSpec(_Body):
    """Exactly one of: ``all``, ``group``, ``devices``."""

    all: Literal[True] | None = None
    group: GroupName | None = None
    devices: list[DeviceId] | None = Field(default=None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _one(self) -> TargetSpec:
        given = [k for k in ("all", "group", "devices") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a target is exactly one of all, group, devices "
                             f"(given: {', '.join(given) or 'none'})")
        if self.devices is not None and len(set(self.devices)) != len(self.devices):
            raise ValueError("the device list names a device twice")
        return self


class StageSpec(_Body):
    """A share of the target in percent (0.01 .. 100) or a number of devices."""

    percent: float | None = Field(default=None, gt=0, le=100, multiple_of=0.01)
    count: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _one(self) -> StageSpec:
        if (self.percent is None) == (self.count is None):
            raise ValueError("a stage is exactly one of percent, count")
        return self


class RolloutCreate(_Body):
    version: VersionStr
    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    target: TargetSpec
    stages: list[StageSpec] = Field(min_length=1, max_length=MAX_STAGES, examples=[
        [{"percent": 1}, {"percent": 10}, {"percent": 50}, {"percent": 100}]])
    success_threshold: float | None = Field(default=None, gt=0, le=1, description=(
        "share of a stage's devices that must have confirmed before the next stage opens (default 0.9)"))
    soak_s: int | None = Field(default=None, ge=0, le=MAX_SOAK_S, description=(
        "seconds a stage stays open at least before the next one opens (default 0)"))
    failure_threshold: float | None = Field(default=None, ge=0, lt=1, description=(
        "the rollout pauses when a stage's share of failed devices passes this (default 0.2)"))
    min_sample: int | None = Field(default=None, ge=1, le=1_000_000, description=(
        "finished devices a stage needs before its failure rate counts (default 5)"))
    max_consecutive_failures: int | None = Field(default=None, ge=0, le=1_000_000, description=(
        "the rollout pauses after this many failures in a row (default 3; 0: no limit)"))
    by: Actor = "operator"
    reason: Reason | None = None

    @model_validator(mode="after")
    def _stages(self) -> RolloutCreate:
        kinds = {"percent" if s.percent is not None else "count" for s in self.stages}
        if len(kinds) > 1:
            raise ValueError("stages are all percentages or all counts, not a mixture")
        shares = [s.percent for s in self.stages if s.percent is not None]
        if any(b <= a for a, b in itertools.pairwise(shares)):
            given = ", ".join(f"{p:g}" for p in shares)
            raise ValueError(f"stage percentages must increase (given: {given})")
        return self

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "version": "1.2.0", "name": "1.2.0 to the lab", "target": {"group": "lab-east"},
        "stages": [{"percent": 10}, {"percent": 50}, {"percent": 100}], "success_threshold": 0.9,
        "soak_s": 3600, "failure_threshold": 0.2, "min_sample": 5, "max_consecutive_failures": 3,
        "by": "ana", "reason": "1.2.0 passed the bench"}]})


class RolloutAction(_Body):
    reason: Reason
    by: Actor = "operator"

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "three boards reverted: the sensor driver", "by": "ana"}]})


class StageStatus(BaseModel):
    stage: int = Field(description="0-based")
    percent: float | None = None
    count: int | None = None
    devices: int = Field(description="devices offered the release in this stage")
    confirmed: int
    failed: int = Field(description="reverted, failed or refused by the STM32")
    failure_rate: float | None
    expected: int | None = Field(description=(
        "devices the stage is for: its count, or its share of the target's devices known at creation"))
    needed: int = Field(description="confirmed devices that open the next stage")
    opened_at: str | None


class Transition(BaseModel):
    at: str
    actor: str = Field(description='an operator\'s name, or "server" for automatic steps')
    action: str = Field(description="create, pause, resume, abort, advance, complete")
    from_state: str | None
    to_state: str
    stage: int
    reason: str


class RolloutReply(BaseModel):
    id: int
    name: str
    version: str
    target: dict[str, object]
    state: RolloutState
    current_stage: int = Field(description="the newest stage opened (0-based)")
    success_threshold: float
    soak_s: int
    failure_threshold: float
    min_sample: int
    max_consecutive_failures: int
    consecutive_failures: int
    devices: int = Field(description="devices offered the release by this rollout")
    confirmed: int
    failed: int
    failure_rate: float | None
    next_stage_at: str | None = Field(description="when the next stage opens by itself (its stage succeeded)")
    created_at: str
    created_by: str
    updated_at: str
    stages: list[StageStatus]
    transitions: list[Transition] | None = Field(default=None, description="with GET /rollouts/{id}")


class RolloutList(BaseModel):
    items: list[RolloutReply]


class RolloutDevice(BaseModel):
    device_id: str
    stage: int = Field(description="0-based")
    status: Literal["offered", "confirmed", "failed", "reverted"] = Field(description="its latest outcome")
    update_id: int
    updated_at: str


class RolloutDevicePage(BaseModel):
    items: list[RolloutDevice]
    total: int
    offset: int
    limit: int


class GroupSet(_Body):
    group: GroupName
    by: Actor = "operator"


class PinSet(_Body):
    version: VersionStr
    by: Actor = "operator"


class WindowSet(_Body):
    start: TimeOfDay = Field(description="UTC, HH:MM")
    end: TimeOfDay = Field(description="UTC, HH:MM; before start: the window spans midnight")
    by: Actor = "operator"

    @model_validator(mode="after")
    def _differ(self) -> WindowSet:
        if parse_hhmm(self.start) == parse_hhmm(self.end):
            raise ValueError("start and end are the same time; delete the window to allow any time")
        return self


class RetrySet(_Body):
    version: VersionStr
    reason: Reason
    by: Actor = "operator"


class DeviceSettings(BaseModel):
    device_id: str
    group: str | None = Field(description="the group that counts: the operator's, else the reported one")
    group_set_by_operator: str | None
    reported_group: str | None
    pin: str | None
    updated_at: str | None
    updated_by: str | None


class WindowReply(BaseModel):
    start: str
    end: str


class GroupReply(BaseModel):
    group: str
    devices: int
    pin: str | None
    window: WindowReply | None
    updated_at: str | None
    updated_by: str | None


class GroupList(BaseModel):
    items: list[GroupReply]


class RetryReply(BaseModel):
    device_id: str
    version: str
    after_update_id: int
    actor: str
    reason: str
