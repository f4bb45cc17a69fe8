"""Project tasks (invoke). Each task is a thin call into library code under host/, server/, twin/.

    invoke --list          # every task with a one-line description
    invoke build           # firmware: bootloader, slot-a, slot-b into build/, checked, with a size table
    invoke test            # the test suite

Library modules are imported inside the tasks, so that this file loads (and ``invoke --list``
works) even when an optional part of the project is missing or broken. User errors end the task
with ``invoke.Exit("message")`` rather than a traceback.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from invoke import Context, Exit, task

if TYPE_CHECKING:
    from fota_formats.config import FotaConfig

ROOT = Path(__file__).resolve().parent
# The checkout every library default refers to (stm32_fota.project), handed down to the libraries and
# to the processes they start (server, benchmarks, test runs).
os.environ.setdefault("FOTA_ROOT", str(ROOT))
BUILD_DIR = "build"


def _fail(e: Exception) -> Exit:
    return Exit(f"invoke: {e}", code=1)


def _quote(arg: str) -> str:
    return shlex.quote(arg)


def _shown(path: Path) -> str:
    """``path`` relative to the checkout when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


@task(iterable=["variant"], help={
    "version": "firmware version MAJOR.MINOR.PATCH written into both slot images (default 1.0.0)",
    "build_number": "build number written into both slot images (default 0)",
    "build_dir": f"output directory (default {BUILD_DIR}/)",
    "variant": "extra application variant to build as slot-a-<name>/slot-b-<name> (repeatable)",
    "jobs": "parallel make jobs (default 2)",
    "verbose": "show make's own output",
    "key": "image signing key, an Ed25519 PEM (default: FOTA_SIGNING_KEY, fota.toml [signing] signing_key)",
    "security_counter": "security counter signed into both images (default: fota.toml [signing], else 1)",
})
def build(c: Context, version: str = "1.0.0", build_number: int = 0, build_dir: str = BUILD_DIR,
          variant: list[str] | None = None, jobs: int = 2, verbose: bool = False, key: str = "",
          security_counter: int = -1) -> None:
    """Build bootloader and slot images (signed with imgtool), check them, print sizes."""
    from stm32_fota.build import build as do_build
    from stm32_fota.errors import FotaError
    from stm32_fota.sizes import format_size_table

    try:
        result = do_build(version, build_number, ROOT / build_dir, variant or (), jobs=jobs, verbose=verbose,
                          log=print, signing_key=key or None,
                          security_counter=None if security_counter < 0 else security_counter)
    except FotaError as e:
        raise _fail(e) from None
    print(format_size_table(result.reports))
    for t in result.targets:
        what = t.image.describe() if t.image else f"{t.report.flash_used} bytes"
        state = "written" if t.postlinked else "up to date"
        print(f"{t.target.name}: {what} ({state})")
    print(f"build: v{result.version}+{result.build_number} in {result.build_dir} ({result.seconds:.1f} s)")


@task(help={"build_dir": f"directory of a previous `invoke build` (default {BUILD_DIR}/)"})
def size(c: Context, build_dir: str = BUILD_DIR) -> None:
    """Print flash and RAM use per target of the last build."""
    from stm32_fota.errors import FotaError
    from stm32_fota.sizes import format_size_table, report_build_dir

    try:
        reports = report_build_dir(ROOT / build_dir)
    except FotaError as e:
        raise _fail(e) from None
    print(format_size_table(reports))


@task(help={"check": "only check that the generated files are up to date (exit 1 when stale)"})
def gen(c: Context, check: bool = False) -> None:
    """Regenerate C headers, linker maps, bridge constants."""
    from stm32_fota import gen as generator

    rc = generator.main(["--check"] if check else [])
    if rc:
        raise Exit("invoke: generated files are stale: run `invoke gen`", code=rc)


@task(help={"build_dir": f"directory to remove (default {BUILD_DIR}/)"})
def clean(c: Context, build_dir: str = BUILD_DIR) -> None:
    """Remove the build directory."""
    from stm32_fota.build import STAMP

    target = (ROOT / build_dir).resolve()
    if not target.exists():
        return
    # Only a directory that a build made (or the default one): never a source tree by a typo.
    made_by_build = (target / STAMP).is_file() or (target / "obj").is_dir()
    if ROOT.is_relative_to(target) or (target != ROOT / BUILD_DIR and not made_by_build):
        raise Exit(f"invoke: refusing to remove {target}: it is not a build directory", code=1)
    if target.exists():
        shutil.rmtree(target)
        print(f"removed {target}")


