"""The operator's rollout commands (``invoke rollout ...``): a small JSON client of the server's
fleet API (docs/fleet.md) on the standard library, and the text it prints.

    >>> stages("1,10,50,100")
    [{'percent': 1.0}, {'percent': 10.0}, {'percent': 50.0}, {'percent': 100.0}]
    >>> stages("5n,20n")
    [{'count': 5}, {'count': 20}]

The server is the configured one (``[server] host``/``port``, HTTPS when ``tls_cert`` is set,
trusting ``<state dir>/tls/ca.pem`` when it exists) or ``--server URL``; the operator token comes
from ``FOTA_OPERATOR_TOKEN`` / ``[server] operator_token`` and is never printed. Every failure is a
:class:`RolloutError` naming the request and the server's reason.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fota_formats.config import FotaConfig
from fota_formats.errors import FotaError

TIMEOUT_S = 15.0
PREFIX = "/api/v1"
ACTIONS = ("pause", "resume", "abort", "advance")


class RolloutError(FotaError):
    """A rollout command failed: bad arguments, or the server refused (the message says why)."""


def stages(text: str) -> list[dict[str, Any]]:
    """``"1,10,100"`` (percentages) or ``"5n,20n"`` (device counts) as the API's stages."""
    out: list[dict[str, Any]] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            if part.endswith("n"):
                out.append({"count": int(part[:-1])})
            else:
                out.append({"percent": float(part.rstrip("%"))})
        except ValueError:
            raise RolloutError(f"--stages: {part!r} is not a percentage (10 or 10%) or a device count (5n); "
                               "example: --stages 1,10,50,100") from None
    return out


def server_url(cfg: FotaConfig) -> str:
    host = cfg.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"{cfg.server.scheme}://{host}:{cfg.server.port}"


