"""The update server: FastAPI application for the ESP32 bridges.

    >>> from fota_server.app import ServerSettings, create_app
    >>> app = create_app(ServerSettings(firmware_dir=Path(".fota/firmware"), db_path=":memory:"))

Routes (all under /api/v1, documented in /openapi.json):
    device:   POST /checkin                        device state in, decision out
              GET|HEAD /firmware/{version}/{name}  slot image, single-range Range support (206 / 416)
              POST /report                         progress and result of an update
    operator: GET /devices, /devices/{id}, /updates   the registry and the update history (paged)
              POST /sync                           sync from S3 now (502 / 503 when it fails)
              GET /status                          local release and last sync
              /rollouts, /groups, /devices/{id}/... the fleet (fota_server.fleet_api)
    console:  /, /devices, /releases, /rollouts ...   the web console (fota_server.console), outside /api/v1

Before any route runs, :class:`~fota_server.limits.GuardMiddleware` checks the URL and header
sizes, the role's token (:mod:`fota_server.auth`) and the body size; check-ins and reports are
then rate-limited per device (:mod:`fota_server.ratelimit`). The server refuses to listen beyond
loopback without both tokens (see ``fota_server.serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fota_formats.errors import FotaError
from fota_formats.semver import Version
from fota_s3.store import S3Store
from starlette.exceptions import HTTPException as StarletteHTTPException

from fota_server.auth import Tokens, document_roles
from fota_server.console import LOGIN_RATE, console_router, mount_static
from fota_server.decision import Device, decide
from fota_server.downloads import DownloadUrl, local_url
from fota_server.firmware import (
    FirmwareFolder,
    LocalRelease,
    SyncError,
    SyncResult,
    release_version,
    sync_once,
)
from fota_server.fleet import Fleet
from fota_server.fleet_api import fleet_router
from fota_server.fleet_store import StageFull
from fota_server.limits import MAX_BODY_BYTES, GuardMiddleware
from fota_server.models import (
    DEVICE_HISTORY,
    DEVICE_ID_PATTERN,
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    VERSION_PATTERN,
    CheckIn,
    CheckInReply,
    DeviceDetail,
    DevicePage,
    ErrorReply,
    Report,
    ReportReply,
    StatusReply,
    SyncReply,
    UpdatePage,
)
from fota_server.ranges import RangeError, parse_range
from fota_server.ratelimit import DEFAULT_DEVICE_RATE, DeviceLimiter, parse_rate
from fota_server.registry import Enrolment, Health, Registry, RegistryError
from fota_server.rollout import minute_of_day
from fota_server.trust import KeyRing

log = logging.getLogger("fota_server")
API = "/api/v1"


@dataclass
class ServerSettings:
    firmware_dir: Path
    db_path: Path | str  # the registry: a SQLite file, ":memory:" or a database URL (fota_server.db.engine)
    token: str | None = field(default=None, repr=False)  # the device token
    operator_token: str | None = field(default=None, repr=False)
    sync_interval_s: float | None = None  # None: no periodic sync (only on start and on request)
    store_factory: Callable[[], S3Store] | None = None  # None: no S3 (sync is disabled)
    source: str = "no S3 configured"
    sync_on_start: bool = True
    download_url: DownloadUrl = local_url  # the image URL a check-in answers (fota_server.downloads)
    device_rate: str = DEFAULT_DEVICE_RATE  # check-ins and reports per device ("30/minute")
    max_body: int = MAX_BODY_BYTES
    trusted_keys: KeyRing = field(default_factory=KeyRing)  # release keys (fota_server.trust); none: no sync
    clock: Callable[[], float] = time.time  # the fleet's clock: soak times, windows (tests: a virtual one)


class ServerState:
    """What the request handlers share: the registry, the releases in memory, the sync status."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        parse_rate(settings.device_rate)  # a malformed rate is refused before the database is opened
        self.folder = FirmwareFolder(settings.firmware_dir)
        self.registry = Registry(settings.db_path)
        self.limiter = DeviceLimiter(settings.device_rate, self.registry)
        self.login_limiter = DeviceLimiter(LOGIN_RATE, self.registry, settings.clock)
        self.fleet = Fleet(self.registry, settings.clock)
        self._release: LocalRelease | None = None
        self._loaded_link: str | None = None  # where `current` pointed when _release was loaded
        self.by_version: dict[str, LocalRelease] = {}
        self.last_sync: SyncResult | None = None
        self._store: S3Store | None = None
        self._sync_lock = asyncio.Lock()

    def _current_link(self) -> str | None:
        try:
            return os.readlink(self.folder.current)
        except OSError:
            return None

    @property
    def release(self) -> LocalRelease | None:
        """The release ``current`` points to, reloaded when another server process sharing the
        folder switched the link (a readlink per call: a few microseconds)."""
        if self._current_link() != self._loaded_link:
            self.load_current()
        return self._release

    def load_current(self) -> None:
        self._loaded_link = self._current_link()
        try:
            self.folder.recover()  # after a crash: leftovers removed, a broken `current` replaced
            rel = self.folder.load()
        except SyncError as e:
            log.error("%s: serving no release until the next successful sync", e)
            self._release = None
            return
        self._release = rel
        if rel is not None:
            self.by_version[str(rel.version)] = rel
            # keep only what is still on disk: the current release and the previous one
            on_disk = {p.resolve() for p in self.folder.releases()}
            self.by_version = {v: r for v, r in self.by_version.items() if r.path in on_disk}
            log.info("serving release %s%s", rel.version, " (marked as a downgrade)" if rel.downgrade else "")

    def release_for(self, version: str) -> LocalRelease | None:
        rel = self.by_version.get(version)
        if rel is not None:
            return rel
        for path in reversed(self.folder.releases()):  # the previous release, kept for running downloads
            if str(release_version(path)) == version:
                try:
                    rel = self.folder.load(path)
                except SyncError as e:
                    log.warning("%s", e)
                    return None
                if rel is not None:
                    self.by_version[version] = rel
                return rel
        return None

    def _sync_blocking(self) -> SyncResult:
        factory = self.settings.store_factory
        if factory is None:
            return SyncResult("disabled", "no S3 bucket configured for this server", None, None)
        try:
            if self._store is None:
                self._store = factory()
            with self.registry.sync_lock(self.folder.root):  # one sync at a time, across processes
                result = sync_once(self._store, self.folder, self.settings.trusted_keys)
            if result.status == "error":
                # Connect afresh next time: the embedded endpoint may have been restarted on another port.
                self._store = None
            return result
        except FotaError as e:
            return SyncResult("error", str(e), None, None)
        except Exception as e:  # keep serving whatever happens; the status route shows the error
            log.exception("sync failed unexpectedly")
            return SyncResult("error", f"Failed to sync: unexpected {type(e).__name__}: {e}", None, None)

    async def sync(self) -> SyncResult:
        async with self._sync_lock:
            result = await asyncio.to_thread(self._sync_blocking)
            previous, self.last_sync = self.last_sync, result
            try:
                self.registry.record_sync(result.as_dict())  # what /status of every process shows
            except Exception as e:
                log.error("sync: could not record the result in the registry: %s", e)
            if result.status == "updated":
                self.load_current()
            # A periodic sync that finds nothing new logs at debug level, so that the log shows changes.
            repeated = previous is not None and (previous.status, previous.message) == (result.status,
                                                                                         result.message)
            level = logging.ERROR if result.status == "error" else logging.DEBUG if repeated else logging.INFO
            log.log(level, "sync: %s", result.message)
            return result

    async def sync_loop(self) -> None:
        interval = self.settings.sync_interval_s
        if self.settings.sync_on_start:
            await self.sync()
        if not interval:
            return
        while True:
            await asyncio.sleep(interval)
            await self.sync()


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        if err.get("type") == "extra_forbidden":
            parts.append(f"{loc}: unknown field (not part of this API)")
        else:
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _page_url(path: str, offset: int, limit: int, total: int, **query: str | None) -> str | None:
    if offset + limit >= total:
        return None
    extra = "".join(f"&{k}={v}" for k, v in query.items() if v is not None)
    return f"{API}{path}?offset={offset + limit}&limit={limit}{extra}"


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorReply, "description": "Malformed Content-Length"},
    401: {"model": ErrorReply, "description": "Missing or wrong token for this route's role"},
    403: {"model": ErrorReply, "description": "The token of the other role"},
    413: {"model": ErrorReply, "description": f"Body longer than {MAX_BODY_BYTES} bytes"},
    414: {"model": ErrorReply, "description": "URL too long"},
    422: {"model": ErrorReply, "description": "Invalid request (the detail names the field)"},
    431: {"model": ErrorReply, "description": "Headers too large"},
}
_RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorReply, "description": "Too many requests from this device; see Retry-After",
          "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}},
}

