"""Several endpoints (replicas) fed by one batch: least outstanding requests, a failing one rested.

Each request goes to the endpoint with the fewest requests in flight (ties: the one sent fewer),
so a slow replica, which holds its requests longer, gets fewer of them. An endpoint that fails
`REST_AFTER` times in a row (no connection, a timeout, a 5xx, a cut stream) gets no new requests
for a while (5 s, doubling each time it fails again right after, up to 60 s); its first request
after a rest is a probe: one more failure rests it again. The last endpoint still working is
never rested for failing (resting it would stop the run; its requests back off one by one
instead). A `Retry-After` from an endpoint rests it for that long, whatever the others do: only
then, when every endpoint rests, does a request wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REST_AFTER = 3
REST_FIRST = 5.0
REST_CAP = 60.0


@dataclass
class Endpoint:
    name: str  # for messages: the base URL, credentials removed
    engine: Any  # acs_cli.engine.Engine
    model: str | None = None  # for lines that name none
    outstanding: int = 0
    sent: int = 0
    failures: int = 0  # in a row
    rests: int = 0  # rests in a row (the next is twice as long)
    resting_until: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)  # failures by kind, for the summary


class Balancer:
    def __init__(self, endpoints: list[Endpoint], clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoints = endpoints
        self.clock = clock

    def pick(self) -> Endpoint | float:
        """The endpoint for the next request, or the seconds until one is back from its rest."""
        now = self.clock()
        best: Endpoint | None = None
        for ep in self.endpoints:
            if ep.resting_until > now:
                continue
            if best is None or (ep.outstanding, ep.sent) < (best.outstanding, best.sent):
                best = ep
        if best is not None:
            return best
        return min(ep.resting_until for ep in self.endpoints) - now

    async def acquire(self) -> Endpoint:
        while True:
            choice = self.pick()
            if isinstance(choice, Endpoint):
                choice.outstanding += 1
                choice.sent += 1
                return choice
            await asyncio.sleep(max(0.01, min(choice, 1.0)))

    def release(self, ep: Endpoint, failed: bool, retry_after: float | None = None) -> None:
        ep.outstanding -= 1
        now = self.clock()
        if retry_after:
            ep.resting_until = max(ep.resting_until, now + retry_after)
        if not failed:
            ep.failures = ep.rests = 0
            return
        ep.failures += 1
        others = any(other is not ep and other.resting_until <= now for other in self.endpoints)
        if ep.failures >= REST_AFTER and ep.resting_until <= now and others:
            ep.resting_until = now + min(REST_CAP, REST_FIRST * 2**ep.rests)
            ep.rests += 1
            ep.failures = REST_AFTER - 1  # back from the rest, one more failure rests it again

    def resting(self) -> int:
        now = self.clock()
        return sum(1 for ep in self.endpoints if ep.resting_until > now)
