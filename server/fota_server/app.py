"""The update server: FastAPI application for the ESP32 bridges.

    >>> from fota_server.app import ServerSettings, create_app
    >>> app = create_app(ServerSettings(firmware_dir=Path(".fota/firmware"), db_path=":memory:"))

Routes (all under /api/v1, documented in /openapi.json):
    POST /checkin                     device state in, decision out
    GET|HEAD /firmware/{version}/{name}  slot image, with single-range Range support (206 / 416)
    POST /report                      progress and result of an update
    GET /devices, /devices/{id}, /updates   the registry and the update history
    POST /sync                        sync from S3 now;  GET /status   local release and last sync

When a token is configured every /api/v1 route needs ``Authorization: Bearer <token>``; the
server refuses to listen beyond loopback without one (see ``fota_server.serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fota_formats.errors import FotaError
from fota_formats.semver import Version
from fota_s3.store import S3Store

from fota_server.decision import decide
from fota_server.downloads import DownloadUrl, local_url
from fota_server.firmware import FirmwareFolder, LocalRelease, SyncError, SyncResult, sync_once
from fota_server.models import (
    DEVICE_ID_PATTERN,
    VERSION_PATTERN,
    CheckIn,
    CheckInReply,
    DeviceDetail,
    DeviceRecord,
    ErrorReply,
    Report,
    ReportReply,
    StatusReply,
    SyncReply,
    UpdateRecord,
)
from fota_server.ranges import RangeError, parse_range
from fota_server.registry import Registry, RegistryError

log = logging.getLogger("fota_server")
API = "/api/v1"


@dataclass
class ServerSettings:
    firmware_dir: Path
    db_path: Path | str
    token: str | None = None
    sync_interval_s: float | None = None  # None: no periodic sync (only on start and on request)
    store_factory: Callable[[], S3Store] | None = None  # None: no S3 (sync is disabled)
    source: str = "no S3 configured"
    sync_on_start: bool = True
    download_url: DownloadUrl = local_url  # the image URL a check-in answers (fota_server.downloads)


class ServerState:
    """What the request handlers share: the registry, the releases in memory, the sync status."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.folder = FirmwareFolder(settings.firmware_dir)
        self.registry = Registry(settings.db_path)
        self.release: LocalRelease | None = None
        self.by_version: dict[str, LocalRelease] = {}
        self.last_sync: SyncResult | None = None
        self._store: S3Store | None = None
        self._sync_lock = asyncio.Lock()

    def load_current(self) -> None:
        try:
            rel = self.folder.load()
        except SyncError as e:
            log.error("%s: serving no release until the next successful sync", e)
            self.release = None
            return
        self.release = rel
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
        for path in self.folder.releases():  # the previous release, kept for running downloads
            if path.name.rsplit("-", 1)[0] == version:
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
            result = sync_once(self._store, self.folder)
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


# Module level: the dependency's annotation below is resolved in this module's namespace.
_BEARER = HTTPBearer(auto_error=False, description="Device token (required when one is configured)")


def _auth_dependency(token: str | None) -> Callable[..., Any]:
    async def check(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        if token is None:
            return
        if creds is None or creds.scheme.lower() != "bearer" or not secrets.compare_digest(
                creds.credentials.encode("utf-8", "surrogateescape"), token.encode()):
            raise HTTPException(401, "missing or wrong device token (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})
    return check


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorReply, "description": "Missing or wrong device token"},
    422: {"model": ErrorReply, "description": "Invalid request"},
}


