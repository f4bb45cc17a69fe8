"""One update cycle of the bridge: STM32 INFO -> server check-in -> stream -> verify -> activate ->
reset -> wait for the self-test -> report.

    import updater
    updater.update()               # one cycle on demand: prints status lines, returns the outcome

    u = updater.Updater(link, http, cfg)   # the same with any port/network (tests, the twin)
    outcome = u.cycle()                    # "confirmed", "reverted", "failed" or "none"

Status lines on the console (docs/bridge.md; `invoke update` parses them):
    fota: step <name>[ <detail>]
    fota: progress <percent>% <bytes>/<size>
    fota: result <outcome> <version> slot <A|B> in <seconds> s[: <reason>]
The image never sits in RAM: it streams from the server (HTTP Range from the offset the STM32
expects) through the link's one chunk buffer into WRITE frames.
"""

import json
import struct

from fota_const import (
    BEGIN_FLAG_DOWNGRADE,
    IMAGE_HDR_SIZE,
    IMAGE_HEADER_FMT,
    IMAGE_HEADER_SIZE,
    IMAGE_MAGIC,
    META_STATE_CONFIRMED,
    META_STATE_TRIAL,
    RESULT_CONFIRMED,
    RESULT_NONE,
    RESULT_REVERTED_INVALID,
    RESULT_REVERTED_NO_CONFIRM,
    RESULT_REVERTED_WATCHDOG,
    RETRIES,
    SESSION_ACTIVATED,
    SESSION_VERIFIED,
    SLOT_STATE_EMPTY,
    SLOT_STATE_VALID,
    ST_ERR_FLASH,
    ST_ERR_HASH,
    ST_ERR_NOT_VERIFIED,
    ST_ERR_SEQ,
    ST_ERR_STATE,
)
from fotalink import BridgeError

try:
    from binascii import hexlify, unhexlify
except ImportError:  # pragma: no cover - every port has binascii
    from ubinascii import hexlify, unhexlify

import gc
import sys

# On MicroPython, the garbage of each progress report (its JSON, the HTTP exchange, the server's
# answer: about 3 KB) is collected right after it, so that ten reports per image never add up on
# a 110 KB heap (docs/bridge.md, "Memory"). CPython (the tests' fakes) collects on its own.
_COLLECT = sys.implementation.name == "micropython"

_RESTARTS = 2            # new link sessions (INFO, then go on from there) per cycle
_POLL_MS = 500           # INFO period while the new image runs its self-test
_RETRY_DELAY_MS = 500    # pause before reconnecting to the server
_REASON_MAX = 500        # the server's limit on a report's reason
_PROGRESS_STEP = 20      # a progress report every 20 % written (the console's live bar)

RESULT_NAMES = {
    RESULT_NONE: "NONE",
    RESULT_CONFIRMED: "CONFIRMED",
    RESULT_REVERTED_NO_CONFIRM: "REVERTED_NO_CONFIRM",
    RESULT_REVERTED_INVALID: "REVERTED_INVALID",
    RESULT_REVERTED_WATCHDOG: "REVERTED_WATCHDOG",
}
_REVERTED = (RESULT_REVERTED_NO_CONFIRM, RESULT_REVERTED_INVALID, RESULT_REVERTED_WATCHDOG)
# Symptoms of an update session lost on the STM32 (a reset or power cut empties its RAM: the
# next request gets ERR_SEQ, a WRITE or VERIFY ERR_STATE, ACTIVATE ERR_NOT_VERIFIED) or of a failed
# flash operation (ERR_FLASH, ERR_HASH): a new link session (INFO) says where the STM32 stands.
_SESSION_LOST = (ST_ERR_SEQ, ST_ERR_STATE, ST_ERR_NOT_VERIFIED, ST_ERR_HASH, ST_ERR_FLASH)


def slot_name(slot):
    return "AB"[slot] if slot in (0, 1) else "?"


def running_version(info):
    return f"{info['run_major']}.{info['run_minor']}.{info['run_patch']}"


def _slot_version(info, p):
    return f"{info[p + '_major']}.{info[p + '_minor']}.{info[p + '_patch']}"


def _slot_doc(info, p):
    state = info[p + "_state"]
    if state == SLOT_STATE_VALID:
        return {"state": "valid", "version": _slot_version(info, p)}
    return {"state": "empty" if state == SLOT_STATE_EMPTY else "invalid", "version": None}