@task(help={"fix": "let ruff fix what it can"})
def lint(c: Context, fix: bool = False) -> None:
    """Run ruff and the import contracts; check that generated files are up to date."""
    result = c.run(f"{_quote(sys.executable)} -m ruff check {'--fix ' if fix else ''}.", warn=True, pty=False)
    lint_imports = _quote(str(Path(sys.executable).with_name("lint-imports")))
    contracts = c.run(f"{lint_imports} {_quote(str(ROOT / 'pyproject.toml'))}", warn=True, pty=False)
    gen(c, check=True)
    if result is None or result.failed:
        raise Exit("invoke: ruff found problems (see above)", code=1)
    if contracts is None or contracts.failed:
        raise Exit("invoke: an import breaks the package order (see above, docs/architecture.md)", code=1)


@task(help={
    "k": "only tests matching this pytest -k expression",
    "m": "only tests with these markers, e.g. 'unit and not slow' (markers: docs/architecture.md, Tests)",
    "fast": "the inner loop: every test not marked slow, e2e or vesp32 (under a minute on 2 cores)",
    "path": "test file or directory (default: the whole suite)",
    "jobs": "parallel pytest workers (default 2; 0 runs in one process)",
})
def test(c: Context, k: str = "", m: str = "", fast: bool = False, path: str = "", jobs: int = 2) -> None:
    """Run the test suite with pytest (2 workers); --fast for the inner loop."""
    args = [sys.executable, "-m", "pytest"]
    if jobs:
        args += ["-n", str(jobs), "--dist", "loadfile"]
    if k:
        args += ["-k", k]
    marks = [e for e in ("fast" if fast else "", m) if e]
    if marks:
        args += ["-m", marks[0] if len(marks) == 1 else " and ".join(f"({e})" for e in marks)]
    if path:
        args.append(path)
    result = c.run(" ".join(_quote(a) for a in args), warn=True, pty=False)
    if result is None or result.failed:
        raise Exit("invoke: tests failed (see above)", code=1)


@task(help={
    "runs": "inputs per fuzz target (default: the suite's counts, 100,000 for the parsers)",
    "seed": "the engine's seed (default 12, the suite's)",
})
def fuzz(c: Context, runs: int = 0, seed: int = 12) -> None:
    """Fuzz the firmware's parsers on the host under ASan + UBSan (tests/c/test_fw_fuzz.py)."""
    env = {"FOTA_FUZZ_SEED": str(seed), **({"FOTA_FUZZ_RUNS": str(runs)} if runs else {})}
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-k", "survives",
            str(ROOT / "tests" / "c" / "test_fw_fuzz.py")]
    result = c.run(" ".join(_quote(a) for a in args), env=env, warn=True, pty=False)
    if result is None or result.failed:
        raise Exit("invoke: fuzzing found a problem (see above)", code=1)


# -- releases and the update server (host/stm32_fota/release.py, host/fota_lab/locals3.py, server/) ----

def _config() -> FotaConfig:
    from fota_formats.config import load_config

    return load_config(cwd=ROOT)


@task(help={"key": "where to write the key (default: FOTA_SIGNING_KEY, fota.toml [signing] signing_key, "
                   "~/.config/stm32-fota/signing-key.pem); never inside the repository"})
def keygen(c: Context, key: str = "") -> None:
    """Make an Ed25519 image and release signing key with imgtool (refuses to overwrite one)."""
    from stm32_fota.errors import FotaError
    from stm32_fota.imgsign import keygen as make_key

    try:
        path = Path(key).expanduser().resolve() if key else _config().signing.signing_key.expanduser()
        if path.is_relative_to(ROOT):
            raise Exit(f"invoke: {path} is inside the repository; keep signing keys outside it", code=1)
        digest = make_key(path)
    except FotaError as e:
        raise _fail(e) from None
    print(f"signing key: {path} (mode 0600; back it up, never commit it)")
    print(f"public key hash: {digest}  (images name it in their KEYHASH TLV; logs show {digest[:8]})")