def create_app(settings: ServerSettings) -> FastAPI:
    """The application; its state (registry, local release) is ready before the first request,
    the background sync runs while the ASGI lifespan does (uvicorn, or a TestClient context)."""
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
                              "images with HTTP Range support, and records devices and update outcomes.")

    app.state.fota = state

    def st() -> ServerState:
        return state

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(RegistryError)
    async def on_registry(_: Request, exc: RegistryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    router = APIRouter(prefix=API, dependencies=[Depends(_auth_dependency(settings.token))],
                       responses=_ERRORS)

    # The hot path: the reply is built as JSON directly (the model documents it in the schema; the
    # tests check the replies against it), which saves FastAPI's response validation per check-in.
    @router.post("/checkin", response_class=Response, responses={200: {"model": CheckInReply}},
                 summary="Device check-in: answered with an update decision")
    async def checkin(body: CheckIn) -> Response:
        return Response(json.dumps(_checkin(body), separators=(",", ":")), media_type="application/json")

    def _checkin(body: CheckIn) -> dict[str, Any]:
        s = st()
        slots = {k: v.model_dump() for k, v in (("A", body.slots.A), ("B", body.slots.B))}
        s.registry.record_checkin(body.device_id, body.running_slot, body.running_version, slots)
        running = Version.parse(body.running_version)
        rel = s.release
        d = decide(body.running_slot, running, rel)
        if d.update and s.registry.was_reverted(body.device_id, d.version or "", d.sha256 or ""):
            d = decide(body.running_slot, running, rel, reverted_before=True)
        if not d.update:
            return {"update": False, "reason": d.reason}
        assert d.version and d.target_slot and d.file and d.size is not None and d.sha256
        uid, created = s.registry.open_update(body.device_id, d.version, d.target_slot, d.file, d.size,
                                              d.sha256, d.downgrade, body.running_slot, body.running_version)
        if created:
            log.info("device %s (slot %s, %s): update %d -> %s into slot %s%s", body.device_id,
                     body.running_slot, body.running_version, uid, d.version, d.target_slot,
                     " (downgrade)" if d.downgrade else "")
        return {"update": True, "reason": d.reason, "update_id": uid, "version": d.version,
                "target_slot": d.target_slot, "url": settings.download_url(d.version, d.file), "size": d.size,
                "sha256": d.sha256, "downgrade": d.downgrade}

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
        router.add_api_route("/firmware/{version}/{name}", firmware, methods=[method], operation_id=op_id,
                             summary=summary, response_class=Response, responses=image_responses)

    @router.post("/report", response_model=ReportReply, summary="Progress or result of an update",
                 responses={404: {"model": ErrorReply}, 409: {"model": ErrorReply}})
    async def report(body: Report) -> dict[str, Any]:
        upd = st().registry.report(body.device_id, body.update_id, body.stage, body.offset, body.outcome,
                                   body.reason, body.duration_ms, body.running_slot, body.running_version)
        if body.stage == "result":
            log.info("device %s: update %d %s%s%s", body.device_id, body.update_id, body.outcome,
                     f" ({body.reason})" if body.reason else "",
                     f" after {body.duration_ms} ms" if body.duration_ms is not None else "")
        return {"ok": True, "update": upd}

    @router.get("/devices", response_model=list[DeviceRecord], summary="All devices seen")
    async def devices() -> list[dict[str, Any]]:
        return st().registry.devices()

    @router.get("/devices/{device_id}", response_model=DeviceDetail,
                summary="One device and its update history",
                responses={404: {"model": ErrorReply}})
    async def device(device_id: Annotated[str, PathParam(pattern=DEVICE_ID_PATTERN)]) -> dict[str, Any]:
        reg = st().registry
        dev = reg.device(device_id.lower())
        if dev is None:
            raise HTTPException(404, f"device {device_id} has never checked in")
        return {**dev, "updates": reg.updates(device_id.lower())}

    @router.get("/updates", response_model=list[UpdateRecord], summary="Update history, newest first")
    async def updates(device_id: Annotated[str | None, Query(pattern=DEVICE_ID_PATTERN)] = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        return st().registry.updates(device_id.lower() if device_id else None, limit)

    @router.post("/sync", response_model=SyncReply, summary="Sync the local release from S3 now")
    async def sync_now() -> dict[str, Any]:
        return (await st().sync()).as_dict()

    @router.get("/status", response_model=StatusReply, summary="Local release and last sync result")
    async def status() -> dict[str, Any]:
        s = st()
        rel = s.release
        files = {n: {"size": len(b), "sha256": rel.sha256[n]} for n, b in rel.files.items()} if rel else {}
        return {"version": str(rel.version) if rel else None, "downgrade": rel.downgrade if rel else None,
                "files": files, "source": settings.source,
                "last_sync": s.last_sync.as_dict() if s.last_sync else None,
                "devices": s.registry.count_devices()}

    app.include_router(router)
    return app