def next_phase(info, target, new_version):
    """Where an update of `target` to `new_version` stands on a STM32 that answered INFO `info`
    after its session was lost: "boot" (the new image runs, on trial or confirmed: wait for the
    confirmation), "reset" (the activation is on flash or in the session: reset the STM32),
    "activate" (the image is verified: ACTIVATE again), "begin" (BEGIN again) or "unrecorded"
    (the new image runs although no journal record names it: a bootloader that boots the newest
    image when its journal is empty started it without a trial)."""
    p = "ab"[target]
    if info[p + "_state"] != SLOT_STATE_VALID or _slot_version(info, p) != new_version:
        return "begin"
    recorded = info["meta_active"] == target
    if info["running_slot"] == target and running_version(info) == new_version:
        if recorded and info["meta_state"] in (META_STATE_TRIAL, META_STATE_CONFIRMED):
            return "boot"
        return "unrecorded"
    if info["session_state"] == SESSION_ACTIVATED or (recorded and info["meta_state"] == META_STATE_TRIAL):
        return "reset"
    if info["session_state"] == SESSION_VERIFIED:
        return "activate"
    return "begin"


def _settled(info, target, new_version):
    """(outcome, reason) when INFO shows how an activated update ended, else None (on trial)."""
    run = info["running_slot"]
    confirmed = info["meta_state"] == META_STATE_CONFIRMED
    if run == target and running_version(info) == new_version and confirmed:
        return "confirmed", ""
    if run != target and confirmed and info["last_result"] in _REVERTED:
        return "reverted", RESULT_NAMES[info["last_result"]]
    return None


def _check_header(h, size, new_version):
    """The image's header against the server's offer, before BEGIN. The STM32 refuses a header it
    would not boot (ERR_IMAGE) and checks the slot and the signature at
    VERIFY; a header that disagrees with the offer is a damaged or mislabelled file, sent nowhere."""
    bad = []
    if h[0] != IMAGE_MAGIC or h[2] != IMAGE_HDR_SIZE or h[1] != 0 or h[5] != 0:
        bad.append("not an MCUboot header (magic 0x%08x, header size %d)" % (h[0], h[2]))  # noqa: UP031
    if "%d.%d.%d" % (h[6], h[7], h[8]) != new_version:  # noqa: UP031
        bad.append("version %d.%d.%d, not %s" % (h[6], h[7], h[8], new_version))  # noqa: UP031
    if h[2] + h[4] + h[3] >= size:
        bad.append("header, image and protected TLVs of %d bytes leave no room for the signature"  # noqa: UP031
                   " in %d" % (h[2] + h[4] + h[3], size))
    if bad:
        raise BridgeError("Failed to check the image: its header does not match the server's offer ("
                          + "; ".join(bad) + "): a damaged file, or not the one released; "
                          "nothing was written")


class HttpSource:
    """The image on the server as a source for Link.write_image: readinto(offset, mv). Reads on
    from the open response while the offsets follow on; otherwise (a resume, a network error)
    opens a new Range request at the offset asked for."""

    def __init__(self, http, url, retries, log, sleep_ms):
        self.http = http
        self.url = url
        self.retries = retries
        self.log = log
        self.sleep_ms = sleep_ms
        self.body = None
        self.pos = -1
        self.reconnects = 0

    def close(self):
        if self.body is not None:
            self.body.close()
            self.body = None

    def readinto(self, offset, mv):
        last = None
        for attempt in range(self.retries + 1):
            try:
                if self.body is None or self.pos != offset:
                    self.close()
                    if offset:
                        self.log(f"fota: step download from {offset}")
                    self.body = self.http.get(self.url, offset)
                    self.pos = offset
                self.body.readfull(mv)
                self.pos = offset + len(mv)
                return
            except BridgeError as e:
                self.close()
                last = e
                if attempt < self.retries:
                    self.reconnects += 1
                    self.log(f"fota: step retry download at {offset}: {e.reason}")
                    self.sleep_ms(_RETRY_DELAY_MS)
        raise BridgeError(f"Failed to download the image at offset {offset}: {last.reason}")


