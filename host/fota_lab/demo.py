"""`invoke demo`: the whole product in one command, on embedded defaults only.

    >>> run_demo(Path("build/demo"))       # doctest: +SKIP   (about a minute; 0 when every step passed)

Builds 1.0.0, flashes bootloader + Slot A into the STM32 twin (flash-stm32 --sim), starts a private
local S3 endpoint and the update server on free loopback ports, starts the virtual ESP32 wired to
the twin and deploys the bridge with mpremote, releases 1.1.0 (server syncs, bridge updates the
STM32 to Slot B: orange LED), then 1.2.0 (back to Slot A: green LED) through a staged rollout
to a fleet: nine more STM32 twins behind the reference master (fota_lab.fleet) in two groups, three
of which cannot confirm 1.2.0, so that the rollout pauses itself. Every file lives under the
demo folder (default build/demo/), which is wiped at the start: a user's .fota/ and build/ stay
as they are. Nothing is left running on exit, on failure or on Ctrl-C, unless ``keep``: then the
lab stays up until Ctrl-C, and how to reach each part is printed.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fota_formats.errors import FotaError
from stm32_fota.build import build
from stm32_fota.esp32 import UpdateOutcome, parse_line

from .devices import Journal
from .fleet import Cycle, DeviceClient, FleetDevice
from .lab import Lab
from .labtls import client_context
from .timing import flash_lower_bound_s

FIRST, SECOND, THIRD = "1.0.0", "1.1.0", "1.2.0"
EXPECTED = {SECOND: ("B", "orange"), THIRD: ("A", "green")}
_TEMP = re.compile(r"^app: slot \S+ \S+ temp ")
# The fleet act: the ESP32's STM32 and twin-1..4 in "east", twin-5..9 in "west"; 6, 7 and 8 are
# boards whose temperature sensor fails under the new image. Stage 1: three devices; stage 2: ten;
# a stage opens when every device of the previous one confirmed; the rollout pauses when more than
# 30 % of a stage's finished devices failed, from four finished devices on.
FLEET = {n: ("east" if n <= 4 else "west", n in (6, 7, 8)) for n in range(1, 10)}
ROLLOUT = {"version": THIRD, "name": f"{THIRD} to the fleet", "target": {"all": True},
           "stages": [{"count": 3}, {"count": 10}], "success_threshold": 1.0, "soak_s": 0,
           "failure_threshold": 0.3, "min_sample": 4, "max_consecutive_failures": 3, "by": "demo",
           "reason": "1.2.0 passed the bench; staged because of the new sensor driver"}


SUMMARY_NOTE = ("\nSummary (twin virtual time; link = BEGIN sent to ACTIVATE answered OK; "
                "cycle = the bridge's whole update cycle;\nlower bound = erase of the touched sectors "
                "that were not blank + 16 us per word, DS8626 typical)")


class DemoError(FotaError):
    """A step of the demo did not end as the story says."""


class Console:
    """Thread-safe output: step headers, indented device lines, one redrawn progress bar."""

    def __init__(self, out: IO[str], width: int = 36) -> None:
        self.out = out
        self.width = width
        self.bar_open = False
        self.lock = threading.Lock()
        self.shown_temp: set[str] = set()
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.last_quarter = -1

    def _close_bar(self) -> None:
        if self.bar_open:
            self.out.write("\n")
            self.bar_open = False

    def line(self, text: str) -> None:
        with self.lock:
            self._close_bar()
            self.out.write(text + "\n")
            self.out.flush()

    def uart(self, text: str) -> None:
        # The application logs its temperature every second: show the first of each image only.
        m = _TEMP.match(text)
        if m:
            if m.group(0) in self.shown_temp:
                return
            self.shown_temp.add(m.group(0))
        self.line(f"      stm32 uart | {text}")

    def led(self, colour: str, _on: bool) -> None:
        self.line(f"      stm32 LED  | {colour} blinks")

    def bridge(self, text: str) -> None:
        parsed = parse_line(text)
        if parsed is not None and parsed.kind == "progress":
            filled = self.width * parsed.percent // 100
            if not self.tty:  # a log file: one line per quarter, no carriage returns
                if parsed.percent // 25 == self.last_quarter:
                    return
                self.last_quarter = parsed.percent // 25
            with self.lock:
                if not self.tty:
                    self._close_bar()
                self.out.write(f"\r      transfer   [{'#' * filled}{'-' * (self.width - filled)}] "
                               f"{parsed.percent:3d}% {parsed.done}/{parsed.size} B")
                self.out.flush()
                self.bar_open = True
            return
        if text.strip():
            self.last_quarter = -1
            self.line(f"      esp32      | {text.strip()}")


@dataclass
class UpdateRow:
    version_from: str
    version_to: str
    outcome: UpdateOutcome
    link_s: float | None
    bound_s: float | None
    image_size: int
    led: str
    journal: Journal | None
    server_outcome: str
    ok: bool

    @property
    def ratio(self) -> float | None:
        if self.link_s is None or not self.bound_s:
            return None
        return self.link_s / self.bound_s


def _fmt(x: float | None, unit: str = " s", digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}{unit}"


def summary_table(rows: list[UpdateRow]) -> str:
    """One line per update: versions, slots, modeled times, ratio to the flash lower bound, result."""
    head = ("update", "slot", "image", "link time", "lower bound", "ratio", "cycle", "LED", "journal",
            "server", "result")
    lines = [head]
    for r in rows:
        j = r.journal
        journal = f"{j.active_slot} {j.state} {j.last_result}" if j else "empty"
        lines.append((f"{r.version_from} -> {r.version_to}", r.outcome.slot, f"{r.image_size} B",
                      _fmt(r.link_s), _fmt(r.bound_s), _fmt(r.ratio, "x"), _fmt(r.outcome.seconds, " s", 1),
                      r.led or "-", journal, r.server_outcome, "PASS" if r.ok else "FAIL"))
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    rule = "-+-".join("-" * w for w in widths)
    text = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
    return "\n".join([text[0], rule, *text[1:]])


class Demo:
    def __init__(self, root: Path, out: IO[str], jobs: int = 2) -> None:
        self.root = root
        self.console = Console(out)
        self.jobs = jobs
        self.lab = Lab(root, on_uart=self.console.uart, on_led=self.console.led)
        self.n = 0
        self.rows: list[UpdateRow] = []
        self.fleet: list[FleetDevice] = []
        self.rollout: dict[str, Any] | None = None
        self.t0 = time.monotonic()

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.n += 1
        self.console.line(f"[{self.n:2d}] {title}")
        t = time.monotonic()
        yield
        self.console.line(f"     ok ({time.monotonic() - t:.1f} s)")

    def build(self, version: str) -> Path:
        d = self.root / f"v{version}"
        result = build(version, 0, d, jobs=self.jobs, signing_key=self.lab.release_key.private)
        sizes = ", ".join(f"{t.target.name} {t.bin.stat().st_size} B" for t in result.targets)
        self.console.line(f"      built v{version} in {result.seconds:.1f} s: {sizes}")
        return d

    def release(self, version: str) -> None:
        d = self.build(version)
        r = self.lab.release(d)
        self.console.line("      " + r.summary().splitlines()[0])
        s = self.lab.sync()
        self.console.line(f"      server sync: {s.get('status')}: {s.get('message')}")
        if s.get("remote_version") != version:
            raise DemoError(f"Failed to sync {version}: the server says {s.get('message')}")

    def update(self, before: str, version: str) -> UpdateRow:
        lab = self.lab
        outcome = lab.update(self.console.bridge)
        want_slot, want_led = EXPECTED[version]
        lab.wait_for(lambda: lab.led() == want_led, 5.0)
        times = lab.peer.times
        bound = (flash_lower_bound_s(times.image_size, times.slot, times.blank_sectors)
                 if times.image_size else None)
        journal = lab.journal()
        history = lab.updates()     # newest first
        server_outcome = str(history[0].get("outcome") if history else "-")
        ok = (outcome.outcome == "confirmed" and outcome.version == version and outcome.slot == want_slot
              and lab.led() == want_led and journal is not None and journal.active_slot == want_slot
              and journal.version == version and server_outcome == "confirmed")
        row = UpdateRow(before, version, outcome, times.seconds, bound, times.image_size, lab.led(),
                        journal, server_outcome, ok)
        self.rows.append(row)
        self.console.line(f"      result: {outcome.outcome} v{outcome.version} slot {outcome.slot}, "
                          f"LED {lab.led()}, link {_fmt(row.link_s)} (lower bound {_fmt(bound)})")
        if not ok:
            raise DemoError(f"Failed to update to {version}: expected confirmed slot {want_slot} "
                            f"({want_led}), got {outcome.outcome} slot {outcome.slot} {outcome.reason}, "
                            f"LED {lab.led() or 'none'}, journal {journal}, server {server_outcome}")
        return row

    def run(self) -> None:
        lab = self.lab
        with self.step(f"Prepare the private demo folder {self.root}"):
            lab.reset_state()
        with self.step(f"Build {FIRST}"):
            first = self.build(FIRST)
        with self.step("Flash the bootloader and Slot A into the STM32 twin (invoke flash-stm32 --sim)"):
            lab.flash(first, log=lambda s: self.console.line("      " + s))
        with self.step("Start the local S3 endpoint and the update server"):
            info = lab.start_s3()
            self.console.line(f"      S3 endpoint {info.endpoint_url} (bucket {lab.cfg.s3.bucket_name})")
            lab.start_server()
            self.console.line(f"      server {lab.server_url}"
                              + (f" (certificate of the demo's CA {lab.ca_cert})" if lab.ca_cert else ""))
        with self.step("Power the STM32 twin and start the virtual ESP32 wired to it"):
            lab.start_devices()
            self.console.line(f"      virtual ESP32 on {lab.esp.port}")
        with self.step("Deploy the bridge to the ESP32 with mpremote (invoke deploy-esp32)"):
            self.console.line("      " + lab.deploy_bridge())
        with self.step(f"Release {SECOND} to S3; the server syncs"):
            self.release(SECOND)
        with self.step(f"Update the STM32 to {SECOND} (invoke update --device)"):
            self.update(FIRST, SECOND)
        with self.step(f"Start nine more STM32 twins on {FIRST} behind the reference master, in two groups"):
            self.fleet = [FleetDevice.start(n, first, group, faulty) for n, (group, faulty) in FLEET.items()]
            for group in ("east", "west"):
                names = ", ".join(d.name + (" (its sensor fails under the new image)" if d.faulty else "")
                                  for d in self.fleet if d.group == group)
                self.console.line(f"      {group}: {names}")
        with self.step(f"Create a staged rollout of {THIRD} before releasing it (operator API)"):
            self.create_rollout()
        with self.step(f"Release {THIRD} to S3; the server syncs"):
            self.release(THIRD)
        with self.step(f"Update the STM32 to {THIRD} (the ESP32's device: first in stage 1)"):
            self.update(SECOND, THIRD)
        with self.step("The fleet checks in, one twin after the other"):
            self.run_fleet()

    def create_rollout(self) -> None:
        api = self.lab.api
        esp_device = self.lab.device_id()
        api.request("PUT", f"/devices/{esp_device}/group", {"group": "east", "by": "demo"})
        self.console.line(f"      the ESP32's STM32 ({esp_device}) put in group east by the operator; the "
                          "twins' bridges report their groups")
        r: dict[str, Any] = api.request("POST", "/rollouts", ROLLOUT)
        self.rollout = r
        self.console.line(f"      rollout {r['id']}: {THIRD} to all devices; stage 1: 3 devices, stage 2: "
                          "10; the next stage when all of a stage confirmed; pause over 30% failed (from 4)")

    def run_fleet(self) -> None:
        lab = self.lab
        ca = lab.ca_cert
        client = DeviceClient(lab.server_url, lab.cfg.server.token, client_context(ca) if ca else None)
        for d in self.fleet:
            self.console.line(f"      {d.cycle(client).line()}")
        assert self.rollout is not None
        r: dict[str, Any] = lab.api.request("GET", f"/rollouts/{self.rollout['id']}")
        self.rollout = r
        last = r["transitions"][-1]
        self.console.line(f"      rollout {r['id']}: {r['state']} at stage {r['current_stage'] + 1}; "
                          f"last step by {last['actor']}: {last['action']} ({last['reason']})")
        offered = [d for d in self.fleet if d.last is not None and d.last.offered]
        reverted = [d for d in offered if d.last is not None and d.last.outcome == "reverted"]
        paused_itself = r["state"] == "paused" and last["actor"] == "server"
        if not paused_itself or not reverted or len(reverted) == len(offered):
            raise DemoError(f"Failed to see the rollout pause itself: it is {r['state']}, last step "
                            f"{last['action']} by {last['actor']} ({last['reason']})")
        if any(d.faulty != (d in reverted) for d in offered):
            raise DemoError("Failed: a twin with a working sensor reverted, or one with a failing sensor "
                            "confirmed")

    def fleet_summary(self) -> str:
        """The fleet act's table: each device's group, versions and outcome; the rollout's stages."""
        r = self.rollout
        assert r is not None
        lines = [["device", "group", "before", "offered", "outcome", "runs now"]]
        esp = self.rows[-1] if self.rows and self.rows[-1].version_to == THIRD else None
        if esp is not None:
            lines.append(["ESP32's STM32", "east", esp.version_from, esp.version_to, esp.outcome.outcome,
                          f"{esp.outcome.version} slot {esp.outcome.slot}"])
        for d in self.fleet:
            c: Cycle | None = d.last
            if c is None:
                continue
            outcome = (c.outcome + (f" ({c.reason})" if c.reason else "")) if c.offered else "not offered"
            lines.append([d.name, d.group or "-", c.before, c.offered_version, outcome,
                          f"{c.after} slot {c.slot}"])
        widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
        text = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in lines]
        text.insert(1, "-+-".join("-" * w for w in widths))
        stages = [f"  stage {s['stage'] + 1} ({s['count']} devices): offered {s['devices']}, confirmed "
                  f"{s['confirmed']}, failed {s['failed']}"
                  + (f" ({100 * s['failure_rate']:.0f}%)" if s["failure_rate"] is not None else "")
                  for s in r["stages"]]
        last = r["transitions"][-1]
        head = (f"\nFleet: rollout {r['id']} of {r['version']} is {r['state']} (by {last['actor']}: "
                f"{last['reason']})")
        return "\n".join([head, *text, *stages])

    def access(self) -> str:
        lab = self.lab
        return "\n".join([
            "The lab keeps running until Ctrl-C:",
            f"  virtual ESP32 serial port: {lab.esp.port}   (mpremote connect {lab.esp.port} repl)",
            f"  update server:             {lab.server_url}/docs   (API under {lab.server_url}/api/v1)",
            f"  its CA certificate:        {lab.ca_cert or '-'}   (curl --cacert, a browser's trust store)",
            f"  S3 endpoint:               {lab.s3.endpoint_url if lab.s3 else '-'}   bucket "
            f"{lab.cfg.s3.bucket_name}",
            f"  STM32 twin flash file:     {lab.flash_file}  (UART lines and LEDs are printed here)",
            f"  update again:              invoke update --device {lab.esp.port}",
            f"  console (operator):        {lab.server_url}/   operator token: "
            f"{lab.cfg.server.operator_token}",
            f"  the rollout:               FOTA_OPERATOR_TOKEN=<the token> invoke rollout show --id 1 "
            f"--server {lab.server_url}"])


