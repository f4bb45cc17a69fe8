"""The markers of every test, from the folder and the file it is in and the fixtures it takes
(applied by tests/conftest.py; registered in pyproject.toml; docs/architecture.md, "Tests").

    >>> sorted(markers_for("tools/test_build.py", {"fw_build", "arm_toolchain"}, set()))
    ['fast', 'firmware']
    >>> sorted(markers_for("link/test_power_cuts.py", {"arm_toolchain"}, set()))
    ['firmware', 'slow', 'twin']

- the folder (``FOLDERS``) says which room a test belongs to; a file that needs more than its
  folder is listed in ``FILES``; a single slow test carries ``@pytest.mark.slow`` itself;
- what a test needs (``NEEDS``): a test that takes the ``arm_toolchain`` fixture, even through
  ``fw_build``, is ``firmware``; one that takes ``node_runtime`` is ``vesp32``;
- ``unit`` means the host alone, so a test that needs more loses it;
- the variant of a test that runs on the session's PostgreSQL server (``postgresql``: its
  ``database``/``backend`` parameter says so) and a test that drives Chromium (``browser``: the
  file, in ``FILES``) are left out of the inner loop; the whole suite runs them;
- a test that is none of ``slow``, ``e2e``, ``vesp32``, ``postgresql`` and ``browser`` is
  ``fast``: ``pytest -m fast`` (``invoke test --fast``) is the inner loop.
"""

from __future__ import annotations

KINDS = ("unit", "firmware", "twin", "vesp32", "e2e")
BACKEND_PARAMS = ("database", "backend", "module_database")   # parameters that name the registry backend
FOLDERS: dict[str, tuple[str, ...]] = {
    "architecture": ("unit",),
    "formats": ("unit",),
    "tools": ("unit",),
    "server": ("unit",),
    "lab": ("unit",),
    "invoke_tasks": ("unit",),
    "c": ("unit",),
    "bridge": ("unit",),
    "console": ("unit",),
    "twin": ("twin",),
    "link": ("twin", "slow"),
    "vesp32": ("vesp32",),
    "e2e": ("e2e", "twin", "vesp32", "slow"),
}
FILES: dict[str, tuple[str, ...]] = {      # whole files that need more than their folder says
    "bridge/test_fake_matches_twin.py": ("twin",),
    "bridge/test_virtual_esp32.py": ("twin", "vesp32", "slow"),
    "vesp32/test_twin_link.py": ("twin",),
    "console/test_browser.py": ("browser",),
    "console/test_browser_live.py": ("twin", "browser"),
}
NEEDS = {"arm_toolchain": "firmware", "node_runtime": "vesp32"}   # fixture -> marker
NOT_FAST = ("slow", "e2e", "vesp32", "postgresql", "browser")


class MarkerError(ValueError):
    """A test's own markers contradict what it needs."""


def markers_for(rel: str, fixtures: set[str], own: set[str],
                params: dict[str, object] | None = None) -> set[str]:
    """Every marker of a test in ``rel`` (its path under tests/, with /) that takes ``fixtures``,
    carries the markers ``own`` itself and has the parameters ``params`` (its callspec's).

    >>> sorted(markers_for("server/test_api.py", set(), set(), {"database": "postgresql"}))
    ['postgresql', 'unit']
    """
    marks = set(own) | set(FOLDERS.get(rel.split("/")[0], ())) | set(FILES.get(rel, ()))
    if any((params or {}).get(p) == "postgresql" for p in BACKEND_PARAMS):
        marks.add("postgresql")
    marks |= {mark for fixture, mark in NEEDS.items() if fixture in fixtures}
    more = marks & (set(KINDS) - {"unit"})
    if "unit" in marks and more:
        if "unit" in own:
            raise MarkerError(f"marked unit, but it needs more: {', '.join(sorted(more))}")
        marks.discard("unit")
    if not marks & set(NOT_FAST):
        marks.add("fast")
    return marks
