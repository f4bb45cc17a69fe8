"""The operator's fleet routes: rollouts, groups, pins, maintenance windows, retries.

    POST /rollouts                     create (201)          GET /rollouts[?state=]   list
    GET  /rollouts/{id}                one, with its transitions
    GET  /rollouts/{id}/devices        its devices: stage, latest outcome (paged; ?status=)
    POST /rollouts/{id}/pause|resume|abort|advance           body: reason (and by)
    GET  /groups, /groups/{group}      devices per group, pin, window
    PUT|DELETE /groups/{group}/pin     hold a group at a version
    PUT|DELETE /groups/{group}/window  offer only inside HH:MM-HH:MM UTC
    GET  /devices/{id}/settings        group (set or reported), pin
    PUT|DELETE /devices/{id}/group, /devices/{id}/pin
    POST /devices/{id}/retry           offer a reverted release once more

All under the operator token (fota_server.auth); the rules they steer: docs/fleet.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from fota_server.fleet import Fleet
from fota_server.fleet_models import (
    ACTOR_PATTERN,
    DeviceSettings,
    GroupList,
    GroupReply,
    GroupSet,
    PinSet,
    RetryReply,
    RetrySet,
    RolloutAction,
    RolloutCreate,
    RolloutDevicePage,
    RolloutList,
    RolloutReply,
    RolloutState,
    WindowSet,
)
from fota_server.models import (
    DEVICE_ID_PATTERN,
    GROUP_PATTERN,
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    ErrorReply,
)
from fota_server.rollout import parse_hhmm

RolloutId = Annotated[int, PathParam(ge=1, le=2**62)]
DevicePath = Annotated[str, PathParam(pattern=DEVICE_ID_PATTERN)]
GroupPath = Annotated[str, PathParam(pattern=GROUP_PATTERN)]
# Who acts, in a query: the same rule as the bodies' `by` (printable, 1-64 characters; PostgreSQL
# text cannot hold NUL, so it is refused on both backends as 422, never a 500).
ActorQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=ACTOR_PATTERN)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorReply, "description": "No such rollout"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorReply, "description": "The action does not apply in the rollout's state"}}


def fleet_router(fleet: Callable[[], Fleet], prefix: str, responses: dict[int | str, dict[str, Any]],
                 max_body: int) -> APIRouter:
    api = APIRouter(prefix=prefix, responses=responses, tags=["fleet"], max_body_size=max_body)

    @api.post("/rollouts", response_model=RolloutReply, status_code=201, summary="Create a rollout")
    async def create(body: RolloutCreate) -> dict[str, Any]:
        return fleet().create_rollout(body.model_dump(), body.by)

    @api.get("/rollouts", response_model=RolloutList, summary="Rollouts, newest first")
    async def rollouts(state: Annotated[RolloutState | None, Query(description="only those in this state")]
                       = None) -> dict[str, Any]:
        return {"items": fleet().list_rollouts(state)}

    @api.get("/rollouts/{rollout_id}", response_model=RolloutReply, responses=_NOT_FOUND,
             summary="One rollout: stages, counts and every transition")
    async def rollout(rollout_id: RolloutId) -> dict[str, Any]:
        return fleet().rollout(rollout_id)

    @api.get("/rollouts/{rollout_id}/devices", response_model=RolloutDevicePage, responses=_NOT_FOUND,
             summary="The devices a rollout offered its release to: stage and latest outcome")
    async def rollout_devices(rollout_id: RolloutId,
                              status: Annotated[Literal["offered", "confirmed", "failed", "reverted"] | None,
                                                Query(description="only devices with this outcome")] = None,
                              offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
                              limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX)] = PAGE_LIMIT_DEFAULT,
                              ) -> dict[str, Any]:
        return fleet().devices(rollout_id, status, offset, limit)

    def add_action(action: Literal["pause", "resume", "abort", "advance"], summary: str) -> None:
        async def act(rollout_id: RolloutId, body: RolloutAction) -> dict[str, Any]:
            return fleet().act(rollout_id, action, body.by, body.reason)

        api.add_api_route(f"/rollouts/{{rollout_id}}/{action}", act, methods=["POST"], summary=summary,
                          response_model=RolloutReply, responses={**_NOT_FOUND, **_CONFLICT},
                          operation_id=f"{action}_rollout")

    add_action("pause", "Pause a rollout: no new offers (active rollouts)")
    add_action("resume", "Resume a paused rollout (its failure count in a row starts again)")
    add_action("abort", "Abort a rollout for good: no new offers of its release")
    add_action("advance", "Open the next stage now (after the last: the rollout completes)")

    @api.get("/groups", response_model=GroupList, summary="Groups: devices, pin and window of each")
    async def groups() -> dict[str, Any]:
        return {"items": fleet().groups()}

    @api.get("/groups/{group}", response_model=GroupReply, summary="One group")
    async def group(group: GroupPath) -> dict[str, Any]:
        return fleet().group(group)

    @api.put("/groups/{group}/pin", response_model=GroupReply, summary="Hold a group's devices at a version")
    async def pin_group(group: GroupPath, body: PinSet) -> dict[str, Any]:
        return fleet().set_group(group, body.by, pin_version=body.version)

    @api.delete("/groups/{group}/pin", response_model=GroupReply, summary="Release a group's pin")
    async def unpin_group(group: GroupPath, by: ActorQuery = "operator",
                          ) -> dict[str, Any]:
        return fleet().set_group(group, by, pin_version=None)

    @api.put("/groups/{group}/window", response_model=GroupReply,
             summary="Offer updates to a group only inside a daily UTC window")
    async def set_window(group: GroupPath, body: WindowSet) -> dict[str, Any]:
        return fleet().set_group(group, body.by, window_start=parse_hhmm(body.start),
                                 window_end=parse_hhmm(body.end))

    @api.delete("/groups/{group}/window", response_model=GroupReply, summary="Remove a group's window")
    async def delete_window(group: GroupPath, by: ActorQuery = "operator",
                            ) -> dict[str, Any]:
        return fleet().set_group(group, by, window_start=None, window_end=None)

    @api.get("/devices/{device_id}/settings", response_model=DeviceSettings,
             summary="A device's group (the operator's or reported) and pin")
    async def device_settings(device_id: DevicePath) -> dict[str, Any]:
        return fleet().device_settings(device_id.lower())

    @api.put("/devices/{device_id}/group", response_model=DeviceSettings,
             summary="Put a device in a group (wins over the group its bridge reports)")
    async def set_device_group(device_id: DevicePath, body: GroupSet) -> dict[str, Any]:
        return fleet().set_device(device_id.lower(), body.by, group_name=body.group)

    @api.delete("/devices/{device_id}/group", response_model=DeviceSettings,
                summary="Forget the operator's group (the reported one counts again)")
    async def delete_device_group(device_id: DevicePath,
                                  by: ActorQuery = "operator") -> dict[str, Any]:
        return fleet().set_device(device_id.lower(), by, group_name=None)

    @api.put("/devices/{device_id}/pin", response_model=DeviceSettings, summary="Hold a device at a version")
    async def pin_device(device_id: DevicePath, body: PinSet) -> dict[str, Any]:
        return fleet().set_device(device_id.lower(), body.by, pin_version=body.version)

    @api.delete("/devices/{device_id}/pin", response_model=DeviceSettings, summary="Release a device's pin")
    async def unpin_device(device_id: DevicePath,
                           by: ActorQuery = "operator") -> dict[str, Any]:
        return fleet().set_device(device_id.lower(), by, pin_version=None)

    @api.post("/devices/{device_id}/retry", response_model=RetryReply,
              responses={409: {"model": ErrorReply, "description": "The device did not revert that version"}},
              summary="Offer a release that the device reverted once more")
    async def retry(device_id: DevicePath, body: RetrySet) -> dict[str, Any]:
        return fleet().allow_retry(device_id.lower(), body.version, body.by, body.reason)

    return api
