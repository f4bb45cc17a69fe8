"""A rollout's progress over time as a small SVG, drawn on the server (no script, no library).

    >>> svg = progress_svg([("2026-01-01T10:00:00.000Z", "confirmed"),
    ...                     ("2026-01-01T10:05:00.000Z", "reverted")], expected=4)
    >>> svg.startswith("<svg") and "2 finished" in svg
    True

Two step lines over the time of the finished updates: confirmed devices, and failed ones
(reverted, failed, refused), against the devices the rollout's stages are for. Each line is also
named in a text label and in the SVG's title, so the chart reads without colour.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

W, H = 480, 160
PAD_L, PAD_R, PAD_T, PAD_B = 40, 110, 12, 28


def _t(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def progress_svg(timeline: list[tuple[str, str]], expected: int | None = None, title: str = "") -> str:
    """``timeline``: (finished_at, outcome) oldest first; ``expected``: the devices aimed at."""
    ok = sum(1 for _, s in timeline if s == "confirmed")
    bad = len(timeline) - ok
    summary = f"{len(timeline)} finished: {ok} confirmed, {bad} failed"
    label = escape(f"{title}: {summary}" if title else summary)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {W} {H}" role="img" '
            f'aria-label="{label}"><title>{label}</title>')
    if not timeline:
        return (head + f'<text x="{W // 2}" y="{H // 2}" text-anchor="middle">no device has finished yet'
                       "</text></svg>")
    times = [_t(t) for t, _ in timeline]
    t0, t1 = times[0], max(times[-1], times[0] + 1)
    top = max(expected or 0, ok, bad, 1)
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def xy(t: float, n: int) -> str:
        return f"{PAD_L + (t - t0) / (t1 - t0) * pw:.1f},{PAD_T + ph - n / top * ph:.1f}"

    def line(outcome_ok: bool) -> tuple[str, int]:
        n = 0
        pts = [xy(t0, 0)]
        for t, (_, s) in zip(times, timeline, strict=True):
            if (s == "confirmed") == outcome_ok:
                pts.append(xy(t, n))
                n += 1
                pts.append(xy(t, n))
        pts.append(xy(t1, n))
        return " ".join(pts), n

    ok_pts, _ = line(True)
    bad_pts, _ = line(False)
    fmt = "%H:%M" if t1 - t0 >= 600 else "%H:%M:%S"
    start = datetime.fromtimestamp(t0, UTC).strftime(fmt)
    end = datetime.fromtimestamp(t1, UTC).strftime(fmt)
    y_ok = PAD_T + ph - ok / top * ph
    y_bad = PAD_T + ph - bad / top * ph
    if abs(y_ok - y_bad) < 14:  # keep the two labels apart
        y_bad = y_ok + 14 if y_ok < PAD_T + ph - 14 else y_ok - 14
    parts = [
        head,
        f'<line class="axis" x1="{PAD_L}" y1="{PAD_T + ph}" x2="{PAD_L + pw}" y2="{PAD_T + ph}"/>',
        f'<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{PAD_T + ph}"/>',
        f'<text x="{PAD_L - 4}" y="{PAD_T + 10}" text-anchor="end">{top}</text>',
        f'<text x="{PAD_L - 4}" y="{PAD_T + ph}" text-anchor="end">0</text>',
        f'<text x="{PAD_L}" y="{H - 8}">{start} UTC</text>',
        f'<text x="{PAD_L + pw}" y="{H - 8}" text-anchor="end">{end} UTC</text>',
    ]
    if expected:
        y = PAD_T + ph - expected / top * ph
        parts.append(f'<line class="target" x1="{PAD_L}" y1="{y:.1f}" x2="{PAD_L + pw}" y2="{y:.1f}"/>')
    parts += [
        f'<polyline class="ok" points="{ok_pts}"/>',
        f'<polyline class="bad" points="{bad_pts}"/>',
        f'<text x="{PAD_L + pw + 6}" y="{y_ok + 4:.1f}">{ok} confirmed</text>',
        f'<text x="{PAD_L + pw + 6}" y="{y_bad + 4:.1f}">{bad} failed</text>',
        "</svg>",
    ]
    return "".join(parts)