@task(help={
    "build_dir": f"directory of the build to publish (default {BUILD_DIR}/)",
    "force": "publish even if the version is not higher than the bucket's (overwrites it)",
    "downgrade": "publish a lower version, marked as a downgrade that devices will accept",
    "key": "the release key, an Ed25519 PEM (default: FOTA_SIGNING_KEY); it signs manifest.json",
})
def release(c: Context, build_dir: str = BUILD_DIR, force: bool = False, downgrade: bool = False,
            key: str | None = None) -> None:
    """Publish the build (images, manifest and its signature, version) to S3."""
    from fota_lab.locals3 import describe_start, lost_on_stop, open_store, start
    from stm32_fota.errors import FotaError
    from stm32_fota.release import ConsoleReporter
    from stm32_fota.release import release as do_release
    from stm32_fota.signing import load_signing_key

    try:
        cfg = _config()
        key_path = key or os.environ.get("FOTA_SIGNING_KEY") or None
        signing_key = load_signing_key(Path(key_path)) if key_path else None
        if cfg.s3.embedded:
            info = start(cfg)
            if not info.already_running:
                print(describe_start(cfg, info))
        store = open_store(cfg)
        print(f"release: {ROOT / build_dir} -> {cfg.s3.describe()}")
        result = do_release(store, ROOT / build_dir, signing_key=signing_key, force=force,
                            downgrade=downgrade, root=ROOT,
                            reporter=ConsoleReporter(sys.stdout.write, sys.stdout.isatty()))
    except FotaError as e:
        raise _fail(e) from None
    print(result.summary())
    if cfg.s3.embedded:
        print(f"note: embedded S3 at {store.client.meta.endpoint_url}; {lost_on_stop(cfg)}")


@task(name="s3-start")
def s3_start(c: Context) -> None:
    """Start the embedded local S3 endpoint (moto)."""
    from fota_lab.locals3 import describe_start, start
    from stm32_fota.errors import FotaError

    cfg = _config()
    if not cfg.s3.embedded:
        raise Exit(f"invoke: a bucket is configured ({cfg.s3.describe()}); the embedded S3 is not used",
                   code=1)
    try:
        print(describe_start(cfg, start(cfg)))
    except FotaError as e:
        raise _fail(e) from None


@task(name="s3-stop")
def s3_stop(c: Context) -> None:
    """Stop the embedded S3 endpoint; say what is kept."""
    from fota_lab.locals3 import describe_stop, stop

    cfg = _config()
    print(describe_stop(cfg, stop(cfg)))


@task(name="s3-status")
def s3_status(c: Context) -> None:
    """Show whether the embedded S3 endpoint runs, and where."""
    from fota_lab.locals3 import describe_status

    print(describe_status(_config()))


@task(help={
    "host": "address to listen on (default from config: 127.0.0.1)",
    "port": "TCP port (default from config: 8080)",
    "lan": "listen on all interfaces (0.0.0.0) for the ESP32; needs FOTA_SERVER_TOKEN (device) and "
           "FOTA_OPERATOR_TOKEN (operator), or [server] token and operator_token, and HTTPS "
           "([server] tls_cert/tls_key, see `invoke certs`)",
    "no_sync": "do not sync from S3 (serve the local firmware folder as it is)",
    "log_level": "uvicorn/server log level: debug, info, warning (default info)",
    "insecure_http": "serve plain HTTP beyond loopback (without [server] tls_cert/tls_key the server "
                     "refuses)",
    "workers": "server processes (default 1); more share the registry, best on PostgreSQL "
               "([server] database_url)",
})
def serve(c: Context, host: str = "", port: int = 0, lan: bool = False, no_sync: bool = False,
          log_level: str = "info", insecure_http: bool = False, workers: int = 1) -> None:
    """Run the update server in the foreground."""
    from fota_formats.errors import FotaError
    from fota_lab.locals3 import describe_start, start
    from fota_server.serve import serve as do_serve

    try:
        cfg = _config()
        if cfg.s3.embedded and not no_sync:
            info = start(cfg)
            if not info.already_running:
                print(describe_start(cfg, info))
        changes: dict[str, object] = {}
        if lan:
            changes["host"] = "0.0.0.0"
        if host:
            changes["host"] = host
        if port:
            changes["port"] = port
        if workers < 1:
            raise Exit(f"invoke: --workers must be 1 or more, not {workers}", code=1)
        do_serve(cfg.with_server(**changes), sync=not no_sync, log_level=log_level,
                 insecure_http=insecure_http, workers=workers)
    except FotaError as e:
        raise _fail(e) from None


