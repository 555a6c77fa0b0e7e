"""Pure: per-request samples to the figures `acs bench` reports, defined once (the README repeats
these formulas). Names and units follow `vllm bench serve` so results compare key for key.

Every time in a Sample is seconds since the run's start (the schedule's zero), so samples from
several workers (processes or Ray tasks, each with its own clock) merge by simple concatenation,
and every percentile is computed from the merged samples, never averaged over workers.

- TTFT = first_token - sent: the request was written → the first frame that carried text (a
  role-only, empty or usage-only frame is no token: the consumer only times frames with text).
- TPOT = (last_token - first_token) / (output_tokens - 1), per request with at least 2 tokens.
- ITL = the gaps between consecutive text frames of a request, pooled over requests.
- E2EL = end - sent: the request was written → its last byte.
- queue = sent - scheduled (coordinated omission shows here); dispatch lag = dispatched -
  scheduled (the client's own lateness); sched_ttft / sched_e2el count from the scheduled time.
- Distributions take the completed requests; failed ones are counted (failed, by kind, the error
  rate, attempted throughput) and never dropped; interrupted ones (Ctrl-C) are counted apart.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (50, 90, 95, 99)
DISTRIBUTIONS = ("ttft", "tpot", "itl", "e2el", "queue", "dispatch_lag", "sched_ttft", "sched_e2el")
SLO_METRICS = ("ttft", "tpot", "itl", "e2el")  # itl: every gap of the request
INTERRUPTED = "interrupted"


@dataclass(slots=True)
class Sample:
    """One request; times in seconds since the run's start (None: it never got there)."""

    index: int
    scheduled: float
    dispatched: float | None = None
    sent: float | None = None
    first_token: float | None = None
    last_token: float | None = None
    end: float | None = None
    itl: list[float] = field(default_factory=list)
    status: int | None = None
    error_kind: str | None = None  # None: completed
    error: str | None = None  # the message, with the server's own words for an HTTP error
    exit_status: int | None = None  # the status `acs complete` would exit with for this failure
    input_tokens: int | None = None
    input_source: str = "estimate"  # usage | tokenize | estimate
    output_tokens: int = 0
    output_source: str = "frames"  # usage | frames
    max_tokens: int | None = None
    id: str | None = None
    worker: int = 0

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    @property
    def ttft(self) -> float | None:
        return None if self.first_token is None or self.sent is None else self.first_token - self.sent

    @property
    def tpot(self) -> float | None:
        if self.first_token is None or self.last_token is None or self.output_tokens < 2:
            return None
        return (self.last_token - self.first_token) / (self.output_tokens - 1)

    @property
    def e2el(self) -> float | None:
        return None if self.end is None or self.sent is None else self.end - self.sent


def percentile(ordered: Sequence[float], p: float) -> float:
    """numpy's default (linear) percentile of sorted values."""
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * p / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def distribution(values: Iterable[float]) -> dict[str, float]:
    """mean, median, std (population, as numpy), the PERCENTILES, min and max; NaN-free: an empty
    distribution gives zeros, as vLLM's does."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return {"mean": 0.0, "median": 0.0, "std": 0.0, **{f"p{p}": 0.0 for p in PERCENTILES}, "min": 0.0, "max": 0.0, "count": 0}
    mean = math.fsum(ordered) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in ordered) / n)
    out: dict[str, float] = {"mean": mean, "median": percentile(ordered, 50), "std": std}
    out.update({f"p{p}": percentile(ordered, p) for p in PERCENTILES})
    out.update(min=ordered[0], max=ordered[-1], count=n)
    return out


def series(samples: Sequence[Sample], name: str) -> list[float]:
    """One distribution's values in seconds, from the completed samples."""
    done = [s for s in samples if s.ok]
    if name == "itl":
        return [gap for s in done for gap in s.itl]
    if name in ("ttft", "tpot", "e2el"):
        values = (getattr(s, name) for s in done)
    elif name == "queue":
        values = (None if s.sent is None else s.sent - s.scheduled for s in samples if s.error_kind != INTERRUPTED)
    elif name == "dispatch_lag":
        values = (None if s.dispatched is None else s.dispatched - s.scheduled for s in samples if s.error_kind != INTERRUPTED)
    elif name == "sched_ttft":
        values = (None if s.first_token is None else s.first_token - s.scheduled for s in done)
    elif name == "sched_e2el":
        values = (None if s.end is None else s.end - s.scheduled for s in done)
    else:
        raise KeyError(name)
    return [v for v in values if v is not None]


