"""The console's routes: HTML pages, the login, the rollout buttons and the live progress JSON.

    GET  /login, POST /login, POST /logout      the operator token in, a session cookie out
    GET  /                                      fleet overview
    GET  /devices[?q=&group=&version=&state=&after=|before=]   device list (keyset pages)
    GET  /devices/{id}                          one device: slots, update history, live progress
    GET  /releases                              releases on disk: sizes, hashes, signature state
    GET  /rollouts, /rollouts/{id}              stages, counts, failure rate, progress chart
    POST /rollouts/{id}/pause|resume|abort      the rollout API's actions (fota_server.fleet)
    GET  /live/progress.json[?device=&id=]      open updates: percent and step (short polling)
    GET  /static/...                            the stylesheet and the script (no CDN, no build)

Who may see them: :mod:`fota_server.console.session`. These paths are outside ``/api/v1``, so
:class:`fota_server.limits.GuardMiddleware` leaves the role check to this module.
"""

from __future__ import annotations

import logging
import re
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from fota_server.auth import Tokens
from fota_server.console.chart import progress_svg
from fota_server.console.health import health
from fota_server.console.queries import STATES, ConsoleQueries, DeviceFilter, live_item
from fota_server.console.releases import release_rows
from fota_server.console.session import COOKIE, Session, SessionKeys
from fota_server.fleet_models import RolloutAction
from fota_server.models import DEVICE_ID_PATTERN, GROUP_PATTERN
from fota_server.registry import RegistryError

if TYPE_CHECKING:
    from fota_server.app import ServerState

log = logging.getLogger("fota_server")
HERE = Path(__file__).parent
LOGIN_RATE = "10/minute"   # login attempts per client address, right or wrong: guessing stays slow
PAGE_SIZE = 50
ACTIONS = ("pause", "resume", "abort")
FORM_MAX = 4096
templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Viewer:
    session: Session | None     # None: a script with the operator token in its Authorization header
    new_cookie: str | None = None

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session else ""


class Access:
    """How this server lets operators in: its operator token, or (no token at all, loopback only)
    an anonymous session that still carries a CSRF token."""

    def __init__(self, tokens: Tokens) -> None:
        self.login = tokens.operator is not None
        self.closed = tokens.any and tokens.operator is None
        self.keys = SessionKeys(tokens.operator or secrets.token_urlsafe(32))

    def viewer(self, request: Request) -> Viewer | None:
        if self.closed:
            return None
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and presented.strip():
            return Viewer(None) if self.keys.token_matches(presented.strip()) else None
        session = self.keys.check(request.cookies.get(COOKIE))
        if session is not None:
            return Viewer(session)
        if self.login:
            return None
        cookie = self.keys.issue()  # open server: an anonymous session, for its CSRF token
        session = self.keys.check(cookie)
        assert session is not None
        return Viewer(session, cookie)