@task(positional=["action"], help={
    "action": "create, list, show, pause, resume, abort or advance",
    "id": "the rollout (show, pause, resume, abort, advance)",
    "version": "create: the release to roll out, e.g. 1.2.0",
    "stages": "create: percentages 1,10,50,100 (default 100) or device counts 5n,20n",
    "all": "create: target every device", "group": "create: target one group",
    "devices": "create: target these device IDs (comma-separated)", "name": "create: a name",
    "soak": "create: seconds a stage stays open at least (server default 0)",
    "success": "create: share of a stage's devices confirmed to open the next (default 0.9)",
    "failure": "create: pause when a stage's failed share passes this (default 0.2)",
    "min_sample": "create: finished devices before the failure rate counts (default 5)",
    "consecutive": "create: pause after this many failures in a row (default 3; 0: none)",
    "reason": "why (required by pause, resume, abort, advance; recorded)",
    "by": "who (recorded; default $USER)", "state": "list: only rollouts in this state",
    "server": "the server's URL (default from config: [server] host/port)",
})
def rollout(c: Context, action: str, id: int = 0, version: str = "", stages: str = "100", all: bool = False,
            group: str = "", devices: str = "", name: str = "", soak: int = -1, success: float = 0.0,
            failure: float = -1.0, min_sample: int = 0, consecutive: int = -1, reason: str = "", by: str = "",
            state: str = "", server: str = "") -> None:
    """Staged rollouts on the update server: create, list, show, pause, resume, abort, advance."""
    from fota_formats.errors import FotaError
    from stm32_fota import rollouts as ro

    who = by or os.environ.get("USER") or "operator"
    try:
        api = ro.OperatorClient.from_config(_config(), server)
        if action == "create":
            body = ro.create_body(version, stages, all, group, devices, name, soak if soak >= 0 else None,
                                  success or None, failure if failure >= 0 else None, min_sample or None,
                                  consecutive if consecutive >= 0 else None, who, reason)
            print(ro.describe(api.create(body)))
        elif action == "list":
            print(ro.describe_list(api.list(state or None)))
        elif action in ("show", *ro.ACTIONS):
            if id < 1:
                raise Exit(f"invoke: rollout {action} needs --id N (see `invoke rollout list`)", code=1)
            if action != "show" and not reason:
                raise Exit(f"invoke: rollout {action} needs --reason TEXT (it is recorded)", code=1)
            print(ro.describe(api.show(id) if action == "show" else api.act(id, action, reason, who)))
        else:
            raise Exit(f"invoke: unknown rollout action {action!r}: create, list, show, "
                       f"{', '.join(ro.ACTIONS)}", code=1)
    except FotaError as e:
        raise _fail(e) from None


@task(name="db-upgrade")
def db_upgrade(c: Context) -> None:
    """Bring the server's registry database (SQLite file or [server] database_url) to the newest
    schema; the server also does this when it starts."""
    from fota_formats.errors import FotaError
    from fota_server.db.migrate import migrate_registry

    try:
        print(migrate_registry(_config().database))
    except FotaError as e:
        raise _fail(e) from None


@task(iterable=["host"], help={
    "host": "name or IP address the bridges use for the server (repeatable; default: this machine's LAN "
            "address and host name, plus localhost and 127.0.0.1)",
    "days": "validity of the server certificate in days (default 1825)",
    "force": "replace an existing server certificate (the CA is kept)",
    "new_ca": "with --force: make a new CA too (every ESP32 then needs `deploy-esp32 --ca` again)",
})
def certs(c: Context, host: list[str] | None = None, days: int = 0, force: bool = False,
          new_ca: bool = False) -> None:
    """Make a local CA and the server's HTTPS certificate (keys in the state folder)."""
    from stm32_fota.certs import DEFAULT_SERVER_DAYS, default_names, make_certs
    from stm32_fota.errors import FotaError

    try:
        cfg = _config()
        result = make_certs(cfg.state_dir, host or default_names(), force=force, new_ca=new_ca,
                            days=days or DEFAULT_SERVER_DAYS, build_dir=cfg.build_dir, project_root=ROOT)
    except FotaError as e:
        raise _fail(e) from None
    print(result.describe())


