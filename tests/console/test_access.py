"""Who gets into the console: the login with the operator token, the session cookie, CSRF on every
button, the Authorization header for scripts, logout, and servers without an operator token."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fota_server.app import ServerSettings, create_app
from fota_server.console.session import COOKIE, SessionKeys
from fota_testkit.console import DEV_TOKEN, OP, OP_TOKEN, csrf_of

PAGES = ["/", "/devices", "/releases", "/rollouts", "/rollouts/1"]


def client(settings: ServerSettings) -> TestClient:
    return TestClient(create_app(settings), base_url="http://console.test")


def login(c: TestClient, token: str = OP_TOKEN, next_: str = "/") -> tuple[int, str | None]:
    r = c.post("/login", data={"token": token, "next": next_}, follow_redirects=False)
    return r.status_code, r.headers.get("location")


def make_rollout(c: TestClient) -> int:
    r = c.post("/api/v1/rollouts", headers=OP, json={"version": "1.1.0", "target": {"all": True},
                                                     "stages": [{"percent": 100}]})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.mark.parametrize("page", PAGES)
def test_every_page_sends_a_stranger_to_the_login(settings: ServerSettings, page: str) -> None:
    r = client(settings).get(page, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/login?next={page}"
    assert OP_TOKEN not in r.text


def test_login_sets_a_strict_httponly_cookie_that_is_not_the_token(settings: ServerSettings) -> None:
    c = client(settings)
    r = c.post("/login", data={"token": OP_TOKEN, "next": "/devices?state=failed"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/devices?state=failed"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert OP_TOKEN not in cookie and OP_TOKEN not in r.headers["location"]
    assert c.get("/devices").status_code == 200


def test_logins_are_limited_per_address_across_server_processes(settings: ServerSettings) -> None:
    """Ten login attempts a minute per client address, right or wrong, counted in the registry, so
    that a second server process on the same database refuses the eleventh too."""
    settings = dataclasses.replace(settings, clock=lambda: 1_000_000.0)   # 20 s left in its minute
    first, second = client(settings), client(settings)
    assert [login(first, "wrong")[0] for _ in range(6)] == [401] * 6
    assert [login(second, "wrong")[0] for _ in range(4)] == [401] * 4
    r = second.post("/login", data={"token": OP_TOKEN, "next": "/"}, follow_redirects=False)
    assert r.status_code == 429 and "too many logins from testclient (at most 10/minute)" in r.text
    assert r.headers["Retry-After"] == "20"
    assert COOKIE not in r.headers.get("set-cookie", "")
    assert first.get("/", headers=OP).status_code == 200    # scripts with the header are not affected


def test_a_wrong_token_is_refused_and_not_logged(settings: ServerSettings,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    c = client(settings)
    wrong = "not-the-operator-token"
    r = c.post("/login", data={"token": wrong}, follow_redirects=False)
    assert r.status_code == 401 and "wrong operator token" in r.text
    assert COOKIE not in r.headers.get("set-cookie", "")
    assert c.get("/", follow_redirects=False).status_code == 303
    assert login(c, DEV_TOKEN)[0] == 401  # the device token is no operator token
    assert wrong not in caplog.text and DEV_TOKEN not in caplog.text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_after_the_login_only_a_path_of_this_server(settings: ServerSettings, target: str) -> None:
    assert login(client(settings), next_=target) == (303, "/")


def test_a_forged_or_expired_cookie_is_refused(settings: ServerSettings) -> None:
    keys = SessionKeys(OP_TOKEN)
    c = client(settings)
    nonce, expires, mac = keys.issue().split(".")
    for forged in (f"{nonce}x.{expires}.{mac}", f"{nonce}.{int(expires) + 3600}.{mac}",
                   keys.issue(now=0), SessionKeys("another-token").issue(), "garbage"):
        c.cookies.set(COOKIE, forged)
        assert c.get("/", follow_redirects=False).status_code == 303, forged
    c.cookies.set(COOKIE, keys.issue())  # signed with the server's key: every process accepts it
    assert c.get("/").status_code == 200


def test_the_buttons_need_the_sessions_csrf_token(settings: ServerSettings) -> None:
    c = client(settings)
    rid = make_rollout(c)
    login(c)
    page = c.get(f"/rollouts/{rid}").text
    token = csrf_of(page)
    for form in ({"reason": "no token"}, {"csrf": "0" * len(token)}, {"csrf": token[:-1]}):
        r = c.post(f"/rollouts/{rid}/pause", data=form, follow_redirects=False)
        assert r.status_code == 403 and "CSRF" in r.text
    assert c.get(f"/api/v1/rollouts/{rid}", headers=OP).json()["state"] == "active"
    other = client(settings)  # another session's token does not fit this one
    login(other)
    r = other.post(f"/rollouts/{rid}/pause", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 403
    r = c.post(f"/rollouts/{rid}/pause", data={"csrf": token}, follow_redirects=False,
               headers={"Origin": "https://evil.example"})
    assert r.status_code == 403  # a browser's cross-site POST, even with the right token
    r = c.post(f"/rollouts/{rid}/pause", data={"csrf": token, "reason": "sensor faults"},
               follow_redirects=False, headers={"Origin": "http://console.test"})
    assert r.status_code == 303 and r.headers["location"] == f"/rollouts/{rid}?done=pause"
    state = c.get(f"/api/v1/rollouts/{rid}", headers=OP).json()
    assert state["state"] == "paused"
    assert state["transitions"][-1]["reason"] == "sensor faults"
    assert state["transitions"][-1]["actor"] == "console"


def test_a_refused_action_names_the_state(settings: ServerSettings) -> None:
    c = client(settings)
    rid = make_rollout(c)
    login(c)
    token = csrf_of(c.get(f"/rollouts/{rid}").text)
    r = c.post(f"/rollouts/{rid}/resume", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 409 and "is active" in r.json()["detail"]
    r = c.post(f"/rollouts/{rid}/explode", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 404 and "explode" in r.json()["detail"]
    r = c.post("/rollouts/99/pause", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 404 and "rollout 99 does not exist" in r.json()["detail"]


def test_scripts_use_the_authorization_header(settings: ServerSettings) -> None:
    c = client(settings)
    rid = make_rollout(c)
    for page in PAGES:
        assert c.get(page, headers=OP).status_code in (200, 404), page
    assert c.get("/live/progress.json", headers=OP).json() == {"items": []}
    r = c.get("/", headers={"Authorization": "Bearer wrong"}, follow_redirects=False)
    assert r.status_code == 401 and OP_TOKEN not in r.text
    r = c.post(f"/rollouts/{rid}/abort", headers=OP, data={"reason": "scripted"}, follow_redirects=False)
    assert r.status_code == 303  # no cookie, so nothing to forge: no CSRF token needed
    assert c.get(f"/api/v1/rollouts/{rid}", headers=OP).json()["state"] == "aborted"
    assert c.get("/live/progress.json").status_code == 401


def test_logout_ends_the_session(settings: ServerSettings) -> None:
    c = client(settings)
    login(c)
    cookie = c.cookies[COOKIE]
    token = csrf_of(c.get("/").text)
    assert c.post("/logout", data={"csrf": "wrong"}, follow_redirects=False).status_code == 403
    r = c.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    c.cookies.set(COOKIE, cookie)  # the old cookie, kept by a careless browser
    assert c.get("/", follow_redirects=False).status_code == 303


def test_pages_forbid_framing_and_foreign_scripts(settings: ServerSettings) -> None:
    r = client(settings).get("/", headers=OP)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["cache-control"] == "no-store"
    assert not re.search(r'(src|href)="(https?:)?//', r.text), "every asset is served by the server"


def test_without_an_operator_token_the_console_is_closed(tmp_path: Path, settings: ServerSettings) -> None:
    settings.operator_token = None
    c = client(settings)
    r = c.get("/")
    assert r.status_code == 401 and "FOTA_OPERATOR_TOKEN" in r.text
    assert login(c, DEV_TOKEN)[0] in (401, 303)
    assert c.get("/devices").status_code == 401


def test_an_open_loopback_server_still_protects_its_buttons(settings: ServerSettings) -> None:
    settings.operator_token = settings.token = None
    c = client(settings)
    rid = make_rollout(c)
    page = c.get(f"/rollouts/{rid}")
    assert page.status_code == 200 and COOKIE in page.headers["set-cookie"]
    assert c.post(f"/rollouts/{rid}/pause", data={}, follow_redirects=False).status_code == 403
    r = c.post(f"/rollouts/{rid}/pause", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