def _set_cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    response.set_cookie(COOKIE, value, max_age=max_age, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")


def _same_origin(request: Request) -> bool:
    """A browser's POST names its origin; it must be this server (a script's has none)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urllib.parse.urlsplit(origin).netloc == host


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > FORM_MAX:
        raise HTTPException(413, f"the form is {len(body)} bytes; at most {FORM_MAX}")
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "the form is not URL-encoded UTF-8 text") from None
    return dict(pairs)


def _safe_next(target: str | None) -> str:
    """Where to go after the login: a path on this server only."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def console_router(state: Callable[[], ServerState], tokens: Tokens) -> APIRouter:
    access = Access(tokens)
    router = APIRouter(include_in_schema=False)

    def render(request: Request, viewer: Viewer | None, name: str, status: int = 200,
               **ctx: Any) -> HTMLResponse:
        response = templates.TemplateResponse(request, name, {
            "viewer": viewer, "login": access.login, "nav": name.removesuffix(".html"), **ctx},
            status_code=status)
        if viewer is not None and viewer.new_cookie is not None:
            _set_cookie(response, request, viewer.new_cookie, access.keys.lifetime_s)
        response.headers.update(_SECURITY_HEADERS)
        return response

    def refused(request: Request) -> Response:
        if access.closed:
            return render(request, None, "closed.html", status=401)
        if request.headers.get("authorization"):
            return JSONResponse({"detail": "wrong operator token (Authorization: Bearer <token>)"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        target = urllib.parse.quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/login?next={target}", status_code=303)

    def post_allowed(request: Request, viewer: Viewer, form: dict[str, str]) -> bool:
        if viewer.session is None:  # the Authorization header: no ambient credential to forge
            return True
        return _same_origin(request) and access.keys.csrf_ok(viewer.session, form.get("csrf"))

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: Annotated[str, Query(max_length=500)] = "/") -> Response:
        if not access.login:
            return RedirectResponse(_safe_next(next), status_code=303)
        return render(request, None, "login.html", next=_safe_next(next), error=None)

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await _form(request)
        target = _safe_next(form.get("next"))
        if not access.login:
            return RedirectResponse(target, status_code=303)
        if not _same_origin(request):
            return render(request, None, "login.html", status=403, next=target,
                          error="this login form was sent from another site")
        client = request.client.host if request.client else "?"
        wait = state().login_limiter.retry_after(f"console-login {client}")
        if wait is not None:   # counted in the registry: every server process shares the budget
            response = render(request, None, "login.html", status=429, next=target,
                              error=f"too many logins from {client} (at most {LOGIN_RATE}); "
                                    f"retry in {wait} s")
            response.headers["Retry-After"] = str(wait)
            return response
        if not access.keys.token_matches(form.get("token", "")):
            log.warning("console: a login with a wrong operator token from %s",
                        request.client.host if request.client else "?")
            return render(request, None, "login.html", status=401, next=target,
                          error="wrong operator token")
        response = RedirectResponse(target, status_code=303)
        _set_cookie(response, request, access.keys.issue(), access.keys.lifetime_s)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        viewer = access.viewer(request)
        form = await _form(request)
        if viewer is None or viewer.session is None:
            return RedirectResponse("/login", status_code=303)
        if not post_allowed(request, viewer, form):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
        access.keys.revoke(viewer.session)
        response = RedirectResponse("/login" if access.login else "/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @router.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> Response:
        viewer = access.viewer(request)
        if viewer is None:
            return refused(request)
        s = state()
        q = ConsoleQueries(s.registry)
        rollouts = s.fleet.list_rollouts()
        charts = [(r, progress_svg(q.rollout_timeline(r["id"]), _expected(r), f"rollout {r['id']}"))
                  for r in rollouts if r["state"] in ("active", "paused")][:3]
        rel = s.release
        return render(request, viewer, "overview.html", ov=q.overview(), charts=charts,
                      live=q.live(), release=str(rel.version) if rel else None,
                      groups=s.fleet.groups_count())

    @router.get("/devices", response_class=HTMLResponse)
    async def device_list(request: Request,
                          q: Annotated[str, Query(max_length=24, pattern=r"^[0-9a-fA-F]*$")] = "",
                          group: Annotated[str, Query(max_length=64)] = "",
                          version: Annotated[str, Query(max_length=17)] = "",
                          state_: Annotated[str, Query(alias="state", max_length=16)] = "",
                          after: Annotated[str | None, Query(pattern=DEVICE_ID_PATTERN)] = None,
                          before: Annotated[str | None, Query(pattern=DEVICE_ID_PATTERN)] = None,
                          ) -> Response:
        viewer = access.viewer(request)
        if viewer is None:
            return refused(request)
        if state_ and state_ not in STATES:
            raise HTTPException(422, f"state {state_!r} is not one of {', '.join(STATES)}")
        if group and not _matches(GROUP_PATTERN, group):
            raise HTTPException(422, f"group {group!r}: letters, digits, '.', '_', '-' (at most 64)")
        s = state()
        queries = ConsoleQueries(s.registry)
        flt = DeviceFilter(q, group, version, state_)
        page = queries.device_page(flt, PAGE_SIZE, after.lower() if after else None,
                                   before.lower() if before else None)
        base = flt.query()
        return render(request, viewer, "devices.html", page=page, flt=flt, states=STATES,
                      groups=sorted(s.fleet.groups_count()), versions=queries.versions(),
                      next_url=_url("/devices", base, after=page.last) if page.has_next else None,
                      prev_url=_url("/devices", base, before=page.first) if page.has_previous else None)

    @router.get("/devices/{device_id}", response_class=HTMLResponse)
    async def device_page(request: Request,
                          device_id: Annotated[str, PathParam(pattern=DEVICE_ID_PATTERN)]) -> Response:
        viewer = access.viewer(request)
        if viewer is None:
            return refused(request)
        s = state()
        dev_id = device_id.lower()
        dev = s.registry.device(dev_id)
        if dev is None:
            return render(request, viewer, "missing.html", status=404,
                          what=f"device {dev_id} has never checked in")
        extra = ConsoleQueries(s.registry).device_state(dev_id) or {}
        history = s.registry.list_updates(dev_id, 0, 50)
        return render(request, viewer, "device.html", dev=dev, extra=extra, history=history,
                      health=health(dev), settings=s.fleet.device_settings(dev_id),
                      total=s.registry.count_updates(dev_id),
                      live=[live_item(u) for u in history if u["status"] in ("offered", "in_progress")])

    @router.get("/releases", response_class=HTMLResponse)
    async def releases(request: Request) -> Response:
        viewer = access.viewer(request)
        if viewer is None:
            return refused(request)
        s = state()
        return render(request, viewer, "releases.html",
                      rows=release_rows(s.folder, s.settings.trusted_keys),
                      last_sync=s.registry.last_sync(), source=s.settings.source)

    @router.get("/rollouts", response_class=HTMLResponse)
    async def rollouts(request: Request) -> Response:
        viewer = access.viewer(request)
        if viewer is None:
            return refused(request)
        return render(request, viewer, "rollouts.html", rollouts=state().fleet.list_rollouts(),
                      message=request.query_params.get("done"))

    @router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
    async def rollout_page(request: Request,
                           rollout_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> Response:
        viewer = access.viewer(request)
        if viewer is None:
            return refused(request)
        s = state()
        try:
            r = s.fleet.rollout(rollout_id)
        except RegistryError as e:
            return render(request, viewer, "missing.html", status=e.status, what=str(e))
        chart = progress_svg(ConsoleQueries(s.registry).rollout_timeline(rollout_id), _expected(r),
                             f"rollout {rollout_id}")
        return render(request, viewer, "rollout.html", r=r, chart=chart,
                      message=request.query_params.get("done"))

    @router.post("/rollouts/{rollout_id}/{action}")
    async def rollout_action(request: Request, rollout_id: Annotated[int, PathParam(ge=1, le=2**62)],
                             action: str) -> Response:
        viewer = access.viewer(request)
        if viewer is None:
            return refused(request)
        if action not in ACTIONS:
            raise HTTPException(404, f"no rollout action {action!r} (one of {', '.join(ACTIONS)})")
        form = await _form(request)
        if not post_allowed(request, viewer, form):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
        try:
            body = RolloutAction(reason=form.get("reason") or f"{action} from the console",
                                 by=form.get("by") or "console")
        except ValidationError as e:
            raise HTTPException(422, f"invalid {action}: {e.errors()[0]['loc'][0]}: "
                                     f"{e.errors()[0]['msg']}") from None
        state().fleet.act(rollout_id, action, body.by, body.reason)  # RegistryError: 404 / 409 named
        back = _safe_next(form.get("back")) if form.get("back") else f"/rollouts/{rollout_id}"
        sep = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{sep}done={action}", status_code=303)

    @router.get("/live/progress.json")
    async def live(request: Request,
                   device: Annotated[str | None, Query(pattern=DEVICE_ID_PATTERN)] = None,
                   id: Annotated[list[int] | None, Query(max_length=20)] = None) -> Response:
        viewer = access.viewer(request)
        if viewer is None:
            return JSONResponse({"detail": "log in to the console first"}, status_code=401)
        items = ConsoleQueries(state().registry).live(device.lower() if device else None, id or [])
        return JSONResponse({"items": items}, headers={"Cache-Control": "no-store"})

    return router


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern.strip("^$"), value) is not None


def _url(path: str, query: dict[str, str], **more: str | None) -> str:
    q = {**query, **{k: v for k, v in more.items() if v is not None}}
    return f"{path}?{urllib.parse.urlencode(q)}" if q else path


def _expected(r: dict[str, Any]) -> int | None:
    """The devices a rollout aims at: what its widest stage is for."""
    return max((s["expected"] or 0 for s in r["stages"]), default=0) or None


def mount_static(app: Any) -> None:
    """Serve ``static/`` under ``/static`` (the console's stylesheet and script)."""
    from fastapi.staticfiles import StaticFiles

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="console-static")
