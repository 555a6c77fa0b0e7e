"""The one factory: the output options and the terminal decide which sink a run writes to.

    --raw                         RawSink (the bytes; it never sees records)
    --json / --jsonl              JsonSink / JsonlSink over Summary over Discard
    --logprobs on a colour tty    Summary over (LogprobsTable over) LogprobTerminalSink
    stdout a terminal             Summary over (LogprobsTable over) TerminalSink
    otherwise                     Summary over (LogprobsTable over) PipeSink

With `chat`, the same stack with the chat classes (acs_cli.sinks.chat, acs_cli.sinks.chat_json):
a text sink that also shows reasoning and tool calls, the chat usage line and JSON outputs.

Modules are imported as needed: the plain pipe path loads no Rich and no JSON output code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from acs_cli.errors import UsageError
from acs_cli.sinks import Discard, Sink
from acs_cli.sinks.summary import Summary
from acs_cli.sinks.text import ChoiceOrder, PipeSink

if TYPE_CHECKING:
    from acs_cli.options import OutputOptions
    from acs_cli.terminal import Terminal


def check_output_flags(out: OutputOptions, choices: int | None = None) -> None:
    """--json, --jsonl and --raw exclude each other; --choice must name a choice asked for (once
    `choices`, the number the request asks for, is known)."""
    chosen = [flag for flag, on in (("--json", out.json), ("--jsonl", out.jsonl), ("--raw", out.raw)) if on]
    if len(chosen) > 1:
        raise UsageError(f"{chosen[0]} and {chosen[1]} cannot be used together", "choose one output: the text, --json, --jsonl or --raw")
    if out.raw and (out.stats or out.logprobs_table):
        flag = "--stats" if out.stats else "--logprobs-table"
        raise UsageError(
            f"{flag} cannot be used with --raw, which prints the wire only",
            f"drop --raw, or capture and replay: acs complete --raw … > FILE && acs replay FILE {flag}",
        )
    if choices is not None and out.choice is not None and out.choice >= choices:
        asked = "1 choice (index 0)" if choices == 1 else f"{choices} choices (indexes 0 to {choices - 1})"
        raise UsageError(f"--choice {out.choice} is not among the {asked} asked for", "give --choice an index below --n, or raise --n")


def make_sink(
    out: OutputOptions,
    term: Terminal,
    *,
    choices: int,
    logprobs: bool,
    source: str = "server",
    usage_asked: bool = True,
    chat: bool = False,
    reasoning: str | None = None,
) -> Sink:
    """The sink for these options on this terminal (see the module docstring); `chat` for a chat
    stream, whose reasoning is shown as `reasoning` says (show, hide, only; None: the default)."""
    if out.raw:
        from acs_cli.sinks.raw import RawSink

        return RawSink(term)
    order = ChoiceOrder(expected=choices, only=out.choice)
    text: PipeSink | None = None
    base: Sink
    if out.json or out.jsonl:
        base = Discard()
    elif chat:
        from acs_cli.sinks.chat import chat_text_sink

        base = text = chat_text_sink(term, choices, out.choice, logprobs=logprobs, reasoning=reasoning)
    elif logprobs and term.stdout_colour:
        from acs_cli.sinks.logprobs import LogprobTerminalSink

        base = text = LogprobTerminalSink(term, order)
    elif term.stdout_tty:
        from acs_cli.sinks.terminal import TerminalSink

        base = text = TerminalSink(term, order)
    else:
        base = text = PipeSink(term, order)
    if out.logprobs_table:
        from acs_cli.sinks.logprobs import LogprobsTable

        base = LogprobsTable(base, term, out.choice, text)
    summary: type[Summary] = Summary
    if chat:
        from acs_cli.sinks.chat import ChatSummary

        summary = ChatSummary
    sink: Sink = summary(base, term, quiet=out.quiet, stats=out.stats, text=text, source=source, usage_asked=usage_asked, logprobs_asked=logprobs)
    if out.json or out.jsonl:
        from acs_cli.sinks.json import JsonlSink, JsonSink

        json_sink, jsonl_sink = JsonSink, JsonlSink
        if chat:
            from acs_cli.sinks.chat_json import ChatJsonlSink, ChatJsonSink

            json_sink, jsonl_sink = ChatJsonSink, ChatJsonlSink
        if out.json:
            return json_sink(sink, term, out.choice, asked_logprobs=logprobs)
        return jsonl_sink(sink, term, out.choice)
    return sink
