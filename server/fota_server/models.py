"""Request and response bodies of the bridge API (they make up the OpenAPI schema).

Every field is bounded (lengths, integer ranges, patterns), so that no request can reach the
registry or the decision with a value they cannot handle: a bad request is a 422, never a 500.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fota_formats.fleet import GROUP_PATTERN
from fota_formats.semver import Version, VersionError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

DEVICE_ID_PATTERN = r"^[0-9a-fA-F]{24}$"  # the STM32's 96-bit unique ID in hex
VERSION_PATTERN = r"^[0-9]{1,5}\.[0-9]{1,5}\.[0-9]{1,5}$"
MAX_INT = 2**31 - 1
PAGE_LIMIT_DEFAULT = 100
PAGE_LIMIT_MAX = 1000
DEVICE_HISTORY = 100  # updates shown with one device


def _check_version(text: str) -> str:
    try:
        return str(Version.parse(text))
    except VersionError as e:
        raise ValueError(str(e)) from None


def _lower(text: str) -> str:
    return text.lower()


VersionStr = Annotated[str, Field(pattern=VERSION_PATTERN, max_length=17, examples=["1.1.0"]),
                       AfterValidator(_check_version)]
DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN, examples=["0123456789abcdef01234567"]),
                     AfterValidator(_lower)]
SlotName = Literal["A", "B"]
GroupName = Annotated[str, Field(pattern=GROUP_PATTERN, examples=["lab-east"],
                                 description="a group: letters, digits, '.', '_', '-' (at most 64)")]


def _unknown_slot(value: object) -> object:
    # A bridge that lost contact with its STM32 reports the running slot as "?" (unknown).
    return None if value == "?" else value


ReportedSlot = Annotated[SlotName | None, BeforeValidator(_unknown_slot)]


class _Body(BaseModel):
    # An unknown field is a 422 naming it: a typo or a newer client must not be silently ignored.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class SlotInfo(_Body):
    state: Literal["valid", "empty", "invalid"]
    version: VersionStr | None = None


class Slots(_Body):
    A: SlotInfo
    B: SlotInfo


class CheckIn(_Body):
    device_id: DeviceId
    running_slot: SlotName
    running_version: VersionStr
    slots: Slots
    group: GroupName | None = Field(default=None, description=(
        "the device's group as the bridge knows it (an operator's setting wins)"))
    security_counter: int | None = Field(default=None, ge=0, le=2**32 - 1, description=(
        "the STM32 journal's anti-rollback floor (INFO security_floor)"))
    key_id: str | None = Field(default=None, pattern="^[0-9a-f]{8}$", description=(
        "the running image's signing key: the first 4 bytes of its KEYHASH TLV, 8 hex digits"))
    temp_centi: int | None = Field(default=None, ge=-32768, le=32767, description=(
        "the STM32's die temperature from its INFO, in 0.01 degC"))
    uptime_ms: int | None = Field(default=None, ge=0, le=2**32 - 1, description=(
        "milliseconds since the STM32's application started, from its INFO"))


class CheckInReply(BaseModel):
    update: bool
    reason: str
    update_id: int | None = None
    version: str | None = None
    target_slot: SlotName | None = None
    url: str | None = None
    size: int | None = None
    sha256: str | None = None
    downgrade: bool | None = None
    security_counter: int | None = Field(default=None, description=(
        "the offered image's security counter (its SEC_CNT TLV), for the bridge's BEGIN"))


class Report(_Body):
    device_id: DeviceId
    update_id: int = Field(ge=1, le=2**62)
    stage: Literal["progress", "result"]
    offset: int = Field(default=0, ge=0, le=MAX_INT)
    outcome: Literal["confirmed", "reverted", "failed"] | None = None
    reason: str | None = Field(default=None, max_length=500)
    duration_ms: int | None = Field(default=None, ge=0, le=MAX_INT)
    running_slot: ReportedSlot = Field(default=None, description='"A", "B", or null / "?" when unknown')
    running_version: VersionStr | None = None


class UpdateRecord(BaseModel):
    id: int
    device_id: str
    version: str
    target_slot: str
    file: str
    size: int
    sha256: str
    downgrade: bool
    from_slot: str
    from_version: str
    status: Literal["offered", "in_progress", "confirmed", "reverted", "failed"]
    offset: int
    outcome: str | None
    reason: str | None
    duration_ms: int | None
    created_at: str
    updated_at: str
    finished_at: str | None
    result_slot: str | None
    result_version: str | None
    rollout_id: int | None = Field(default=None, description="the rollout that made the offer, if one did")


class ReportReply(BaseModel):
    ok: bool
    update: UpdateRecord


class SlotRecord(BaseModel):
    state: str | None
    version: str | None


class DeviceRecord(BaseModel):
    device_id: str
    first_seen: str
    last_seen: str
    checkins: int
    running_slot: str | None
    running_version: str | None
    slots: dict[str, SlotRecord]
    reported_group: str | None = Field(default=None, description="the group its bridge reports, if any")
    temp_centi: int | None = Field(default=None, description="die temperature then, 0.01 degC")
    uptime_ms: int | None = Field(default=None, description="the application's uptime at the last check-in")
    security_counter: int | None = Field(default=None, description="the journal's anti-rollback floor then")
    key_id: str | None = Field(default=None, description="the running image's signing key then, 8 hex digits")


class DeviceDetail(DeviceRecord):
    updates: list[UpdateRecord] = Field(description=f"the newest {DEVICE_HISTORY} updates, newest first")
    updates_total: int = Field(description="all updates of this device (GET /updates?device_id= pages them)")


class _Page(BaseModel):
    total: int = Field(description="how many items there are in all")
    offset: int
    limit: int
    next: str | None = Field(description="the URL of the next page; null on the last one")


class DevicePage(_Page):
    items: list[DeviceRecord]


class UpdatePage(_Page):
    items: list[UpdateRecord]


class SyncReply(BaseModel):
    status: Literal["updated", "up-to-date", "older", "empty", "error", "disabled"]
    message: str
    local_version: str | None
    remote_version: str | None
    at: str
    duration_ms: int
    detail: str | None = Field(default=None, description="why the sync failed (with 502 / 503)")


class StatusReply(BaseModel):
    version: str | None
    downgrade: bool | None
    files: dict[str, Any]
    source: str
    last_sync: SyncReply | None
    devices: int


class ErrorReply(BaseModel):
    detail: str
