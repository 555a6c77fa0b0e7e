"""The sink around the text sink when --json, --jsonl, --stats or a logprobs view is asked for.

It times the stream (the request sent, the first text, the end: one clock read per network read,
never per frame), prints the logprobs table after the text, adds the figures to the usage line,
and hands the end of the run (success, failure or Ctrl-C) to the JSON sinks. None of this is on
the default path: `run._output` builds it only when one of those flags is given.
"""

from __future__ import annotations

import time
from typing import Any

from acs_cli.sse import CompletionStream
from acs_cli.terminal import Terminal


def extended_output(term: Terminal, opts: Any) -> tuple[TimedSink, CompletionStream]:
    """The (sink, stream) pair for the flags in opts (a run.CompleteOptions)."""
    out = opts.output
    asked = opts.request.logprobs is not None
    stream: CompletionStream
    inner: Any
    if out.json:
        from acs_cli.jsonout import JsonSink

        stream = CompletionStream(keep_text=True)
        inner = JsonSink(term, opts)
    elif out.jsonl:
        from acs_cli.jsonout import EventStream, JsonlSink

        stream = EventStream(only=out.choice)
        inner = JsonlSink(term, opts)
    elif asked and term.stdout_colour:
        from acs_cli.logprobs import LogprobTerminalSink, ScoredStream
        from acs_cli.render import ChoiceOrder

        stream = ScoredStream()
        inner = LogprobTerminalSink(term, ChoiceOrder(expected=opts.request.n or 1, only=out.choice))
    else:
        from acs_cli.run import _text_sink

        stream = CompletionStream()
        inner = _text_sink(term, opts)
    return TimedSink(inner, term, opts), stream


class TimedSink:
    """Wraps a sink: the same calls, plus the clock and the end-of-run hooks run.py calls."""

    def __init__(self, inner: Any, term: Terminal, opts: Any) -> None:
        self.inner = inner
        self.term = term
        self.opts = opts
        self.t0 = time.monotonic()
        self.first: float | None = None  # when the first text arrived
        self.end: float | None = None
        self.text_deltas = 0  # frames (per choice) that carried text: the estimate of tokens

    # ------------------------------------------------------------------ the sink interface
    def start(self) -> None:
        self.t0 = time.monotonic()
        self.inner.start()

    def sent(self, model: str | None = None) -> None:
        """The request is about to be sent: the time to first token counts from here."""
        self.t0 = time.monotonic()
        if hasattr(self.inner, "model"):
            self.inner.model = model

    def write(self, deltas: list[tuple[int, str]], stream: CompletionStream) -> None:
        if deltas:
            if self.first is None:
                self.first = time.monotonic()
            self.text_deltas += len(deltas)
        self.inner.write(deltas, stream)

    def finish(self, stream: CompletionStream) -> None:
        self._stop()
        self.inner.finish(stream)
        if self.opts.output.logprobs_table:
            from acs_cli.logprobs import print_table

            print_table(self.term, stream, only=self.opts.output.choice)

    def close(self) -> None:
        self.inner.close()

    # ------------------------------------------------------------------ end of run
    def summary(self, stream: CompletionStream) -> str:
        """What --stats adds to the usage line."""
        if not self.opts.output.stats:
            return ""
        return stats_text(self.timings(stream))

    def conclude(self, stream: CompletionStream, error: BaseException | None, interrupted: bool) -> None:
        self._stop()
        report = getattr(self.inner, "report", None)  # the JSON sinks print their end here
        if report is not None:
            report(stream, error, interrupted, self.timings(stream))

    def _stop(self) -> None:
        if self.end is None:
            self.end = time.monotonic()

    def timings(self, stream: CompletionStream) -> dict[str, Any]:
        end = self.end if self.end is not None else time.monotonic()
        return timings(self.t0, self.first, end, stream.usage, self.text_deltas)


def timings(t0: float, first: float | None, end: float, usage: dict[str, Any] | None, text_deltas: int) -> dict[str, Any]:
    """ttft_s (request sent to first text), total_s, decode_tokens_per_s = (completion tokens - 1)
    / (total - ttft); from the server's usage when it sent one, else estimated from the frames that
    carried text (`estimated: true`)."""
    total = max(0.0, end - t0)
    ttft = None if first is None else max(0.0, first - t0)
    completion = usage.get("completion_tokens") if isinstance(usage, dict) else None
    estimated = not (isinstance(completion, int) and not isinstance(completion, bool))
    tokens = text_deltas if estimated else completion
    rate = None
    if ttft is not None and tokens is not None and tokens > 1 and total - ttft > 0:
        rate = round((tokens - 1) / (total - ttft), 1)
    return {
        "ttft_s": None if ttft is None else round(ttft, 4),
        "total_s": round(total, 4),
        "decode_tokens_per_s": rate,
        "tokens": tokens,
        "estimated": estimated,
    }


def stats_text(t: dict[str, Any]) -> str:
    """` · first token 0.21 s · 312.4 tokens/s · total 0.47 s`; `~` marks figures estimated from
    the frames when the server sent no usage."""
    parts = ["first token " + (f"{t['ttft_s']:.2f} s" if t["ttft_s"] is not None else "none")]
    if t["decode_tokens_per_s"] is not None:
        if t["estimated"]:
            parts.append(f"~{t['decode_tokens_per_s']:.1f} tokens/s (~{t['tokens']} tokens)")
        else:
            parts.append(f"{t['decode_tokens_per_s']:.1f} tokens/s")
    parts.append(f"total {t['total_s']:.2f} s")
    return " · " + " · ".join(parts)
