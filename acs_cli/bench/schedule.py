"""Pure: load shapes and their schedule, computed before a run starts.

A closed loop keeps N requests in flight (a finished one is replaced at once). An open loop sends
requests at precomputed times: `constant` every 1/R s, `poisson` with exponential gaps of mean
1/R, `gamma` with gamma gaps of shape `burstiness` and mean 1/R (vLLM's definition: burstiness 1
is Poisson, below 1 burstier, above 1 more regular); `--max-concurrency` caps the requests in
flight, and a request that waits for a slot shows it as queue time. A sweep raises the load until
throughput stops rising (or the SLOs break) and reports the curve.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from acs_cli.errors import UsageError

ARRIVALS = ("constant", "poisson", "gamma")
SWEEP_GAIN = 0.05  # a level that adds less than 5% throughput over the best so far saturates
SWEEP_LIMIT = 4096  # the highest concurrency a sweep tries


@dataclass(frozen=True)
class Level:
    """One load level: a closed loop of `concurrency`, or an open loop at `rate` requests/s."""

    concurrency: int | None = None
    rate: float | None = None
    max_concurrency: int | None = None

    @property
    def label(self) -> str:
        if self.rate is not None:
            cap = f" (max {self.max_concurrency} in flight)" if self.max_concurrency else ""
            return f"rate {self.rate:g}/s{cap}"
        return f"concurrency {self.concurrency}"


@dataclass(frozen=True)
class Stop:
    """When a level ends: after `requests` requests, or `duration` seconds of sending."""

    requests: int | None = None
    duration: float | None = None


def parse_numbers(text: str, flag: str, kind: type) -> list:
    """`4` or `1,4,16`: positive numbers (a usage error otherwise)."""
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = kind(part)
        except ValueError:
            raise UsageError(f"{flag} {text!r}: {part!r} is not a number", f"for example {flag} 4 or {flag} 1,4,16") from None
        if not (value > 0 and math.isfinite(value)):
            raise UsageError(f"{flag} {text!r}: {part} is not a positive number", f"give {flag} numbers above 0, e.g. {flag} 1,4,16")
        values.append(value)
    return values


def levels(concurrency: str | None, rate: str | None, max_concurrency: int | None) -> list[Level]:
    """The load levels the flags ask for (closed loop of 1 when neither is given)."""
    if concurrency and rate:
        raise UsageError("--concurrency and --rate exclude each other", "a closed loop (--concurrency) or an open loop (--rate), not both")
    if rate:
        return [Level(rate=r, max_concurrency=max_concurrency) for r in parse_numbers(rate, "--rate", float)]
    if max_concurrency is not None:
        raise UsageError("--max-concurrency caps an open loop", "use it with --rate; a closed loop's --concurrency is its cap")
    return [Level(concurrency=c) for c in parse_numbers(concurrency or "1", "--concurrency", int)]


def arrivals(rate: float, arrival: str, burstiness: float, stop: Stop, rng: random.Random) -> list[float]:
    """Send times in seconds from the start: `stop.requests` of them, or as many as fall within
    `stop.duration`. The first request goes at 0."""
    if arrival not in ARRIVALS:
        raise UsageError(f"--arrival {arrival!r} is not one of {', '.join(ARRIVALS)}", "choose constant, poisson or gamma")
    limit = stop.requests if stop.requests is not None else math.inf
    end = stop.duration if stop.duration is not None else math.inf
    times: list[float] = []
    t = 0.0
    shape = burstiness if arrival == "gamma" else 1.0
    while len(times) < limit and t < end:
        times.append(t)
        if arrival == "constant":
            t = len(times) / rate  # from the count, so rounding never drifts
        else:
            t += rng.gammavariate(shape, 1.0 / (rate * shape))
    return times


def split(count: int, parts: int) -> list[int]:
    """`count` shared as evenly as possible among `parts` (earlier parts get the remainder)."""
    base, extra = divmod(count, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def sweep_next(level: Level) -> Level:
    """The next level of a sweep: twice the concurrency, or twice the rate."""
    if level.rate is not None:
        return Level(rate=level.rate * 2, max_concurrency=level.max_concurrency)
    return Level(concurrency=(level.concurrency or 1) * 2)


def saturated(throughputs: Sequence[float], slo_broken: bool) -> bool:
    """A sweep stops when the SLOs broke at the last level, or when it raised throughput by less
    than SWEEP_GAIN over the best level before it."""
    if slo_broken:
        return True
    if len(throughputs) < 2:
        return False
    best_before = max(throughputs[:-1])
    return throughputs[-1] < best_before * (1 + SWEEP_GAIN)


def saturation_index(throughputs: Sequence[float], slo_ok: Sequence[bool]) -> int | None:
    """The level of a sweep's curve to call the saturation point: the highest throughput among
    the levels that met the SLOs (all levels when there are none)."""
    best = None
    for i, (tp, ok) in enumerate(zip(throughputs, slo_ok, strict=True)):
        if ok and (best is None or tp > throughputs[best]):
            best = i
    return best
