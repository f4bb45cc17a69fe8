"""The console's registry reads on both backends: filters, keyset pages both ways, fleet counts,
the live list of open updates."""

from __future__ import annotations

import time

from fota_server.console.queries import ConsoleQueries, DeviceFilter
from fota_server.registry import Registry
from fota_testkit.console import dev, seed


def ids(page: object) -> list[str]:
    return [d["device_id"] for d in page.items]  # type: ignore[attr-defined]


def test_filters_and_keyset_pages(database: str) -> None:
    reg = Registry(database)
    try:
        seed(reg, 30)
        q = ConsoleQueries(reg)
        first = q.device_page(DeviceFilter(), limit=12)
        assert ids(first) == [dev(i) for i in range(1, 13)] and first.total == 30
        assert first.has_next and not first.has_previous
        second = q.device_page(DeviceFilter(), limit=12, after=first.last)
        assert ids(second) == [dev(i) for i in range(13, 25)] and second.has_previous and second.has_next
        last = q.device_page(DeviceFilter(), limit=12, after=second.last)
        assert ids(last) == [dev(i) for i in range(25, 31)] and not last.has_next
        back = q.device_page(DeviceFilter(), limit=12, before=last.first)
        assert ids(back) == ids(second) and back.has_previous and back.has_next

        east = q.device_page(DeviceFilter(group="east"), limit=100)
        assert ids(east) == [dev(i) for i in range(2, 31, 2)] and east.total == 15
        assert {d["group"] for d in east.items} == {"east"}
        new = q.device_page(DeviceFilter(version="1.1.0"), limit=100)
        assert ids(new) == [dev(i) for i in range(4, 31, 4)]
        # every third device has an update: confirmed, reverted, failed, in progress in turn
        assert ids(q.device_page(DeviceFilter(state="reverted"), limit=100)) == [dev(3), dev(15), dev(27)]
        assert ids(q.device_page(DeviceFilter(state="updating"), limit=100)) == [dev(9), dev(21)]
        assert q.device_page(DeviceFilter(state="idle"), limit=100).total == 20
        assert ids(q.device_page(DeviceFilter(q="1E"), limit=100)) == [dev(0x1E)]  # 30, any case
        assert q.device_page(DeviceFilter(q="%"), limit=100).total == 0  # a wildcard is a character
        both = q.device_page(DeviceFilter(group="east", state="failed"), limit=100)
        assert ids(both) == [dev(6), dev(18), dev(30)]
        assert q.device_page(DeviceFilter(group="east", state="reverted"), limit=100).total == 0
        assert q.device_page(DeviceFilter(group="nowhere"), limit=100).items == []
    finally:
        reg.close()


def test_overview_counts(database: str) -> None:
    reg = Registry(database)
    try:
        seed(reg, 30)
        ov = ConsoleQueries(reg).overview()
        assert ov.devices == 30
        assert ov.by_version == [("1.1.0", "B", 7), ("1.0.0", "A", 23)]
        assert ov.by_state == {"updating": 2, "confirmed": 2, "reverted": 3, "failed": 3, "idle": 20}
        assert ov.last_seen[0] == ("within 5 minutes", 30) and sum(n for _, n in ov.last_seen) == 30
        later = ConsoleQueries(reg).overview(now=time.time() + 2 * 86400)
        assert later.last_seen[-1] == ("more than a day ago", 30)
    finally:
        reg.close()


def test_live_lists_open_updates_and_the_watched_ones(database: str) -> None:
    reg = Registry(database)
    try:
        seed(reg, 30)
        q = ConsoleQueries(reg)
        live = q.live()
        assert [(u["device_id"], u["percent"], u["step"]) for u in live] == [
            (dev(21), 40, "writing the image"), (dev(9), 40, "writing the image")]
        done = reg.list_updates(dev(3), 0, 1)[0]
        watched = q.live(ids=[done["id"], live[0]["id"]])
        assert [u["status"] for u in watched] == ["in_progress", "in_progress", "reverted"]
        assert q.live(device_id=dev(9)) == [live[1]]
    finally:
        reg.close()