def run_demo(root: Path, keep: bool = False, out: IO[str] = sys.stdout,
             wait: Callable[[Demo], None] | None = None) -> int:
    """The demo; returns the exit code (0 when every step passed, 1 on a failed step, 130 on Ctrl-C).
    ``wait``: what to do while the lab is kept (default: sleep until Ctrl-C)."""
    demo = Demo(root, out)
    code = 0
    try:
        try:
            demo.run()
        except FotaError as e:
            demo.console.line(f"demo: FAILED: {e}")
            code = 1
        except Exception as e:  # a bug: still stop everything and say where
            demo.console.line(f"demo: FAILED: unexpected {type(e).__name__}: {e}")
            code = 1
        if demo.rows:
            demo.console.line(SUMMARY_NOTE)
            demo.console.line(summary_table(demo.rows))
        if demo.rollout is not None and demo.fleet and demo.fleet[-1].last is not None:
            demo.console.line(demo.fleet_summary())
        demo.console.line(f"demo: {'PASS' if code == 0 else 'FAIL'} in {time.monotonic() - demo.t0:.0f} s")
        if keep and code == 0:
            demo.console.line(demo.access())
            (wait or _wait_forever)(demo)
    except KeyboardInterrupt:
        demo.console.line("demo: interrupted")
        code = 130
    finally:
        try:
            demo.lab.stop()
            demo.console.line("demo: stopped the server, the S3 endpoint, the virtual ESP32 and the twin")
        except FotaError as e:
            demo.console.line(f"demo: {e}")
            code = code or 1
    return code


def _wait_forever(_demo: Demo) -> None:
    while True:
        time.sleep(3600)