@task(name="deploy-esp32", iterable=["ca"], help={
    "device": "serial port of the ESP32 (e.g. /dev/ttyUSB0, or the pty of `invoke sim-esp32`)",
    "firmware": "MicroPython firmware .bin to flash first with esptool (erase, then write at 0x1000)",
    "wifi": "Wi-Fi SSID written into config.json on the device",
    "password": "Wi-Fi password written into config.json",
    "server": "update server URL written into config.json, e.g. http://192.168.1.10:8080 (settings not "
              "given keep the values the device holds)",
    "token": "device token written into config.json (sent as Authorization: Bearer)",
    "group": "fleet group the bridge reports at check-in (an operator's setting on the server wins)",
    "ca": "CA certificate (PEM) the bridge trusts for https:// (repeatable; bundled into ca.pem on the "
          "device): the server's CA from `invoke certs`, plus S3's root CA for direct downloads",
})
def deploy_esp32(c: Context, device: str, firmware: str = "", wifi: str = "", password: str = "",
                 server: str = "", token: str = "", group: str = "", ca: list[str] | None = None) -> None:
    """Deploy the bridge (and MicroPython) to an ESP32."""
    from stm32_fota.errors import FotaError
    from stm32_fota.esp32 import deploy

    config = {"wifi_ssid": wifi, "wifi_password": password, "server": server, "token": token, "group": group}
    try:
        r = deploy(device, Path(firmware) if firmware else None, config, ca_files=[Path(p) for p in ca or ()])
    except FotaError as e:
        raise _fail(e) from None
    print(f"deploy-esp32: {len(r.files)} files on {device}: {', '.join(r.files)}")
    for info in r.ca:
        print(f"deploy-esp32: CA {info.subject} (SHA-256 {info.fingerprint}) in ca.pem")
    print("deploy-esp32: config.json " + ("updated with the settings given" if r.config_written
                                          else "kept as it was on the device"))
    print(f"deploy-esp32: the bridge imports; config.json: {r.check}")
    print("deploy-esp32: board reset: main.py polls the server now")


@task(help={
    "device": "serial port of the ESP32 running the bridge (see deploy-esp32)",
    "timeout": "seconds to wait for the cycle's result line (default 600)",
})
def update(c: Context, device: str, timeout: int = 600) -> None:
    """Run one update cycle on the ESP32 bridge."""
    from stm32_fota.errors import FotaError
    from stm32_fota.esp32 import ProgressBar, run_update

    try:
        r = run_update(device, ProgressBar(sys.stdout), timeout_s=timeout)
    except FotaError as e:
        raise _fail(e) from None
    if not r.ok:
        raise Exit(f"update: {r.outcome}: {r.reason}", code=1)


@task(help={
    "build_dir": f"build directory with bootloader.bin and slot-a.bin (default {BUILD_DIR}/)",
    "flash": "flash file kept between runs (created erased and programmed from the build when missing)",
    "slot_a": "program this slot A image (at the address its .hex/.elf beside it gives, or PATH@ADDRESS)",
    "slot_b": "program this slot B image (likewise)",
    "bootloader": "program this bootloader image (likewise)",
    "run_ms": "virtual milliseconds to run (default 3000)",
    "realtime": "advance in step with the wall clock (demo)",
    "json": "one JSON event per line, for scripts",
    "pins": "also print every pin change",
    "temperature": "die temperature in degrees C seen by the ADC (default 25)",
    "timing": "flash timings: typical (default) or maximum",
    "no_strict": "read unmodeled registers as 0 instead of stopping",
    "no_hse": "no 8 MHz crystal: the firmware falls back to the HSI",
    "vdda": "VDDA in volts seen by the ADC (default 3.0, as on a Discovery board)",
    "revision": "silicon revision (DBGMCU_IDCODE): A, Z, 1, 2 (default), Y or 5",
    "hardware_watchdog": "option byte WDG_SW = 0: the watchdog runs from reset",
    "lsi_hz": "LSI frequency in Hz, 17000-47000 (default 32000), which times the watchdog",
    "floating_nss": "no ESP32 on the SPI bus: NSS and SCK float and pick up noise",
})
def sim(c: Context, build_dir: str = BUILD_DIR, flash: str = "", slot_a: str = "", slot_b: str = "",
        bootloader: str = "", run_ms: float = 3000.0, realtime: bool = False, json: bool = False,
        pins: bool = False, temperature: float = 25.0, timing: str = "typical",
        no_strict: bool = False, no_hse: bool = False, vdda: float = 3.0, revision: str = "2",
        hardware_watchdog: bool = False, lsi_hz: int = 32_000, floating_nss: bool = False) -> None:
    """Boot the firmware on the STM32 twin; print LEDs and UART."""
    from stm32_twin.cli import SimOptions, run_sim
    from stm32_twin.errors import TwinError

    opts = SimOptions(build_dir=str(ROOT / build_dir), flash=flash or None, slot_a=slot_a or None,
                      slot_b=slot_b or None, bootloader=bootloader or None, run_ms=run_ms, realtime=realtime,
                      json=json, pins=pins, temperature=temperature, timing=timing, strict=not no_strict,
                      no_hse=no_hse, vdda=vdda, revision=revision, hardware_watchdog=hardware_watchdog,
                      lsi_hz=lsi_hz, floating_nss=floating_nss)
    try:
        status = run_sim(opts)
    except TwinError as e:
        raise _fail(e) from None
    if status:
        raise Exit("sim: the firmware faulted (see above)", code=status)