Offset = Annotated[int, Query(ge=0, le=2**62, description="items to skip")]
Limit = Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX,
                             description=f"items per page, at most {PAGE_LIMIT_MAX}")]


def create_app(settings: ServerSettings) -> FastAPI:
    """The application; its state (registry, local release) is ready before the first request,
    the background sync runs while the ASGI lifespan does (uvicorn, or a TestClient context)."""
    tokens = Tokens(settings.token, settings.operator_token)
    state = ServerState(settings)
    state.load_current()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(state.sync_loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="stm32-fota update server", version="1", lifespan=lifespan,
                  description="Tells each ESP32 bridge which slot image to send to its STM32, serves the "
                              "images with HTTP Range support, and records devices and update outcomes. "
                              "Device routes take the device token, operator routes the operator token "
                              f"(Authorization: Bearer). Bodies are limited to {settings.max_body} bytes; "
                              f"check-ins and reports to {settings.device_rate} per device.")
    app.add_middleware(GuardMiddleware, tokens=tokens, max_body=settings.max_body)

    app.state.fota = state

    def st() -> ServerState:
        return state

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 413:  # FastAPI's body limit says only "Content Too Large"
            return JSONResponse({"detail": f"the body is longer than {settings.max_body} bytes, the most "
                                           "this server accepts"}, status_code=413)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RegistryError)
    async def on_registry(_: Request, exc: RegistryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    def rate_limit(device_id: str) -> None:
        wait = st().limiter.retry_after(device_id)
        if wait is not None:
            raise HTTPException(429, f"too many requests from device {device_id} (at most "
                                     f"{settings.device_rate}); retry in {wait} s",
                                headers={"Retry-After": str(wait)})

    # GuardMiddleware enforces the roles (before the body is read) and document_roles writes them
    # into /openapi.json, both from fota_server.auth.role_for.
    # max_body_size: FastAPI counts a body as it streams in, 413 past the limit (on the routes, so
    # inside GuardMiddleware, whose answers it leaves alone).
    device = APIRouter(prefix=API, responses=_ERRORS, tags=["device"], max_body_size=settings.max_body)
    operator = APIRouter(prefix=API, responses=_ERRORS, tags=["operator"], max_body_size=settings.max_body)

    # The hot path: the reply is built as JSON directly (the model documents it in the schema; the
    # tests check the replies against it), which saves FastAPI's response validation per check-in.
    @device.post("/checkin", response_class=Response,
                 responses={200: {"model": CheckInReply}, **_RATE_LIMITED},
                 summary="Device check-in: answered with an update decision")
    async def checkin(body: CheckIn) -> Response:
        rate_limit(body.device_id)
        return Response(json.dumps(_checkin(body), separators=(",", ":")), media_type="application/json")

    def _checkin(body: CheckIn) -> dict[str, Any]:
        s = st()
        slots = {k: v.model_dump() for k, v in (("A", body.slots.A), ("B", body.slots.B))}
        health = Health(body.temp_centi, body.uptime_ms, body.security_counter, body.key_id)
        epoch = s.registry.record_checkin(body.device_id, body.running_slot, body.running_version, slots,
                                          body.group, health)
        fleet = s.fleet
        cfg = fleet.config(epoch)
        now = fleet.clock()
        if cfg.next_due is not None and now >= cfg.next_due:  # a stage's soak time is over: open the next
            fleet.tick()
            cfg = fleet.config(fleet.epoch())
        device = Device(body.device_id, body.running_slot, Version.parse(body.running_version), body.group,
                        minute=minute_of_day(now))
        rel = s.release
        rollout = None
        gated = False
        if not cfg.empty:  # without any rollout, group, pin or window: the newest release for all
            plan = cfg.plan(body.device_id, body.group, str(rel.version) if rel is not None else None)
            rollout, gated = plan.rollout, plan.gated
            if plan.version is None:
                rel = None
            elif rel is None or str(rel.version) != plan.version:
                rel = s.release_for(plan.version)
            stage = None
            if rollout is not None:
                stage = rollout.current_stage if rollout.by_count else rollout.stage_of(body.device_id)
            device = dataclasses.replace(device, group=plan.group, pin=plan.pin, window=plan.window,
                                         stage=stage)
        d = decide(device, rel, rollout, gated)
        if d.update and s.registry.was_reverted(body.device_id, d.version or "", d.sha256 or ""):
            d = decide(dataclasses.replace(device, reverted_before=True), rel, rollout, gated)
        if not d.update:
            return {"update": False, "reason": d.reason}
        assert d.version and d.target_slot and d.file and d.size is not None and d.sha256
        enrolment = None
        if rollout is not None:
            enrolment = Enrolment(rollout.id, None if rollout.by_count else d.stage, rollout.current_stage,
                                  rollout.count_cap() if rollout.by_count else None)
        try:
            uid, created = s.registry.open_update(body.device_id, d.version, d.target_slot, d.file, d.size,
                                                  d.sha256, d.downgrade, body.running_slot,
                                                  body.running_version, enrolment)
        except StageFull:
            assert rollout is not None
            return {"update": False, "reason": f"{rollout.describe_stage()} of rollout {rollout.id} of "
                                               f"{rollout.version} has all its devices"}
        if created:
            log.info("device %s (slot %s, %s): update %d -> %s into slot %s%s", body.device_id,
                     body.running_slot, body.running_version, uid, d.version, d.target_slot,
                     " (downgrade)" if d.downgrade else "")
        return {"update": True, "reason": d.reason, "update_id": uid, "version": d.version,
                "target_slot": d.target_slot, "url": settings.download_url(d.version, d.file), "size": d.size,
                "sha256": d.sha256, "downgrade": d.downgrade, "security_counter": d.security_counter}

    image_responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {"application/octet-stream": {}}, "description": "The whole image"},
        206: {"content": {"application/octet-stream": {}}, "description": "The requested range"},
        404: {"model": ErrorReply, "description": "No such release or image on this server"},
        416: {"model": ErrorReply, "description": "Malformed or unsatisfiable range"}}

    async def firmware(request: Request,
                       version: Annotated[str, PathParam(pattern=VERSION_PATTERN, max_length=17)],
                       name: Literal["slot-a.bin", "slot-b.bin"],
                       range_: Annotated[str | None, Header(alias="Range", max_length=200)] = None,
                       ) -> Response:
        rel = st().release_for(version)
        if rel is None:
            raise HTTPException(404, f"release {version} is not on this server")
        data = rel.files[name]
        size = len(data)
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{rel.sha256[name]}"', "Cache-Control": "no-cache"}
        try:
            span = parse_range(range_, size)
        except RangeError as e:
            return JSONResponse({"detail": str(e)}, status_code=416,
                                headers={"Content-Range": f"bytes */{size}"})
        status = 200
        body = data
        if span is not None:
            first, last = span
            body = data[first:last + 1]
            status = 206
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        headers["Content-Length"] = str(len(body))
        if request.method == "HEAD":
            return Response(b"", status_code=status, headers=headers, media_type="application/octet-stream")
        return Response(body, status_code=status, headers=headers, media_type="application/octet-stream")

    for method, op_id, summary in (("GET", "download_image", "Download a slot image (Range supported)"),
                                   ("HEAD", "head_image", "Size and hash (ETag) of a slot image")):
        device.add_api_route("/firmware/{version}/{name}", firmware, methods=[method], operation_id=op_id,
                             summary=summary, response_class=Response, responses=image_responses)

    @device.post("/report", response_model=ReportReply, summary="Progress or result of an update",
                 responses={404: {"model": ErrorReply}, 409: {"model": ErrorReply}, **_RATE_LIMITED})
    async def report(body: Report) -> dict[str, Any]:
        rate_limit(body.device_id)
        upd = st().registry.report(body.device_id, body.update_id, body.stage, body.offset, body.outcome,
                                   body.reason, body.duration_ms, body.running_slot, body.running_version,
                                   now=settings.clock())
        if body.stage == "result":
            log.info("device %s: update %d %s%s%s", body.device_id, body.update_id, body.outcome,
                     f" ({body.reason})" if body.reason else "",
                     f" after {body.duration_ms} ms" if body.duration_ms is not None else "")
        return {"ok": True, "update": upd}

    @operator.get("/devices", response_model=DevicePage, summary="Devices seen, by ID, one page at a time")
    async def devices(offset: Offset = 0, limit: Limit = PAGE_LIMIT_DEFAULT) -> dict[str, Any]:
        reg = st().registry
        total = reg.count_devices()
        return {"items": reg.list_devices(offset, limit), "total": total, "offset": offset, "limit": limit,
                "next": _page_url("/devices", offset, limit, total)}

    @operator.get("/devices/{device_id}", response_model=DeviceDetail,
                  summary=f"One device and its newest {DEVICE_HISTORY} updates",
                  responses={404: {"model": ErrorReply}})
    async def device_detail(device_id: Annotated[str, PathParam(pattern=DEVICE_ID_PATTERN)],
                            ) -> dict[str, Any]:
        reg = st().registry
        dev = reg.device(device_id.lower())
        if dev is None:
            raise HTTPException(404, f"device {device_id} has never checked in")
        return {**dev, "updates": reg.list_updates(device_id.lower(), 0, DEVICE_HISTORY),
                "updates_total": reg.count_updates(device_id.lower())}

    @operator.get("/updates", response_model=UpdatePage,
                  summary="Update history, newest first, one page at a time")
    async def updates(device_id: Annotated[str | None, Query(pattern=DEVICE_ID_PATTERN)] = None,
                      offset: Offset = 0, limit: Limit = PAGE_LIMIT_DEFAULT) -> dict[str, Any]:
        reg = st().registry
        dev = device_id.lower() if device_id else None
        total = reg.count_updates(dev)
        return {"items": reg.list_updates(dev, offset, limit), "total": total, "offset": offset,
                "limit": limit, "next": _page_url("/updates", offset, limit, total, device_id=dev)}

    @operator.post("/sync", response_model=SyncReply, summary="Sync the local release from S3 now",
                   responses={502: {"model": SyncReply,
                                    "description": "The sync failed (S3, or a bad release); detail says why"},
                              503: {"model": SyncReply, "description": "No S3 configured for this server"}})
    async def sync_now() -> Response:
        result = await st().sync()
        body = result.as_dict()
        if not result.failed:
            return JSONResponse(body)
        return JSONResponse({**body, "detail": result.message},
                            status_code=503 if result.status == "disabled" else 502)

    @operator.get("/status", response_model=StatusReply, summary="Local release and last sync result")
    async def status() -> dict[str, Any]:
        s = st()
        rel = s.release
        files = {n: {"size": len(b), "sha256": rel.sha256[n]} for n, b in rel.files.items()} if rel else {}
        return {"version": str(rel.version) if rel else None, "downgrade": rel.downgrade if rel else None,
                "files": files, "source": settings.source,
                "last_sync": s.registry.last_sync(),
                "devices": s.registry.count_devices()}

    app.include_router(device)
    app.include_router(operator)
    app.include_router(fleet_router(lambda: st().fleet, API, _ERRORS, settings.max_body))
    app.include_router(console_router(st, tokens))  # the web console at / (fota_server.console)
    mount_static(app)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_roles(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
