"""The `--report FILE.html` page: one self-contained file (no network needed to open it) with the
summary and inline SVG charts drawn here: TTFT, ITL and E2E latency distributions and latency and
throughput over time for each level, and for several levels (a sweep) throughput and latency
against load with the saturation point marked. A few lines of script mark each chart with its
drawn size once the page is laid out, so a headless browser test can tell it rendered."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from acs_cli.bench.metrics import Sample, series, timeline
from acs_cli.bench.report import ROWS

W, H, PAD = 460, 220, 42
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
STYLE = """body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fff}h1{font-size:20px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:12px}svg.chart{background:#fafafa;border:1px solid #ddd}.note{color:#8a5a00}"""
MARK_SCRIPT = """document.querySelectorAll('svg.chart').forEach(function(s){var b=s.getBoundingClientRect();
var n=s.querySelectorAll('rect.bar,polyline.line,circle.dot').length;s.setAttribute('data-rendered',Math.round(b.width)+'x'+Math.round(b.height)+':'+n);});
document.body.setAttribute('data-charts',document.querySelectorAll('svg.chart[data-rendered]').length);"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _frame(title: str, xlabel: str, lo: float, hi: float, ylo: float, yhi: float, body: list[str]) -> str:
    """An SVG chart: the axes with their end labels, a title and the drawn body."""
    parts = [f'<svg class="chart" width="{W}" height="{H}" viewBox="0 0 {W} {H}">',
             f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{_e(title)}</text>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}" stroke="#555"/><line x1="{PAD}" y1="24" x2="{PAD}" y2="{H - PAD}" stroke="#555"/>',
             f'<text x="{PAD}" y="{H - PAD + 14}" font-size="10">{lo:.4g}</text>',
             f'<text x="{W - 10}" y="{H - PAD + 14}" font-size="10" text-anchor="end">{hi:.4g}</text>',
             f'<text x="{W / 2}" y="{H - 8}" font-size="11" text-anchor="middle">{_e(xlabel)}</text>',
             f'<text x="{PAD - 4}" y="{H - PAD}" font-size="10" text-anchor="end">{ylo:.3g}</text>',
             f'<text x="{PAD - 4}" y="30" font-size="10" text-anchor="end">{yhi:.3g}</text>']
    return "".join(parts + body + ["</svg>"])


def _x(v: float, lo: float, hi: float) -> float:
    return PAD + (v - lo) / ((hi - lo) or 1) * (W - PAD - 10)


def _y(v: float, lo: float, hi: float) -> float:
    return H - PAD - (v - lo) / ((hi - lo) or 1) * (H - PAD - 24)


def histogram(values: Sequence[float], title: str, xlabel: str, bins: int = 40) -> str:
    """The distribution of `values` (the top 0.5% folded into the last bin, so one outlier does
    not squash the chart)."""
    ordered = sorted(v for v in values if math.isfinite(v))
    if not ordered:
        return _frame(title + " (no data)", xlabel, 0, 1, 0, 1, [])
    lo, hi = ordered[0], ordered[min(len(ordered) - 1, int(len(ordered) * 0.995))]
    hi = hi if hi > lo else lo + 1e-9
    counts = [0] * bins
    for v in ordered:
        counts[min(bins - 1, int((min(v, hi) - lo) / (hi - lo) * bins))] += 1
    top = max(counts)
    step = (W - PAD - 10) / bins
    bars = [f'<rect class="bar" x="{PAD + i * step:.1f}" y="{_y(c, 0, top):.1f}" width="{max(step - 1, 1):.1f}" '
            f'height="{H - PAD - _y(c, 0, top):.1f}" fill="{COLOURS[0]}"/>' for i, c in enumerate(counts) if c]
    return _frame(f"{title} (n={len(ordered)})", xlabel, lo, hi, 0, top, bars)


def lines(xs: Sequence[float], named: Sequence[tuple[str, Sequence[float]]], title: str, xlabel: str, mark: float | None = None) -> str:
    """One or more series against xs, each scaled to the chart's height (values in the legend)."""
    points = [(x, y) for _, ys in named for x, y in zip(xs, ys, strict=False) if math.isfinite(y)]
    if not points:
        return _frame(title + " (no data)", xlabel, 0, 1, 0, 1, [])
    lo, hi = min(xs), max(xs)
    ylo, yhi = 0.0, max(y for _, y in points) or 1.0
    body = []
    for k, (name, ys) in enumerate(named):
        pts = " ".join(f"{_x(x, lo, hi):.1f},{_y(y, ylo, yhi):.1f}" for x, y in zip(xs, ys, strict=False) if math.isfinite(y))
        colour = COLOURS[k % len(COLOURS)]
        body.append(f'<polyline class="line" fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>')
        body += [f'<circle class="dot" cx="{_x(x, lo, hi):.1f}" cy="{_y(y, ylo, yhi):.1f}" r="2.5" fill="{colour}"/>'
                 for x, y in zip(xs, ys, strict=False) if math.isfinite(y) and len(xs) <= 20]
        body.append(f'<text x="{W - 12}" y="{36 + 14 * k}" font-size="11" text-anchor="end" fill="{colour}">{_e(name)}</text>')
    if mark is not None:
        mx = _x(mark, lo, hi)
        body.append(f'<line x1="{mx:.1f}" y1="24" x2="{mx:.1f}" y2="{H - PAD}" stroke="#e67e00" stroke-dasharray="4 3"/>'
                    f'<text x="{mx + 3:.1f}" y="{H - PAD - 6}" font-size="11" fill="#e67e00">saturation</text>')
    return _frame(title, xlabel, lo, hi, ylo, yhi, body)


def summary_table(s: dict[str, Any]) -> str:
    rows = [("completed / failed / interrupted", f"{s['completed']} / {s['failed']} / {s['interrupted']}"),
            ("failures by kind", ", ".join(f"{k} {v}" for k, v in s["errors"].items()) or "none"),
            ("duration (s)", f"{s['duration']:.2f}"),
            (f"input tokens ({s['input_token_source']})", s["total_input_tokens"]),
            (f"output tokens ({s['output_token_source']})", s["total_output_tokens"]),
            ("request throughput (req/s)", f"{s['request_throughput']:.2f}"),
            ("output throughput (tok/s)", f"{s['output_throughput']:.1f}")]
    if s.get("goodput_percent") is not None:
        rows.append(("goodput (req/s, % meeting SLOs)", f"{s['request_goodput']:.2f}, {s['goodput_percent']:.1f}%"))
    out = ["<table>"] + [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows] + ["</table><table><tr><th>ms</th>"]
    stats = ("mean", "median", "std", "p90", "p95", "p99")
    out += [f"<th>{st}</th>" for st in stats] + ["</tr>"]
    for key, name in ROWS:
        out.append(f"<tr><td>{_e(name)}</td>" + "".join(f"<td>{s[f'{st}_{key}_ms']:.2f}</td>" for st in stats) + "</tr>")
    return "".join(out) + "</table>"


def level_section(s: dict[str, Any], samples: Sequence[Sample]) -> str:
    over = timeline(samples, s["duration"], buckets=min(60, max(5, len(samples) // 4)))
    charts = [histogram([v * 1000 for v in series(samples, "ttft")], "TTFT", "ms"),
              histogram([v * 1000 for v in series(samples, "itl")], "ITL", "ms"),
              histogram([v * 1000 for v in series(samples, "e2el")], "E2E latency", "ms"),
              lines(over["t"], [("median E2EL ms", over["median_e2el_ms"])], "Latency over time", "seconds into the run"),
              lines(over["t"], [("requests/s", over["requests_per_s"]), ("output tokens/s", over["tokens_per_s"])], "Throughput over time", "seconds into the run")]
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in s.get("notes", []))
    return f"<h2>{_e(s['level'])}</h2>{summary_table(s)}{notes}<div class=\"charts\">{''.join(charts)}</div>"


def load_section(summaries: Sequence[dict[str, Any]], saturation: int | None) -> str:
    """Throughput and latency against load, for several levels."""
    xs = [float(s["request_rate"]) if s["request_rate"] != "inf" else float(s["max_concurrency"] or 0) for s in summaries]
    xlabel = "request rate (req/s)" if summaries[0]["request_rate"] != "inf" else "concurrency"
    mark = xs[saturation] if saturation is not None else None
    charts = [lines(xs, [("output tok/s", [s["output_throughput"] for s in summaries]), ("req/s", [s["request_throughput"] for s in summaries])],
                    "Throughput against load", xlabel, mark),
              lines(xs, [("p99 TTFT ms", [s["p99_ttft_ms"] for s in summaries]), ("p99 ITL ms", [s["p99_itl_ms"] for s in summaries])],
                    "Latency against load", xlabel, mark)]
    return f"<h2>Against load</h2><div class=\"charts\">{''.join(charts)}</div>"


def page(summaries: Sequence[dict[str, Any]], samples: Sequence[Sequence[Sample]], saturation: int | None) -> str:
    first = summaries[0]
    head = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>acs bench: {_e(first.get('model_id'))}</title>"
            f"<style>{STYLE}</style></head><body><h1>acs bench: {_e(first.get('model_id'))} at {_e(first.get('base_url'))}</h1>"
            f"<p>{_e(first.get('date'))} · acs {_e(first.get('acs_version'))} · seed {_e(first.get('seed'))}</p>")
    body = [load_section(summaries, saturation)] if len(summaries) > 1 else []
    body += [level_section(s, smp) for s, smp in zip(summaries, samples, strict=True)]
    return head + "".join(body) + f"<script>{MARK_SCRIPT}</script></body></html>\n"