@task(help={
    "device": "the ESP32's serial port (its USB UART: the bridge's fota: lines)",
    "stm32": "the serial port of a USB-serial adapter on the STM32's PA2 (USART2: boot: and app: lines)",
    "seconds": "stop after this many seconds (default: run until Ctrl-C)",
})
def monitor(c: Context, device: str = "", stm32: str = "", seconds: float = 0.0) -> None:
    """Show the ESP32 console and the STM32's USART2 side by side, with timestamps."""
    import threading

    from stm32_fota.monitor import Console, MonitorError
    from stm32_fota.monitor import monitor as run_monitor

    consoles = ([Console("esp32", device)] if device else []) + ([Console("stm32", stm32)] if stm32 else [])
    if not consoles:
        raise Exit("monitor: give --device PORT (the ESP32) and/or --stm32 PORT (USB-serial adapter on PA2)",
                   code=2)
    stop = threading.Event()
    if seconds:
        threading.Timer(seconds, stop.set).start()
    try:
        run_monitor(consoles, lambda line: print(line, flush=True), stop)
    except MonitorError as e:
        raise _fail(e) from None
    except KeyboardInterrupt:
        stop.set()


@task(name="sim-esp32", help={
    "flash": "the STM32 twin's flash file, kept between runs (programmed from the build when missing)",
    "build_dir": f"firmware build for a new flash file (default {BUILD_DIR}/)",
    "fs": "directory holding the virtual ESP32's files, kept between runs (default .fota/vesp32-fs)",
    "server": "update server URL: checked for reachability and shown in the hints",
    "wifi_down": "no access point: the ESP32's Wi-Fi never connects",
    "no_nrst_pullup": "NRST wired without its pull-up: GPIO 4's reset pull-down holds it half-way",
    "no_twin": "nothing on the SPI bus (no firmware build needed)",
    "seconds": "stop after this many seconds (default: run until Ctrl-C)",
    "baud": "console UART speed: bytes cross the pty no faster (default 115200, a DevKit's; 0: unthrottled)",
})
def sim_esp32(c: Context, flash: str = "", build_dir: str = BUILD_DIR, fs: str = "", server: str = "",
              wifi_down: bool = False, no_nrst_pullup: bool = False, no_twin: bool = False,
              seconds: float = 0.0,
              baud: int = 115200) -> None:
    """Run a virtual ESP32 on a pty, wired to the STM32 twin."""
    from esp32_twin.cli import DEFAULT_FS, SimEsp32Options, run_sim_esp32
    from esp32_twin.errors import Esp32TwinError
    from stm32_twin.errors import TwinError

    opts = SimEsp32Options(flash=flash or None, build_dir=str(ROOT / build_dir),
                           fs_dir=fs or str(ROOT / DEFAULT_FS), server=server or None,
                           wifi_down=wifi_down, no_nrst_pullup=no_nrst_pullup, no_twin=no_twin,
                           seconds=seconds or None, baud=baud)
    try:
        status = run_sim_esp32(opts, out=lambda line: print(line, flush=True))
    except (Esp32TwinError, TwinError) as e:
        raise _fail(e) from None
    if status:
        raise Exit("sim-esp32: the virtual ESP32 stopped (see above)", code=status)


