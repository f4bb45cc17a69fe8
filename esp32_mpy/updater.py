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

import struct

from fota_const import (
    BEGIN_FLAG_DOWNGRADE,
    IMAGE_INFO_FMT,
    IMAGE_INFO_MAGIC,
    IMAGE_INFO_OFFSET,
    IMAGE_INFO_SIZE,
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

_RESTARTS = 2            # new link sessions (INFO, then go on from there) per cycle
_POLL_MS = 500           # INFO period while the new image runs its self-test
_RETRY_DELAY_MS = 500    # pause before reconnecting to the server
_REASON_MAX = 500        # the server's limit on a report's reason

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

    def _ms(self, start):
        return self.link.elapsed_ms(start)

    def step(self, text):
        self.log("fota: step " + text)

    def cycle(self):
        """Run one cycle; never raises BridgeError. Returns the outcome."""
        start = self.port.ticks_ms()
        self.info = None
        self.update_id = None
        self.written = 0
        version = "?"
        slot = "?"
        try:
            outcome, version, slot, reason = self._run()
        except Exception as e:  # BridgeError, or a bug: the cycle still ends with a result line
            reason = e.reason if isinstance(e, BridgeError) else f"unexpected {type(e).__name__}: {e}"
            outcome = "failed"
            if self.info is not None:
                version, slot = running_version(self.info), slot_name(self.info["running_slot"])
        ms = self._ms(start)
        if self.update_id is not None and outcome != "none":
            self._report("result", outcome, reason, ms)
        line = f"fota: result {outcome} {version} slot {slot} in {ms / 1000:.1f} s"
        self.log(line + ": " + reason if reason else line)
        return outcome

    def _report(self, stage, outcome, reason, ms):
        info = self.info or {}
        slot = info.get("running_slot", -1)
        doc = {"device_id": self.device_id(), "update_id": self.update_id, "stage": stage,
               "offset": self.written, "outcome": outcome or None,
               "reason": reason[:_REASON_MAX] if reason else None, "duration_ms": ms,
               "running_slot": "AB"[slot] if slot in (0, 1) else None,
               "running_version": running_version(info) if info else None}
        try:
            self.http.post_json("/api/v1/report", doc)
        except BridgeError as e:
            self.step(f"report-failed {e.reason}")

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
        if pct >= self._reported + 25 and pct < 100:
            self._reported = pct - pct % 25
            self._report("progress", None, None, 0)

    def _run(self):
        link = self.link
        cfg = self.cfg
        if self.connect is not None:
            self.step("wifi")
            self.connect()
        self.step("info")
        info = self.info = link.info()
        run = info["running_slot"]
        self.step(f"stm32 slot {slot_name(run)} version {running_version(info)} "
                  f"last {RESULT_NAMES.get(info['last_result'], '?')}")
        self.step("checkin")
        doc = {"device_id": self.device_id(), "running_slot": slot_name(run),
               "running_version": running_version(info),
               "slots": {"A": _slot_doc(info, "a"), "B": _slot_doc(info, "b")}}
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
        except (KeyError, ValueError, TypeError):
            raise BridgeError("Failed to check in: the server's update offer is incomplete") from None
        flags = BEGIN_FLAG_DOWNGRADE if reply.get("downgrade") else 0
        self.step(f"download {new_version} slot {slot_name(target)} {size} bytes")
        src = HttpSource(self.http, url, cfg.get("http_retries", 3), self.log, self.port.sleep_ms)
        try:
            phase = self._install(src, target, flags, size, sha, new_version)
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

    def _install(self, src, target, flags, size, sha, new_version):
        """BEGIN, WRITE..., VERIFY, ACTIVATE. When the STM32 loses its session on the way (a reset
        or power cut: ERR_SEQ, ...) or a flash operation fails, a new link session (INFO) says where
        it stands and the cycle goes on from there (next_phase), at most _RESTARTS times. Returns
        "reset" (the new image is activated) or "boot" (it runs already)."""
        link = self.link
        if size < IMAGE_INFO_OFFSET + IMAGE_INFO_SIZE:
            raise BridgeError(f"Failed to check the image: {size} bytes cannot hold its information block")
        head = link.load(src, 0, min(link.max_chunk, size))
        ii = struct.unpack_from(IMAGE_INFO_FMT, head, IMAGE_INFO_OFFSET)
        if ii[0] != IMAGE_INFO_MAGIC:
            raise BridgeError("Failed to check the image: no information block at its offset")
        version = (ii[5], ii[6], ii[7], ii[8])
        block = bytes(head[IMAGE_INFO_OFFSET:IMAGE_INFO_OFFSET + IMAGE_INFO_SIZE])
        phase = "begin"
        restarts = 0
        while True:
            self._in_begin = False
            try:
                if phase == "begin":
                    self._transfer(src, target, flags, version, size, sha, block)
                self.step("activate")
                link.activate()
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
                    return phase

    def _transfer(self, src, target, flags, version, size, sha, block):
        """BEGIN (resuming at the STM32's offset when it has this image's session), WRITE..., VERIFY."""
        link = self.link
        self.step("begin")
        self._in_begin = True
        nxt = link.begin(target, flags, version, size, sha, block)
        self._in_begin = False
        if nxt:
            self.step(f"resume {nxt}")
        self._pct = -1
        self._reported = nxt * 100 // size
        link.write_image(src, nxt, size, self._progress)
        self.step("verify")
        link.verify()

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
                result = info["last_result"]
                confirmed = info["meta_state"] == META_STATE_CONFIRMED
                if run == target and ver == new_version and confirmed:
                    return "confirmed", ver, slot_name(run), ""
                if run != target and confirmed and result in _REVERTED:
                    return "reverted", ver, slot_name(run), RESULT_NAMES[result]
                if not waiting:
                    self.step(f"confirm slot {slot_name(run)} version {ver}")
                    waiting = True
                why = f"slot {slot_name(run)} version {ver} not confirmed"
            except BridgeError as e:
                why = e.reason
            if self._ms(start) >= limit:
                raise BridgeError(f"STM32 did not confirm within {limit // 1000} s: {why}")
            self.port.sleep_ms(_POLL_MS)


def update(path="config.json"):
    """One update cycle with the configuration file on the device; returns the outcome."""
    import config
    import fotalink
    import hw
    import net
    try:
        cfg = config.load(path)
        http = net.Http(cfg["server"], cfg["token"], cfg["http_timeout_s"], cfg["ca_file"], cfg["ntp_host"])
        link = fotalink.Link(hw.Port(cfg))
    except BridgeError as e:
        print("fota: result failed ? slot ? in 0.0 s: " + e.reason)
        return "failed"

    def connect():
        net.wifi_connect(cfg["wifi_ssid"], cfg["wifi_password"], cfg["wifi_retries"],
                         cfg["wifi_timeout_ms"])

    return Updater(link, http, cfg, connect=connect if cfg["wifi_ssid"] else None).cycle()
