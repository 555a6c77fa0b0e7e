"""The usage line on stderr, with the --stats figures: composed here and nowhere else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acs_cli.records import Delta, token_count
from acs_cli.text import make_visible, shorten

if TYPE_CHECKING:
    from acs_cli.completion_state import ChoiceState
    from acs_cli.outcome import Outcome
    from acs_cli.records import Record
    from acs_cli.sinks import Sink
    from acs_cli.sinks.text import PipeSink
    from acs_cli.terminal import Terminal


class Summary:
    """Decorator: once the inner sink ended, the stream's notices and the usage line on stderr
    (`-q` drops the line, not the notices); with `stats`, the timing figures on it. It also says
    once when logprobs were asked for and none came."""

    def __init__(
        self,
        inner: Sink,
        term: Terminal,
        *,
        quiet: bool,
        stats: bool,
        text: PipeSink | None,
        source: str = "server",
        usage_asked: bool = True,
        logprobs_asked: bool = False,
    ) -> None:
        self.inner = inner
        self.term = term
        self.quiet = quiet
        self.stats = stats
        self.text = text  # the sink that writes text on stdout, if any
        self.source = source  # "server", or "capture" for a replay
        self.usage_asked = usage_asked
        self.logprobs_missing = logprobs_asked  # asked for, and none seen yet

    def begin(self) -> None:
        self.inner.begin()

    def write(self, records: list[Record]) -> None:
        if self.logprobs_missing:  # only until the first logprobs: no cost per token otherwise
            for r in records:
                if type(r) is Delta and r.logprobs is not None:
                    self.logprobs_missing = False
                    break
        self.inner.write(records)

    def end(self, outcome: Outcome) -> None:
        self.inner.end(outcome)
        if outcome.stdout_closed:
            return
        state = outcome.state
        notices = [make_visible(n) for n in state.notices] if state is not None else []
        if self.logprobs_missing and state is not None and state.choices:
            notices.append(f"logprobs: {'the capture holds' if self.source == 'capture' else 'the server sent'} none")
        usage = not self.quiet and (state is not None or outcome.interrupted)  # no stream read: the error says it all
        if self.text is not None and (notices or usage or outcome.error is not None):
            self.text.close_line()  # what follows on stderr starts a line of its own
        for notice in notices:
            self.term.message(notice, "warn")
        if not usage:
            return
        line = usage_line(outcome, source=self.source, usage_asked=self.usage_asked)
        if self.stats:
            line += self.stats_of(outcome)
        self.term.message(line, "dim")

    def stats_of(self, outcome: Outcome) -> str:
        """The --stats figures on the usage line (chat adds its reasoning and answer times)."""
        return stats_text(outcome.figures())


def usage_line(outcome: Outcome, *, source: str = "server", usage_asked: bool = True) -> str:
    """`9 prompt + 80 completion = 89 tokens · finish: length`, or what is known instead: no
    answer yet, usage not asked for, none in a capture, none from the server."""
    state = outcome.state
    usage = outcome.usage
    if usage:
        head = usage_figures(usage)
    elif state is None or not state.frames and not state.choices and outcome.interrupted:
        head = "usage: none (interrupted before any answer)"
    elif source == "capture":
        head = "usage: none in the capture"
    elif not usage_asked:
        head = "usage: none (not asked for: --no-usage)"
    elif outcome.interrupted and state.frames:
        head = f"{state.frames} frames received before the interrupt; the server reported no usage"
    else:
        head = "usage: the server reported none"
    finishes = _finishes(state.ordered()) if state is not None else ""
    tail = f" · finish: {make_visible(finishes)}" if finishes else ""
    if outcome.interrupted:
        tail += " · interrupted"
    return head + tail


def usage_figures(usage: dict[str, Any]) -> str:
    """`9 prompt + 80 completion = 89 tokens` from whatever the usage object holds."""
    prompt = token_count(usage.get("prompt_tokens"))
    completion = token_count(usage.get("completion_tokens"))
    total = token_count(usage.get("total_tokens"))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    parts = []
    if prompt is not None:
        parts.append(f"{prompt} prompt")
    if completion is not None:
        parts.append(f"{completion} completion")
    head = " + ".join(parts)
    if total is not None:
        return f"{head} = {total} tokens" if head else f"{total} tokens"
    return head + " tokens" if head else "usage: no token counts in what the server sent"


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


def _finishes(choices: list[ChoiceState]) -> str:
    if not choices:
        return ""
    if len(choices) == 1:
        return shorten(choices[0].finish_reason or "none", 80)
    shown = ", ".join(f"[{c.index}] {shorten(c.finish_reason or 'none', 40)}" for c in choices[:16])
    return shown + (f", … ({len(choices) - 16} more)" if len(choices) > 16 else "")


