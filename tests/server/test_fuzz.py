"""API fuzz run: schemathesis generates requests from /openapi.json; no response may be a 5xx.

Runs against a real uvicorn on loopback, with a release installed and a token configured, so the
generated requests reach the decision, the registry and the Range code (schemathesis sends the
token because the schema declares the bearer scheme and we pass the header). Bounded: a fixed
number of examples per operation keeps the run well under a minute.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from fota_server.app import ServerSettings, create_app
from fota_server.firmware import FirmwareFolder
from fota_testkit.server import LiveServer, install_release
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

TOKEN = "fuzz-token"
EXAMPLES_PER_OPERATION = 30  # per operation and generation mode (valid, invalid)


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fuzz")
    folder = FirmwareFolder(tmp / "fw")
    install_release(folder, tmp, "1.1.0")
    app = create_app(ServerSettings(firmware_dir=folder.root, db_path=tmp / "db.sqlite", token=TOKEN))
    with LiveServer(app) as srv:
        yield srv.url


@pytest.mark.slow
def test_no_server_errors(live_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live_url}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 9  # every route of the contract is fuzzed
    auth = {"Authorization": f"Bearer {TOKEN}"}
    statuses: dict[int, int] = {}
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for operation, mode in itertools.product(operations, modes):

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call_and_validate(base_url=live_url, headers=auth, checks=[not_a_server_error])
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        run()
    print(f"fuzz: responses by status {dict(sorted(statuses.items()))}")
    # the run did reach the handlers: successes and rejections both, and devices got registered
    assert sum(statuses.values()) >= 10 * len(operations), statuses
    assert statuses.get(200, 0) > 0 and statuses.get(422, 0) > 0, statuses
    devices = httpx.get(f"{live_url}/api/v1/devices", headers=auth).json()
    assert len(devices) > 0


def test_fuzz_setup_reaches_the_server(live_url: str) -> None:
    """Guard against a fuzz run that only ever sees 401s: the token is accepted."""
    r = httpx.get(f"{live_url}/api/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json()["version"] == "1.1.0"
    assert httpx.get(f"{live_url}/api/v1/status").status_code == 401
