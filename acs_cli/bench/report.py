"""A run's results: the summary table (stdout), the vLLM-compatible JSON summary, one JSON line per
request, and `acs bench compare`. The HTML page is acs_cli.bench.html."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from acs_cli.bench.metrics import Sample
from acs_cli.errors import AcsError, UsageError

ROWS = (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl", "ITL"), ("e2el", "E2E latency"), ("queue", "queue (sent - scheduled)"),
        ("dispatch_lag", "dispatch lag"), ("sched_ttft", "TTFT from scheduled"), ("sched_e2el", "E2EL from scheduled"))
SOURCE_WORDS = {"usage": "server usage", "tokenize": "/tokenize", "estimate": "estimated", "frames": "frames counted", "mixed": "mixed sources", "none": "none"}
# the direction in which a figure is better, for `compare`: +1 higher, -1 lower
HIGHER_BETTER = ("throughput", "goodput", "completed")
LOWER_BETTER = ("_ms", "failed", "error_rate", "interrupted")


def table(summary: dict[str, Any]) -> str:
    """The summary as aligned text lines (plain: no escape codes, fit for a pipe)."""
    s = summary
    out = [f"==== acs bench: {s.get('level', '')} ====".strip()]

    def row(name: str, value: str) -> None:
        out.append(f"{name + ':':<44} {value}")

    row("model", str(s.get("model_id")))
    row("requests completed / failed / interrupted", f"{s['completed']} / {s['failed']} / {s['interrupted']}")
    if s["errors"]:
        row("failures by kind", ", ".join(f"{k} {v}" for k, v in s["errors"].items()))
    row("error rate", f"{100 * s['error_rate']:.1f}%")
    row("duration (s)", f"{s['duration']:.2f}")
    row(f"input tokens ({SOURCE_WORDS.get(s['input_token_source'], s['input_token_source'])})", str(s["total_input_tokens"]))
    row(f"output tokens ({SOURCE_WORDS.get(s['output_token_source'], s['output_token_source'])})", str(s["total_output_tokens"]))
    row("request throughput (req/s)", f"{s['request_throughput']:.2f} (attempted {s['attempted_throughput']:.2f})")
    row("output token throughput (tok/s)", f"{s['output_throughput']:.1f}")
    row("total token throughput (tok/s)", f"{s['total_token_throughput']:.1f}")
    if s.get("achieved_send_rate") is not None and s.get("request_rate") != "inf":
        row("achieved send rate (req/s)", f"{s['achieved_send_rate']:.2f}")
    if s.get("goodput_percent") is not None:
        slos = ", ".join(f"{k} ≤ {v:g} ms" for k, v in s["slo_ms"].items())
        row(f"goodput ({slos})", f"{s['request_goodput']:.2f} req/s, {s['goodput_percent']:.1f}% of requests")
    out.append(f"{'ms':<26} {'mean':>9} {'median':>9} {'std':>9} {'p90':>9} {'p95':>9} {'p99':>9}")
    for key, name in ROWS:
        cells = (s[f"{stat}_{key}_ms"] for stat in ("mean", "median", "std", "p90", "p95", "p99"))
        out.append(f"{name:<26} " + " ".join(f"{v:>9.2f}" for v in cells))
    client = s.get("client") or {}
    if client:
        row("client CPU (busiest worker)", f"{client['cpu_percent']:.0f}% of a core; event-loop lag p99 {client['loop_lag_p99_ms']:.2f} ms")
    out.extend(f"note: {note}" for note in s.get("notes", []))
    return "\n".join(out) + "\n"


def curve_table(summaries: Sequence[dict[str, Any]], saturation: int | None) -> str:
    """A sweep's or a list of levels' curve: one line per level."""
    out = [f"{'level':<28} {'req/s':>8} {'out tok/s':>10} {'p99 TTFT ms':>12} {'p99 ITL ms':>11} {'failed':>7} {'goodput %':>10}"]
    for i, s in enumerate(summaries):
        mark = "  <- saturation" if i == saturation else ""
        goodput = "" if s.get("goodput_percent") is None else f"{s['goodput_percent']:.1f}"
        out.append(f"{s['level']:<28} {s['request_throughput']:>8.2f} {s['output_throughput']:>10.1f} {s['p99_ttft_ms']:>12.2f}"
                   f" {s['p99_itl_ms']:>11.2f} {s['failed']:>7} {goodput:>10}{mark}")
    return "\n".join(out) + "\n"


def clean(value: Any) -> Any:
    """JSON without NaN or Infinity (not JSON): they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def results_json(summaries: Sequence[dict[str, Any]], saturation: int | None) -> dict[str, Any]:
    """One level: vLLM's flat object. Several: {"runs": [flat objects…], "saturation_index": i}."""
    if len(summaries) == 1:
        return clean(summaries[0])
    return clean({"runs": list(summaries), "saturation_index": saturation})


def write_text(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AcsError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable path") from None


def request_lines(samples: Sequence[Sample], level: str) -> str:
    """One JSON object per request (times in ms since the run's start, itl_ms the gaps)."""
    lines = []
    for s in samples:
        d = asdict(s)
        rec: dict[str, Any] = {"level": level}
        for key, value in d.items():
            if key in ("scheduled", "dispatched", "sent", "first_token", "last_token", "end"):
                rec[f"{key}_ms"] = None if value is None else round(value * 1000, 3)
            elif key == "itl":
                rec["itl_ms"] = [round(v * 1000, 3) for v in value]
            else:
                rec[key] = value
        for name in ("ttft", "tpot", "e2el"):
            value = getattr(s, name)
            rec[f"{name}_ms"] = None if value is None else round(value * 1000, 3)
        lines.append(json.dumps(rec, ensure_ascii=False))
    return "\n".join(lines) + ("\n" if lines else "")


def load_result(path: str) -> list[dict[str, Any]]:
    """The runs of a --json file (ours or `vllm bench serve`'s)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read the result file {path}: {reason}", "give files written by acs bench --json (or vllm bench serve)") from None
    runs = data.get("runs") if isinstance(data, dict) and "runs" in data else [data]
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise UsageError(f"{path} is not a bench result", "give files written by acs bench --json (or vllm bench serve)")
    return runs


def direction(key: str) -> int:
    if any(word in key for word in HIGHER_BETTER):
        return 1
    if any(word in key for word in LOWER_BETTER):
        return -1
    return 0


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Every number both results have, A → B, the change and whether it is better or worse."""
    out = [f"{'metric':<34} {'A':>12} {'B':>12} {'change':>9}  direction"]
    for key, va in a.items():
        vb = b.get(key)
        if type(va) not in (int, float) or type(vb) not in (int, float):
            continue
        change = (vb - va) / abs(va) * 100 if va else (0.0 if vb == va else math.inf)
        sign = direction(key)
        if vb == va or sign == 0:
            verdict = "same" if vb == va else ""
        else:
            verdict = "better" if (vb - va) * sign > 0 else "worse"
        out.append(f"{key:<34} {va:>12.4g} {vb:>12.4g} {change:>+8.1f}%  {verdict}".rstrip())
    return "\n".join(out) + "\n"
