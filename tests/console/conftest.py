"""Fixtures of the console tests: an app with both tokens, a registry of simulated devices, a
PostgreSQL registry for the queries, and a real browser (Debian's Chromium through its chromedriver,
driven by Selenium).

Helpers (tokens, device IDs, seeding, the browser itself): fota_testkit.console.
``browser`` is one headless Chromium per test session (per pytest-xdist worker): starting it takes
about a second, a page load a few milliseconds. Its window is 1280 px wide unless a test resizes it
(``phone`` sets 390 px and puts it back).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fota_lab.postgres import PostgresServer
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder
from fota_testkit.console import DEV_TOKEN, OP_TOKEN, chromium
from fota_testkit.pg import postgres  # noqa: F401 (a fixture)
from fota_testkit.server import LiveServer, install_release
from selenium import webdriver


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    chrome = chromium()
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def logged_out(browser: webdriver.Chrome) -> webdriver.Chrome:
    browser.delete_all_cookies()
    return browser



@pytest.fixture(params=("sqlite", "postgresql"))
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('registry') / 'server.db'}"
    pg: PostgresServer = request.getfixturevalue("postgres")
    return pg.fresh_registry()


@pytest.fixture
def settings(tmp_path: Path) -> ServerSettings:
    folder = FirmwareFolder(tmp_path / "fw")
    install_release(folder, tmp_path, "1.1.0")
    return ServerSettings(firmware_dir=folder.root, db_path=tmp_path / "server.db", token=DEV_TOKEN,
                          operator_token=OP_TOKEN, sync_on_start=False, device_rate="1000/minute")


@pytest.fixture
def live(settings: ServerSettings) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings)) as srv:
        yield srv
