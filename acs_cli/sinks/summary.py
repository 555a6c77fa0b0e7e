"""The usage line on stderr, with the --stats figures: composed here and nowhere else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acs_cli.text import make_visible

if TYPE_CHECKING:
    from acs_cli.completion_state import ChoiceState
    from acs_cli.outcome import Outcome
    from acs_cli.records import Record
    from acs_cli.sinks import Sink
    from acs_cli.sinks.text import PipeSink
    from acs_cli.terminal import Terminal


class Summary:
    """Decorator: once the inner sink ended, the stream's notices and the usage line on stderr
    (`-q` drops the line); with `stats`, the timing figures on it."""

    def __init__(
        self, inner: Sink, term: Terminal, *, quiet: bool, stats: bool, text: PipeSink | None, source: str = "server", usage_asked: bool = True
    ) -> None:
        self.inner = inner
        self.term = term
        self.quiet = quiet
        self.stats = stats
        self.text = text  # the sink that writes text on stdout, if any
        self.source = source  # "server", or "capture" for a replay
        self.usage_asked = usage_asked

    def begin(self) -> None:
        self.inner.begin()

    def write(self, records: list[Record]) -> None:
        self.inner.write(records)

    def end(self, outcome: Outcome) -> None:
        self.inner.end(outcome)
        if outcome.stdout_closed:
            return
        for notice in outcome.state.notices if outcome.state is not None else ():
            self.term.message(make_visible(notice), "warn")
        if self.quiet or (outcome.state is None and not outcome.interrupted):
            return  # no stream was read (the request failed): the error says it all
        line = usage_line(outcome, source=self.source, usage_asked=self.usage_asked)
        if self.stats:
            line += self.stats_of(outcome)
        if self.text is not None and self.text.open_line and self.term.stderr_tty and not self.term.stdout_tty:
            line = "\n" + line  # the text went elsewhere (a pipe, a file) without a final newline
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
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    total = _int(usage.get("total_tokens"))
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
    return head + " tokens"


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
        return choices[0].finish_reason or "none"
    return ", ".join(f"[{c.index}] {c.finish_reason or 'none'}" for c in choices)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