# -- flashing, the demo, the benchmarks (host/stm32_fota/flashing.py, host/fota_lab/) ------------------

@task(name="flash-stm32", help={
    "sim": "write the STM32 twin's flash file FLASHFILE instead of a board (the rest is erased)",
    "tool": "programmer: auto (first installed), cubeprog (STM32_Programmer_CLI), st-flash, openocd",
    "build_dir": f"directory of the build with bootloader.bin and slot-a.bin (default {BUILD_DIR}/)",
    "show_options": "only print the board's option bytes (BOR level, watchdog, write protection, RDP)",
    "protect": "after flashing, set BOR level 3 and write-protect the bootloader's sectors (option bytes)",
})
def flash_stm32(c: Context, sim: str = "", tool: str = "auto", build_dir: str = BUILD_DIR,
                show_options: bool = False, protect: bool = False) -> None:
    """Program bootloader + Slot A (ST-LINK, or the twin); show or set the option bytes."""
    from fota_lab.flashing import flash_sim
    from stm32_fota.errors import FotaError
    from stm32_fota.flashing import flash_board
    from stm32_fota.option_bytes import protect_board
    from stm32_fota.option_bytes import show_options as show

    try:
        if sim:
            if show_options or protect:
                raise _fail(FotaError("Failed to reach the option bytes: --show-options and --protect are "
                                      "for a board; the twin takes them as parameters (invoke sim --help)"))
            flash_sim(ROOT / build_dir, Path(sim))
        elif show_options:
            show(tool)
        else:
            flash_board(ROOT / build_dir, tool)
            options_tool = "auto" if tool == "st-flash" else tool
            if protect:
                protect_board(options_tool)
            else:
                try:
                    show(options_tool)
                except FotaError as e:   # flashed all the same: say why the options are not shown
                    print(f"flash-stm32: option bytes not shown: {e}")
    except FotaError as e:
        raise _fail(e) from None


@task(help={
    "keep": "leave the server, S3 endpoint, twin and virtual ESP32 running until Ctrl-C",
    "folder": f"private state folder of the demo, wiped at start (default {BUILD_DIR}/demo)",
})
def demo(c: Context, keep: bool = False, folder: str = f"{BUILD_DIR}/demo") -> None:
    """End-to-end simulated update demo: A -> B -> A."""
    from fota_lab.demo import run_demo

    code = run_demo(ROOT / folder, keep=keep)
    if code:
        raise Exit(code=code)


@task(iterable=["only"], help={
    "only": "run only this benchmark (repeatable): build, link, twin, server, server-scale, vesp32, "
            "bridge-mem, crypto (default: all); the stored rows of the others stay in bench/results.md",
    "suite": "also time the full test suite (pytest -n 2; several minutes)",
    "no_save": "print the table only: leave bench/results.json and results.md as they are",
})
def bench(c: Context, only: list[str] | None = None, suite: bool = False, no_save: bool = False) -> None:
    """Run the benchmarks; print their table, update bench/results.json and results.md."""
    from fota_lab.bench import ALL, format_table, run_benches, save_results
    from stm32_fota.errors import FotaError

    try:
        runs = run_benches(only or ALL, suite=suite)
        print(format_table(runs))
        if not no_save:
            json_path, md_path = save_results(runs)
            new = ", ".join(r.name for r in runs if r.ok) or "none"
            kept = "".join(f"; {r.name} failed, its stored rows kept" for r in runs if not r.ok)
            print(f"bench: {_shown(md_path)} regenerated from {_shown(json_path)}: "
                  f"new rows of {new}{kept}; the other benchmarks' rows unchanged")
    except FotaError as e:
        raise _fail(e) from None
    failed = [r for r in runs if not r.ok]
    if failed:
        raise Exit("invoke: " + "; ".join(f"{r.name}: {r.error}" for r in failed), code=1)


@task(help={"out": "folder of the PNG files (default docs/img)"})
def screenshots(c: Context, out: str = "docs/img") -> None:
    """Screenshots of every page of the server's web console (docs/fleet.md shows them)."""
    from fota_lab.consolelab import screenshots as take

    try:
        take(ROOT / out if not Path(out).is_absolute() else Path(out))
    except (RuntimeError, OSError) as e:
        raise _fail(e) from None
