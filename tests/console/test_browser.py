"""The console in a real browser (headless Chromium) against a real server on a socket: log in with
the keyboard, find a device, pause a rollout with its button and see the next check-in refused, and
every page at phone width without sideways scrolling."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fota_server.app import ServerSettings, create_app
from fota_server.registry import Registry
from fota_testkit.console import DEVICE, OP, OP_TOKEN, dev, seed
from fota_testkit.server import LiveServer
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 10


@pytest.fixture
def server(settings: ServerSettings) -> Iterator[LiveServer]:
    reg = Registry(settings.db_path)
    seed(reg, 120)
    reg.close()
    with LiveServer(create_app(settings)) as srv:
        yield srv


def log_in(b: webdriver.Chrome, url: str, page: str = "/") -> None:
    b.get(url + page)
    field = b.find_element(By.ID, "token")  # the login form, reached by the redirect
    assert b.find_element(By.CSS_SELECTOR, "label[for=token]").text == "Operator token"
    field.send_keys(OP_TOKEN, Keys.ENTER)
    WebDriverWait(b, WAIT_S).until(lambda d: "/login" not in d.current_url)


def checkin(url: str, i: int) -> dict:
    body = {"device_id": dev(i), "running_slot": "A", "running_version": "1.0.0",
            "slots": {"A": {"state": "valid", "version": "1.0.0"}, "B": {"state": "empty", "version": None}}}
    r = httpx.post(f"{url}/api/v1/checkin", json=body, headers=DEVICE, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_log_in_and_find_a_device(logged_out: webdriver.Chrome, server: LiveServer) -> None:
    b = logged_out
    log_in(b, server.url, "/devices")
    assert b.current_url == server.url + "/devices"
    assert "120 devices match." in b.find_element(By.ID, "count").text
    search = b.find_element(By.ID, "q")
    search.send_keys(dev(77)[-3:], Keys.ENTER)
    WebDriverWait(b, WAIT_S).until(ec.text_to_be_present_in_element((By.ID, "count"), "1 device match."))
    b.find_element(By.LINK_TEXT, dev(77)).click()
    WebDriverWait(b, WAIT_S).until(ec.title_contains(dev(77)))
    facts = b.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "version 1.0.0 in slot A" in facts and "west (reported by its bridge)" in facts
    cookie = b.get_cookie("fota_console")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert OP_TOKEN not in cookie["value"]
    b.find_element(By.CSS_SELECTOR, "form.logout button").click()
    WebDriverWait(b, WAIT_S).until(ec.presence_of_element_located((By.ID, "token")))
    b.get(server.url + "/devices")
    assert "/login" in b.current_url  # logged out for good


def test_pause_a_rollout_with_its_button(logged_out: webdriver.Chrome, server: LiveServer) -> None:
    r = httpx.post(f"{server.url}/api/v1/rollouts", headers=OP, timeout=10, json={
        "version": "1.1.0", "name": "everyone", "target": {"all": True}, "stages": [{"percent": 100}]})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert checkin(server.url, 1)["update"]  # the rollout offers its release
    b = logged_out
    log_in(b, server.url, "/rollouts")
    button = b.find_element(By.CSS_SELECTOR, f'button[aria-label="Pause rollout {rid}"]')
    button.send_keys(Keys.ENTER)  # a plain form button: the keyboard works as well as a click
    WebDriverWait(b, WAIT_S).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "p.done"), "pause"))
    row = b.find_element(By.XPATH, f"//tbody/tr[th/a[text()='{rid}']]").text
    assert "paused" in row and "Resume" in row
    offer = checkin(server.url, 2)
    assert offer == {"update": False, "reason": f"rollout {rid} of 1.1.0 is paused"}
    state = httpx.get(f"{server.url}/api/v1/rollouts/{rid}", headers=OP, timeout=10).json()
    assert state["state"] == "paused" and state["transitions"][-1]["actor"] == "console"


@pytest.mark.parametrize("width", [390])
def test_every_page_fits_a_phone(logged_out: webdriver.Chrome, server: LiveServer, width: int) -> None:
    b = logged_out
    r = httpx.post(f"{server.url}/api/v1/rollouts", headers=OP, timeout=10, json={
        "version": "1.1.0", "target": {"group": "east"}, "stages": [{"percent": 10}, {"percent": 100}]})
    assert r.status_code == 201, r.text
    size = b.get_window_size()
    b.set_window_size(width, 844)
    try:
        assert b.execute_script("return window.innerWidth") == width
        log_in(b, server.url)
        pages = ("/", "/devices", f"/devices/{dev(3)}", "/releases", "/rollouts", "/rollouts/1", "/login")
        for page in pages:
            b.get(server.url + page)
            over = b.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert over <= 0, f"{page} scrolls sideways by {over} px at {width} px"
    finally:
        b.set_window_size(size["width"], size["height"])


def test_keyboard_reaches_the_navigation_with_a_visible_focus(logged_out: webdriver.Chrome,
                                                              server: LiveServer) -> None:
    b = logged_out
    log_in(b, server.url)
    body = b.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    skip = b.switch_to.active_element
    assert skip.text == "Skip to the content" and skip.value_of_css_property("left") != "-999px"
    skip.send_keys(Keys.TAB)
    link = b.switch_to.active_element
    assert link.text == "Overview" and link.get_attribute("aria-current") == "page"
    assert link.value_of_css_property("outline-style") == "solid"
    link.send_keys(Keys.TAB)
    b.switch_to.active_element.send_keys(Keys.ENTER)  # "Devices"
    WebDriverWait(b, WAIT_S).until(ec.url_to_be(server.url + "/devices"))