class Updater:
    def __init__(self, link, http, cfg, log=print, connect=None):
        self.link = link
        self.http = http
        self.cfg = cfg
        self.log = log
        self.connect = connect
        self.port = link.port
        self.info = None
        self.update_id = None
        self.written = 0
        self._pct = -1
        self._reported = 0
        self._in_begin = False
        self.activated = False
        self.pending = None           # (target, version) of the update being installed

    def _ms(self, start):
        return self.link.elapsed_ms(start)

    def step(self, text):
        self.log("fota: step " + text)

    def cycle(self):
        """Run one cycle; never raises BridgeError. Returns the outcome. A KeyboardInterrupt (an
        mpremote session stopping main.py) or another BaseException still ends the cycle with its
        result line and report, then goes on up."""
        start = self.port.ticks_ms()
        self.info = None
        self.update_id = None
        self.written = 0
        self.activated = False
        self.pending = None
        version = "?"
        slot = "?"
        stop = None
        try:
            outcome, version, slot, reason = self._run()
        except BaseException as e:  # BridgeError, a bug, or Ctrl-C: a result line still
            if isinstance(e, BridgeError):
                reason = e.reason
            elif isinstance(e, Exception):
                reason = f"unexpected {type(e).__name__}: {e}"
            else:
                stop = e
                reason = "interrupted (%s)" % type(e).__name__  # noqa: UP031
            outcome = "failed"
            if self.info is not None:
                version, slot = running_version(self.info), slot_name(self.info["running_slot"])
        ms = self._ms(start)
        if stop is not None and self.activated and self.update_id is not None:
            # The new image is activated: whether it confirms is up to the STM32 now. The next cycle
            # tells from INFO and reports it, rather than a "failed" the STM32 may contradict.
            outcome = "interrupted"
            self._save_pending(ms)
        elif self.update_id is not None and outcome != "none":
            self._report("result", outcome, reason, ms)
        line = f"fota: result {outcome} {version} slot {slot} in {ms / 1000:.1f} s"
        self.log(line + ": " + reason if reason else line)
        if stop is not None:
            raise stop
        return outcome

    # -- an update whose outcome a cycle could not wait for (interrupted after ACTIVATE) ----------

    def _save_pending(self, ms):
        path = self.cfg.get("pending_file")
        if not path or not self.pending:
            return
        try:
            with open(path, "w") as f:
                f.write(json.dumps({"update_id": self.update_id, "target": self.pending[0],
                                    "version": self.pending[1], "ms": ms}))
        except OSError:
            pass

    def _pending_report(self, info):
        """Report the outcome of an update that an interrupted cycle activated, once INFO shows it
        (confirmed, or reverted by the bootloader); kept while the new image is still on trial."""
        path = self.cfg.get("pending_file")
        if not path:
            return
        try:
            with open(path) as f:
                doc = json.loads(f.read())
            state = _settled(info, doc["target"], doc["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if state is None:
            return
        self.update_id = doc["update_id"]
        sent = self._report("result", state[0], state[1] or "reported after an interrupted cycle", doc["ms"])
        self.update_id = None
        if not sent:
            return
        self.step("reported update %s %s" % (doc["update_id"], state[0]))  # noqa: UP031
        try:
            import os
            os.remove(path)
        except OSError:
            pass

    def _report(self, stage, outcome, reason, ms):
        info = self.info or {}
        doc = {"device_id": self.device_id(), "update_id": self.update_id, "stage": stage,
               "offset": self.written}
        if stage != "progress":   # a progress report is only the offset (the smallest JSON)
            slot = info.get("running_slot", -1)
            doc["outcome"] = outcome or None
            doc["reason"] = reason[:_REASON_MAX] if reason else None
            doc["duration_ms"] = ms
            doc["running_slot"] = "AB"[slot] if slot in (0, 1) else None
            doc["running_version"] = running_version(info) if info else None
        try:
            self.http.post_json("/api/v1/report", doc, answer=False)
        except BridgeError as e:
            self.step(f"report-failed {e.reason}")
            return False
        return True

    def device_id(self):
        if not self.info:
            return None
        return hexlify(self.info["uid"]).decode()

    def _progress(self, done, size):
        self.written = done
        pct = done * 100 // size
        if pct != self._pct:
            self._pct = pct
            # % formatting: one string (80 bytes on MicroPython; an f-string, format(), 144)
            self.log("fota: progress %d%% %d/%d" % (pct, done, size))  # noqa: UP031
        if pct >= self._reported + _PROGRESS_STEP and pct < 100:
            self._reported = pct - pct % _PROGRESS_STEP
            self._report("progress", None, None, 0)
            if _COLLECT:
                gc.collect()

    def _run(self):
        link = self.link
        cfg = self.cfg
        if self.connect is not None:
            self.step("wifi")
            self.connect()
        self.step("info")
        info = self.info = link.info()
        run = info["running_slot"]
        key = hexlify(info["run_key"]).decode()
        self.step(f"stm32 slot {slot_name(run)} version {running_version(info)} key {key} "
                  f"counter {info['run_counter']} floor {info['security_floor']} "
                  f"last {RESULT_NAMES.get(info['last_result'], '?')}")
        self._pending_report(info)
        self.step("checkin")
        doc = {"device_id": self.device_id(), "running_slot": slot_name(run),
               "running_version": running_version(info),
               "slots": {"A": _slot_doc(info, "a"), "B": _slot_doc(info, "b")},
               "security_counter": info["security_floor"], "key_id": key,
               "temp_centi": info["temp_centi"], "uptime_ms": info["uptime_ms"]}
        if cfg.get("group"):
            doc["group"] = cfg["group"]
        reply = self.http.post_json("/api/v1/checkin", doc)
        if not reply.get("update"):
            return "none", running_version(info), slot_name(run), reply.get("reason") or "no update"
        try:
            self.update_id = reply["update_id"]
            new_version = reply["version"]
            target = "AB".index(reply["target_slot"])
            size = int(reply["size"])
            sha = unhexlify(reply["sha256"])
            url = reply["url"]
            counter = int(reply["security_counter"])
        except (KeyError, ValueError, TypeError):
            raise BridgeError("Failed to check in: the server's update offer is incomplete") from None
        flags = BEGIN_FLAG_DOWNGRADE if reply.get("downgrade") else 0
        self.pending = (target, new_version)
        self.step(f"download {new_version} slot {slot_name(target)} {size} bytes counter {counter}")
        src = HttpSource(self.http, url, cfg.get("http_retries", 3), self.log, self.port.sleep_ms)
        try:
            phase = self._install(src, target, flags, size, sha, new_version, counter)
        finally:
            src.close()
        if phase == "reset":
            self.step("reset")
            self._reset()
        return self._await(target, new_version)

    def _reset(self):
        if self.cfg.get("reset") == "nrst":
            self.link.pulse_reset()
        else:
            self.link.reset()

    def _install(self, src, target, flags, size, sha, new_version, counter):
        """BEGIN, WRITE..., VERIFY, ACTIVATE. When the STM32 loses its session on the way (a reset
        or power cut: ERR_SEQ, ...) or a flash operation fails, a new link session (INFO) says where
        it stands and the cycle goes on from there (next_phase), at most _RESTARTS times. Returns
        "reset" (the new image is activated) or "boot" (it runs already)."""
        link = self.link
        if size < IMAGE_HDR_SIZE:
            raise BridgeError(f"Failed to check the image: {size} bytes cannot hold its header")
        head = link.load(src, 0, min(link.max_chunk, size))
        h = struct.unpack_from(IMAGE_HEADER_FMT, head, 0)
        _check_header(h, size, new_version)
        version = (h[6], h[7], h[8], h[9])
        block = bytes(head[:IMAGE_HEADER_SIZE])
        phase = "begin"
        restarts = 0
        while True:
            self._in_begin = False
            try:
                if phase == "begin":
                    self._transfer(src, target, flags, version, size, sha, block, counter)
                self.step("activate")
                link.activate()
                self.activated = True
                return "reset"
            except BridgeError as e:
                if e.status not in _SESSION_LOST or restarts == _RESTARTS:
                    raise
                restarts += 1
                refused_begin = self._in_begin and e.status == ST_ERR_STATE
                info = self.info = link.info()
                phase = next_phase(info, target, new_version)
                if phase == "unrecorded":
                    raise BridgeError(f"STM32 runs slot {slot_name(target)} version {new_version} without "
                                      f"a journal record, so without a trial, after: {e.reason}") from None
                if phase == "begin":
                    if refused_begin:   # on trial: BEGIN again would get the same answer
                        raise e
                    self.step(f"restart {e.reason}")
                else:
                    self.step(f"recover {phase}: {e.reason}")
                if phase in ("reset", "boot"):
                    self.activated = True
                    return phase

    def _transfer(self, src, target, flags, version, size, sha, block, counter):
        """BEGIN (resuming at the STM32's offset when it has this image's session), WRITE..., VERIFY."""
        link = self.link
        self.step("begin")
        self._in_begin = True
        nxt = link.begin(target, flags, version, size, sha, block, counter)
        self._in_begin = False
        if nxt:
            self.step(f"resume {nxt}")
        self._pct = -1
        self._reported = nxt * 100 // size
        link.write_image(src, nxt, size, self._progress)
        self.step("verify")
        link.verify()
        self._report("progress", None, None, 0)  # all of it written and verified: activating next

    def _await(self, target, new_version):
        """Poll INFO until the new image confirmed itself or the bootloader went back."""
        link = self.link
        self.step("boot")
        limit = self.cfg.get("confirm_timeout_s", 60) * 1000
        start = self.port.ticks_ms()
        why = "no answer"
        waiting = False
        resets = 0
        while True:
            try:
                info = self.info = link.info()
                if info["session_state"] == SESSION_ACTIVATED and resets < RETRIES:
                    # Still the session that was activated: the RESET frame was lost. Again.
                    resets += 1
                    self.step("reset again")
                    self._reset()
                    continue
                run = info["running_slot"]
                ver = running_version(info)
                settled = _settled(info, target, new_version)
                if settled is not None:
                    return settled[0], ver, slot_name(run), settled[1]
                if not waiting:
                    self.step(f"confirm slot {slot_name(run)} version {ver}")
                    waiting = True
                why = f"slot {slot_name(run)} version {ver} not confirmed"
            except BridgeError as e:
                why = e.reason
            if self._ms(start) >= limit:
                raise BridgeError(f"STM32 did not confirm within {limit // 1000} s: {why}")
            self.port.sleep_ms(_POLL_MS)


_wdt = None


def watchdog(cfg):
    """The machine.WDT of `wdt_timeout_s` (None when 0, or on a runtime without one), started at
    the first call. On the ESP32 it cannot be stopped once started (machine.WDT has no deinit):
    a cycle feeds it at every console line and main.py while it waits, so what resets the board is
    a hung cycle, or a REPL left idle that long after an mpremote session stopped main.py (the
    reset runs main.py again: polling resumes)."""
    global _wdt
    seconds = cfg.get("wdt_timeout_s") or 0
    if _wdt is None and seconds > 0:
        try:
            from machine import WDT
        except ImportError:   # CPython
            return None
        _wdt = WDT(timeout=int(seconds * 1000))
    return _wdt


def update(path="config.json"):
    """One update cycle with the configuration file on the device; returns the outcome. The
    watchdog (watchdog()) is fed at every console line."""
    import config
    import fotalink
    import hw
    import net

    wdt = None

    def log(line):
        if wdt is not None:
            wdt.feed()
        print(line)

    try:
        cfg = config.load(path)
        wdt = watchdog(cfg)
        http = net.Http(cfg["server"], cfg["token"], cfg["http_timeout_s"], cfg["ca_file"], cfg["ntp_host"])
        link = fotalink.Link(hw.Port(cfg))
    except BridgeError as e:
        log("fota: result failed ? slot ? in 0.0 s: " + e.reason)
        return "failed"
    except Exception as e:  # a bad pin or SPI setting in config.json (ValueError from machine)
        log("fota: result failed ? slot ? in 0.0 s: bad hardware settings in %s: %s: %s"  # noqa: UP031
            % (path, type(e).__name__, e))
        return "failed"

    def connect():
        if cfg["wifi_ssid"]:
            net.wifi_connect(cfg["wifi_ssid"], cfg["wifi_password"], cfg["wifi_retries"],
                             cfg["wifi_timeout_ms"])
        else:
            net.require_network(path)

    return Updater(link, http, cfg, log=log, connect=connect).cycle()


def retry_delay_s(cfg, failures):
    """Seconds until the next cycle: poll_interval_s after a good one; after `failures` failed
    cycles in a row retry_min_s, doubled each time, at most poll_interval_s."""
    interval = cfg["poll_interval_s"]
    if failures <= 0:
        return interval
    return min(interval, cfg["retry_min_s"] << min(failures - 1, 16))


def _pause(seconds, sleep_s, wdt):
    while seconds > 0:
        if wdt is not None:
            wdt.feed()
        step = min(seconds, 10)
        sleep_s(step)
        seconds -= step


def run_forever(sleep_s=None, cycles=-1):
    """main.py's loop: `start_delay_s` after boot (an mpremote session that follows a reset, as
    deploy-esp32 and update do, takes the board before a cycle starts), then a cycle and a pause
    (retry_delay_s), feeding the watchdog while it waits."""
    import time

    import config
    sleep_s = sleep_s or time.sleep
    failures = 0
    first = True
    while cycles != 0:
        cycles -= 1
        try:
            cfg = config.load()
        except BridgeError as e:
            print("fota: error " + e.reason)
            cfg = config.defaults()
        if first:
            # No watchdog yet: a session that comes right after a reset must not find one running.
            first = False
            _pause(cfg.get("start_delay_s", 0), sleep_s, None)
        try:
            outcome = update()
        except BridgeError as e:
            print("fota: error " + e.reason)
            outcome = "failed"
        except Exception as e:  # keep polling whatever happened
            print("fota: error unexpected " + repr(e))
            outcome = "failed"
        failures = failures + 1 if outcome == "failed" else 0
        delay = retry_delay_s(cfg, failures)
        if failures:
            print("fota: retry in %d s (failure %d in a row)" % (delay, failures))  # noqa: UP031
        _pause(delay, sleep_s, _wdt)       # started by the cycle (update()), if configured
