"""--rpm and --tpm: token buckets that pace the requests a batch sends.

Each bucket refills continuously at its rate per minute and holds one second's worth (at least
one request), so a run starts gently instead of spending a minute's allowance in a burst. A
request is admitted when the bucket is not empty; a request bigger than the bucket (a long prompt
under a small --tpm) takes it into debt, which later requests wait out, so no request starves.
Tokens are estimated before sending (prompt characters / 4 + max_tokens x choices) and settled
against the usage the server reports afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, amount: float) -> float:
        """Seconds until `amount` may be taken (0: now)."""
        self._refill()
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= amount

    def give(self, amount: float) -> None:
        """Settle an estimate: a negative amount charges what was used beyond it."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)


class Limits:
    """Admission under --rpm (one per attempt) and --tpm (estimated tokens per attempt)."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.requests = TokenBucket(rpm, clock) if rpm else None
        self.tokens = TokenBucket(tpm, clock) if tpm else None
        self.sleep = sleep

    async def admit(self, tokens: int) -> None:
        if self.requests is None and self.tokens is None:
            return
        while True:
            wait = max(
                self.requests.wait(1) if self.requests is not None else 0.0,
                self.tokens.wait(tokens) if self.tokens is not None else 0.0,
            )
            if wait <= 0:
                break
            await self.sleep(min(wait, 1.0))
        if self.requests is not None:
            self.requests.take(1)
        if self.tokens is not None:
            self.tokens.take(tokens)

    def settle(self, estimated: int, used: int | None) -> None:
        if self.tokens is not None and used is not None:
            self.tokens.give(estimated - used)
