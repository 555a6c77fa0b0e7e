"""What a batch says while it runs (a live line on a terminal's stderr) and when it ends (one
summary line on stderr, terminal or not)."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acs_cli.batch.balance import Balancer
    from acs_cli.batch.runner import Tally
    from acs_cli.terminal import Terminal


def counted(counter: Counter[str]) -> str:
    """`http 500 ×2, timeout ×1`, the most frequent first (ties by name, so the line is the same
    whatever order the failures came in)."""
    ranked = sorted(counter.items(), key=lambda kc: (-kc[1], kc[0]))
    return ", ".join(f"{kind} ×{count}" for kind, count in ranked[:4]) + (", …" if len(counter) > 4 else "")


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def status_text(tally: Tally, resting: int = 0, endpoints: int = 1) -> str:
    """in flight, failures by kind, retries, tokens/s, ETA."""
    elapsed = max(1e-6, time.monotonic() - tally.started)
    parts = [f"{tally.in_flight} in flight"]
    if tally.failed:
        parts.append(f"{tally.failed} failed ({counted(tally.failures)})")
    if tally.retries:
        parts.append(f"retried {sum(tally.retries.values())} ({counted(tally.retries)})")
    parts.append(f"{tally.completion_tokens / elapsed:,.0f} tok/s")
    if tally.finished and tally.total > tally.finished:
        parts.append(f"ETA {duration((tally.total - tally.finished) * elapsed / tally.finished)}")
    if resting:
        parts.append(f"{resting} of {endpoints} endpoints resting")
    return " · ".join(parts)


class Progress:
    """The live line (Rich, on stderr), only when stderr is a terminal that can redraw."""

    def __init__(self, term: Terminal, tally: Tally, balancer: Balancer) -> None:
        self.tally = tally
        self.balancer = balancer
        self.bar: Any = None
        if term.stderr_tty and not term.dumb:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                console=term.console("stderr"),
                transient=True,
                auto_refresh=False,
            )
            self.task = self.bar.add_task("batch", total=max(1, tally.total), status="")

    def start(self) -> None:
        if self.bar is not None:
            self.bar.start()

    def tick(self) -> None:
        if self.bar is None:
            return
        text = status_text(self.tally, self.balancer.resting(), len(self.balancer.endpoints))
        self.bar.update(self.task, completed=self.tally.finished, total=max(1, self.tally.total), status=text)
        self.bar.refresh()

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def summary(tally: Tally, stopped_by: str | None = None) -> str:
    """The final line: done, failed (by kind), skipped as already done, tokens, wall time."""
    elapsed = time.monotonic() - tally.started
    failed = f"{tally.failed:,} failed" + (f" ({counted(tally.failures)})" if tally.failed else "")
    rate = f", {tally.finished / elapsed:,.1f} requests/s" if elapsed > 0 and tally.finished else ""
    tokens = tally.prompt_tokens + tally.completion_tokens
    text = (
        f"acs batch: {tally.done:,} done, {failed}, {tally.skipped:,} skipped as already done;"
        f" {tokens:,} tokens ({tally.prompt_tokens:,} prompt, {tally.completion_tokens:,} completion);"
        f" {duration(elapsed)}{rate}"
    )
    if tally.retries:
        text += f"; {sum(tally.retries.values()):,} retries ({counted(tally.retries)})"
    if stopped_by:
        unsent = tally.total - tally.finished
        text += f"; {stopped_by}: {unsent:,} not finished, run the same command to resume"
    return text
