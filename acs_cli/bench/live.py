"""The live display of a run on stderr (Rich, only when stderr is a terminal): progress against
the requests or the duration, in flight, completed, errors, request and token rates, and TTFT and
ITL p50/p99 so far. Off a terminal nothing is drawn; `final` prints one line."""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

from acs_cli.bench.metrics import percentile

if TYPE_CHECKING:
    from acs_cli.terminal import Terminal


def merge(snapshots: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several workers' progress as one."""
    out: dict[str, Any] = {"started": 0, "done": 0, "failed": 0, "output_tokens": 0, "ttft": [], "itl": []}
    for snap in snapshots:
        for key in ("started", "done", "failed", "output_tokens"):
            out[key] += snap[key]
        out["ttft"] += snap["ttft"]
        out["itl"] += snap["itl"]
    return out


def text(label: str, snap: dict[str, Any], elapsed: float, total: int | None, duration: float | None, rates: tuple[float, float]) -> str:
    ended = snap["done"] + snap["failed"]
    if total:
        goal = f"{ended}/{total} requests ({100 * ended / total:.0f}%)"
    elif duration:
        goal = f"{min(elapsed, duration):.0f}/{duration:g} s ({100 * min(1.0, elapsed / duration):.0f}%)"
    else:
        goal = f"{ended} requests"
    in_flight = snap["started"] - ended
    ttft = sorted(snap["ttft"])
    itl = sorted(snap["itl"])

    def ms(values: list[float], p: int) -> str:
        return f"{percentile(values, p) * 1000:.1f}" if values else "-"

    return (
        f"{label} · {goal} · {elapsed:.1f} s\n"
        f"in flight {in_flight} · completed {snap['done']} · errors {snap['failed']} · {rates[0]:.1f} req/s · {rates[1]:.0f} tok/s\n"
        f"TTFT p50 {ms(ttft, 50)} ms p99 {ms(ttft, 99)} ms · ITL p50 {ms(itl, 50)} ms p99 {ms(itl, 99)} ms"
    )


class Display:
    """One level's live view; `update` takes the merged progress, `close` removes the view."""

    def __init__(self, term: Terminal, label: str, total: int | None, duration: float | None) -> None:
        self.term = term
        self.label, self.total, self.duration = label, total, duration
        self.start = perf_counter()
        self._last = (self.start, 0, 0)
        self._rates = (0.0, 0.0)
        self.live: Any = None
        if term.stderr_tty and not term.dumb:
            from rich.live import Live

            self.live = Live(console=term.console("stderr"), auto_refresh=False, transient=True, redirect_stdout=False, redirect_stderr=False)
            self.live.start()

    @property
    def active(self) -> bool:
        return self.live is not None

    def update(self, snap: dict[str, Any]) -> None:
        if self.live is None:
            return
        from rich.text import Text

        now = perf_counter()
        t0, done0, toks0 = self._last
        if now - t0 >= 1.0:  # rates over the last second or so
            self._rates = ((snap["done"] - done0) / (now - t0), (snap["output_tokens"] - toks0) / (now - t0))
            self._last = (now, snap["done"], snap["output_tokens"])
        self.live.update(Text(text(self.label, snap, now - self.start, self.total, self.duration, self._rates)), refresh=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def final(self, summary: dict[str, Any]) -> None:
        """The one line a run leaves on stderr."""
        failed = f", {summary['failed']} failed" if summary["failed"] else ""
        stopped = f", {summary['interrupted']} interrupted" if summary["interrupted"] else ""
        self.term.message(
            f"acs bench: {self.label}: {summary['completed']} completed{failed}{stopped} in {summary['duration']:.1f} s"
            f" ({summary['request_throughput']:.2f} req/s, {summary['output_throughput']:.0f} output tok/s)"
        )