class OperatorClient:
    def __init__(self, base_url: str, token: str | None, ca: Path | None = None,
                 timeout_s: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.context = ssl.create_default_context(cafile=str(ca)) if ca is not None else None

    @classmethod
    def from_config(cls, cfg: FotaConfig, server: str = "") -> OperatorClient:
        ca = cfg.state_dir / "tls" / "ca.pem"
        return cls(server or server_url(cfg), cfg.server.operator_token, ca if ca.is_file() else None)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base_url + PREFIX + path, data=data, method=method, headers=headers)
        what = f"{method} {self.base_url}{PREFIX}{path}"
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=self.context) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                detail = json.loads(e.read()).get("detail")
            except (ValueError, AttributeError):
                detail = None
            hint = " (set FOTA_OPERATOR_TOKEN or [server] operator_token)" if e.code in (401, 403) else ""
            raise RolloutError(f"Failed to {what}: HTTP {e.code}: {detail or e.reason}{hint}") from None
        except (urllib.error.URLError, OSError) as e:
            raise RolloutError(f"Failed to {what}: {getattr(e, 'reason', e)} (is the server running? "
                               "`invoke serve`)") from None
        except ValueError as e:
            raise RolloutError(f"Failed to {what}: the answer is not JSON ({e})") from None

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/rollouts", body)
        return result

    def list(self, state: str | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.request("GET", "/rollouts" + (f"?state={state}" if state else ""))[
            "items"]
        return items

    def show(self, rollout_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/rollouts/{rollout_id}")
        return result

    def act(self, rollout_id: int, action: str, reason: str, by: str) -> dict[str, Any]:
        if action not in ACTIONS:
            raise RolloutError(f"{action!r} is not a rollout action ({', '.join(ACTIONS)})")
        result: dict[str, Any] = self.request("POST", f"/rollouts/{rollout_id}/{action}",
                                              {"reason": reason, "by": by})
        return result


def create_body(version: str, stages_text: str, all_devices: bool, group: str, devices: str, name: str,
                soak_s: int | None, success: float | None, failure: float | None, min_sample: int | None,
                consecutive: int | None, by: str, reason: str) -> dict[str, Any]:
    """The body of POST /rollouts from the command's options (None and "": the server's defaults)."""
    targets = [t for t in (all_devices and "--all", group and "--group", devices and "--devices") if t]
    if len(targets) != 1:
        raise RolloutError("give exactly one target: --all, --group NAME or --devices ID,ID,... "
                           f"(given: {', '.join(targets) or 'none'})")
    if not version:
        raise RolloutError("--version is required (the release to roll out, e.g. 1.2.0)")
    target: dict[str, Any] = ({"all": True} if all_devices else {"group": group} if group else
                              {"devices": [d.strip() for d in devices.split(",") if d.strip()]})
    body: dict[str, Any] = {"version": version, "target": target, "stages": stages(stages_text), "by": by}
    optional = {"name": name or None, "soak_s": soak_s, "success_threshold": success,
                "failure_threshold": failure, "min_sample": min_sample,
                "max_consecutive_failures": consecutive, "reason": reason or None}
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def _stage_text(s: dict[str, Any]) -> str:
    return f"{s['percent']:g}%" if s.get("percent") is not None else f"{s['count']} devices"


def _target_text(t: dict[str, Any]) -> str:
    if t.get("all"):
        return "all devices"
    if t.get("group"):
        return f"group {t['group']}"
    return f"{len(t.get('devices') or [])} listed devices"


def _rate(r: float | None) -> str:
    return "-" if r is None else f"{100 * r:.0f}%"


def describe_list(items: list[dict[str, Any]]) -> str:
    if not items:
        return "no rollouts"
    lines = [f"{'id':>4}  {'version':<9} {'state':<10} {'stage':<12} {'devices':>7} {'confirmed':>9} "
             f"{'failed':>6} {'rate':>5}  target / name"]
    for r in items:
        stage = f"{r['current_stage'] + 1}/{len(r['stages'])} {_stage_text(r['stages'][r['current_stage']])}"
        lines.append(f"{r['id']:>4}  {r['version']:<9} {r['state']:<10} {stage:<12} {r['devices']:>7} "
                     f"{r['confirmed']:>9} {r['failed']:>6} {_rate(r['failure_rate']):>5}  "
                     f"{_target_text(r['target'])} / {r['name']}")
    return "\n".join(lines)


def describe(r: dict[str, Any]) -> str:
    lines = [f"rollout {r['id']}: {r['name']} - release {r['version']} to {_target_text(r['target'])}",
             f"  state {r['state']}, stage {r['current_stage'] + 1} of {len(r['stages'])}"
             + (f", next stage at {r['next_stage_at']}" if r.get("next_stage_at") else ""),
             f"  rules: next stage after {r['success_threshold']:g} of a stage's devices confirmed and "
             f"{r['soak_s']} s; pause over {100 * r['failure_threshold']:g}% failed (from "
             f"{r['min_sample']} finished) or after {r['max_consecutive_failures'] or 'no limit of'} "
             f"failures in a row",
             f"  devices {r['devices']}, confirmed {r['confirmed']}, failed {r['failed']} "
             f"({_rate(r['failure_rate'])})", "  stages:"]
    for s in r["stages"]:
        mark = ">" if s["stage"] == r["current_stage"] else " "
        lines.append(f"   {mark} {s['stage'] + 1}. {_stage_text(s):<12} devices {s['devices']:>5}, confirmed "
                     f"{s['confirmed']:>5} (needs {s['needed']}), failed {s['failed']:>4} "
                     f"({_rate(s['failure_rate'])}), opened {s['opened_at'] or '-'}")
    if r.get("transitions"):
        lines.append("  history:")
        lines += [f"    {t['at']}  {t['action']:<8} {t['from_state'] or '-':>9} -> {t['to_state']:<9} stage "
                  f"{t['stage'] + 1}  by {t['actor']}: {t['reason']}" for t in r["transitions"]]
    return "\n".join(lines)