def meets(sample: Sample, slos: dict[str, float]) -> bool:
    """Whether a completed request met every SLO (seconds); a failed one never does."""
    if not sample.ok:
        return False
    for name, limit in slos.items():
        if name == "itl":
            if sample.itl and max(sample.itl) > limit:
                return False
            continue
        value = getattr(sample, name)
        if value is not None and value > limit:
            return False
    return True


def token_source(sources: Iterable[str]) -> str:
    """One word for a total: the single source, or `mixed` (the counts say which)."""
    seen = set(sources)
    if not seen:
        return "none"
    return seen.pop() if len(seen) == 1 else "mixed"


def summarize(samples: Sequence[Sample], duration: float, slos: dict[str, float] | None = None) -> dict[str, Any]:
    """The summary, flat, with vLLM's key names (`completed`, `mean_ttft_ms`, …) and acs's extras."""
    slos = slos or {}
    interrupted = [s for s in samples if s.error_kind == INTERRUPTED]
    attempted = [s for s in samples if s.error_kind != INTERRUPTED]
    done = [s for s in attempted if s.ok]
    failed = [s for s in attempted if not s.ok]
    duration = max(duration, 1e-9)
    total_in = sum(s.input_tokens or 0 for s in done)
    total_out = sum(s.output_tokens for s in done)
    good = sum(1 for s in done if meets(s, slos)) if slos else len(done)
    out: dict[str, Any] = {
        "completed": len(done),
        "failed": len(failed),
        "interrupted": len(interrupted),
        "attempted": len(attempted),
        "errors": dict(Counter(s.error_kind for s in failed if s.error_kind).most_common()),
        "error_rate": len(failed) / len(attempted) if attempted else 0.0,
        "duration": duration,
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "input_token_source": token_source(s.input_source for s in done),
        "output_token_source": token_source(s.output_source for s in done),
        "output_tokens_counted_from_frames": sum(1 for s in done if s.output_source == "frames"),
        "request_throughput": len(done) / duration,
        "attempted_throughput": len(attempted) / duration,
        "output_throughput": total_out / duration,
        "total_token_throughput": (total_in + total_out) / duration,
        "request_goodput": good / duration if slos else None,
        "goodput_percent": 100.0 * good / len(attempted) if slos and attempted else None,
        "slo_ms": {k: v * 1000 for k, v in slos.items()},
    }
    sent = sorted(s.sent for s in attempted if s.sent is not None)
    out["achieved_send_rate"] = (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 and sent[-1] > sent[0] else None
    for name in DISTRIBUTIONS:
        dist = distribution(series(samples, name))
        for stat, value in dist.items():
            if stat != "count":
                out[f"{stat}_{name}_ms"] = value * 1000
    return out


def short_outputs(samples: Sequence[Sample]) -> int:
    """Completed requests that produced fewer tokens than they asked for (the server stopped at
    EOS: it may not honour ignore_eos/min_tokens)."""
    return sum(1 for s in samples if s.ok and s.max_tokens and s.output_tokens < s.max_tokens)


def timeline(samples: Sequence[Sample], duration: float, buckets: int = 60) -> dict[str, list[float]]:
    """Per time bucket: completed requests/s, output tokens/s and the median E2EL (ms) of the
    requests that ended in it, for the report's over-time charts."""
    width = max(duration, 1e-9) / buckets
    reqs = [0.0] * buckets
    toks = [0.0] * buckets
    lat: list[list[float]] = [[] for _ in range(buckets)]
    for s in samples:
        if not s.ok or s.end is None:
            continue
        b = min(buckets - 1, max(0, int(s.end / width)))
        reqs[b] += 1 / width
        toks[b] += s.output_tokens / width
        if s.e2el is not None:
            lat[b].append(s.e2el * 1000)
    return {
        "t": [width * (i + 0.5) for i in range(buckets)],
        "requests_per_s": reqs,
        "tokens_per_s": toks,
        "median_e2el_ms": [percentile(sorted(v), 50) if v else math.nan for v in lat],
    }
