"""Chat answers as text: the answer, the reasoning and the tool calls on a terminal or in a pipe.

A `ChatLayout` turns a chat stream's records into what the text sinks draw: the answer's Deltas
as they are, and `ChatPiece`s (Delta subclasses, ordered per choice by the same ChoiceOrder) for
reasoning, tool-call arguments, and the labels and separators that set them apart. Then the pipe
sink writes their text and the terminal sink draws each kind in its style. What is shown:

- the answer, except with `--reasoning only`;
- reasoning: on a terminal by default (dimmed, between `Thinking…` and `…done thinking.`), in a
  pipe only with `--reasoning show` (then a blank line sets it apart) or `only`; never with `hide`;
- tool calls: on a terminal as they stream (`→ name(arguments)`); in a pipe each finished call
  is one line on stderr, so stdout stays the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acs_cli.records import Delta, Finish, Reasoning, ToolCallDelta
from acs_cli.sinks.logprobs import LogprobTerminalSink
from acs_cli.sinks.summary import Summary, stats_text
from acs_cli.sinks.terminal import TerminalSink
from acs_cli.sinks.text import ChoiceOrder, PipeSink
from acs_cli.text import make_visible, visible_pieces

if TYPE_CHECKING:
    from acs_cli.outcome import Outcome
    from acs_cli.records import Record
    from acs_cli.terminal import Terminal

THINKING = "Thinking…\n"
DONE_THINKING = "…done thinking.\n"
# on a terminal: Rich styles per kind of piece (the answer keeps the plain or logprobs style)
STYLES = {"reasoning": "dim italic", "label": "dim", "call": "bold magenta", "tool": "cyan", "sep": None}


class ChatPiece(Delta):
    """Chat text drawn apart from the answer: `reasoning`, a tool call's arguments (`tool`), the
    heading of a call (`call`), a label (`label`) or a separator (`sep`)."""

    __slots__ = ("kind",)

    def __init__(self, index: int, text: str, kind: str) -> None:
        super().__init__(index, text, None)
        self.kind = kind


class ChatOrder(ChoiceOrder):
    piece_type = ChatPiece


class ChatLayout:
    """Chat records to the pieces the text sinks draw (see the module docstring). `labels` (a
    terminal): Thinking… labels and tool calls inline; else tool calls are kept for stderr."""

    def __init__(self, reasoning: str | None, labels: bool) -> None:
        self.labels = labels
        self.answer = reasoning != "only"
        self.reasoning = reasoning in ("show", "only") or (reasoning is None and labels)
        self.last: dict[int, str] = {}  # per choice: the kind last shown (answer, reasoning, tool)
        self.open: dict[int, bool] = {}  # per choice: whether what it showed ends mid-line
        self.calls: dict[tuple[int, int], list[Any]] = {}  # (choice, call) -> [name, parts] for stderr (seen, on a terminal)
        self.drawn: dict[int, int] = {}  # per choice: the call whose arguments are being drawn
        self.ended: list[tuple[int, str | None, str]] = []  # finished calls to print on stderr

    def map(self, records: list[Record]) -> list[Record]:
        answer, last = self.answer, self.last
        inline = self.reasoning or self.labels  # else the answer alone: no separators to place
        if answer and not inline:
            for r in records:
                if type(r) is not Delta:
                    break
            else:
                return records  # answer text alone, shown as it is (what the loop below would give)
        out: list[Record] = []
        for r in records:
            kind = type(r)
            if kind is Delta:
                text = r.text  # type: ignore[union-attr]
                if text:
                    if not answer:
                        continue
                    if inline:
                        index = r.index  # type: ignore[union-attr]
                        if last.get(index) != "answer":
                            self._switch(index, "answer", out)
                        self.open[index] = text[-1] != "\n"
                out.append(r)
            elif kind is Reasoning:
                if self.reasoning:
                    self._switch(r.index, "reasoning", out)  # type: ignore[union-attr]
                    self._add(out, r.index, r.text, "reasoning")  # type: ignore[union-attr]
            elif kind is ToolCallDelta:
                self._tool_call(r, out)  # type: ignore[arg-type]
            else:
                if kind is Finish:
                    self._finish(r.index, out)  # type: ignore[union-attr]
                out.append(r)
        return out

    def _add(self, out: list[Record], index: int, text: str, kind: str) -> None:
        out.append(ChatPiece(index, text, kind))
        self.open[index] = text[-1] != "\n"

    def _newline(self, out: list[Record], index: int) -> None:
        if self.open.get(index):
            self._add(out, index, "\n", "sep")

    def _switch(self, index: int, to: str, out: list[Record]) -> None:
        """Set a change of kind apart: close a tool call, end the reasoning, open the next."""
        last = self.last.get(index)
        if last == to:
            return
        self.last[index] = to
        if last == "tool":
            self._add(out, index, ")\n", "call")
        elif last == "reasoning":
            self._newline(out, index)
            if self.labels:
                self._add(out, index, DONE_THINKING, "label")
            self._add(out, index, "\n", "sep")
        elif last == "answer":
            self._newline(out, index)
            if to == "reasoning":
                self._add(out, index, "\n", "sep")
        if to == "reasoning" and self.labels:
            self._add(out, index, THINKING, "label")

    def _tool_call(self, r: ToolCallDelta, out: list[Record]) -> None:
        if not self.labels:
            kept = self.calls.get((r.index, r.call))
            if kept is None:
                kept = self.calls[(r.index, r.call)] = [r.name, []]
            kept[0] = kept[0] or r.name
            kept[1].append(r.arguments)
            return
        if self.last.get(r.index) != "tool" or self.drawn.get(r.index) != r.call:
            # a new call (or, from a server that interleaves calls, one seen before): its heading
            resumed = (r.index, r.call) in self.calls
            self.calls[(r.index, r.call)] = []
            if self.last.get(r.index) == "tool":
                self.last[r.index] = "answer"  # close the call drawn so far
                self._add(out, r.index, ")\n", "call")
            self._switch(r.index, "tool", out)
            self._add(out, r.index, f"→ {r.name or '?'}(" + ("…" if resumed else ""), "call")
            self.drawn[r.index] = r.call
        if r.arguments:
            self._add(out, r.index, r.arguments, "tool")

    def _finish(self, index: int, out: list[Record]) -> None:
        if self.last.get(index) == "tool":
            self.last[index] = "answer"
            self._add(out, index, ")\n", "call")
        if not self.labels:
            for key in sorted(k for k in self.calls if k[0] == index):
                name, parts = self.calls.pop(key)
                self.ended.append((index, name, "".join(parts)))

    def unfinished(self) -> list[tuple[int, str | None, str]]:
        """Calls kept for stderr whose choice never finished (the stream was cut)."""
        out = [(key[0], name, "".join(parts)) for key, (name, parts) in sorted(self.calls.items())] if not self.labels else []
        self.calls.clear()
        return out


class ChatText:
    """The chat half of a text sink (mixed into PipeSink, TerminalSink, LogprobTerminalSink):
    records through the layout, tool calls kept for stderr written there, pieces styled."""

    term: Terminal
    spinner: Any

    def __init__(self, term: Terminal, order: ChoiceOrder, layout: ChatLayout) -> None:
        self.layout = layout
        self.several = order.expected > 1
        super().__init__(term, order)  # type: ignore[call-arg]

    def write(self, records: list[Record]) -> None:
        pieces = self.layout.map(records)
        if getattr(self, "spinner", None) is not None and not self.layout.reasoning and any(type(r) is Reasoning for r in records):
            self.spinner.say("thinking (reasoning hidden)…")
        super().write(pieces)  # type: ignore[misc]
        if self.layout.ended:
            self._calls_to_stderr(self.layout.ended)
            self.layout.ended = []

    def end(self, outcome: Outcome) -> None:
        super().end(outcome)  # type: ignore[misc]
        if not outcome.stdout_closed:
            self._calls_to_stderr(self.layout.unfinished(), " (incomplete)")

    def _calls_to_stderr(self, calls: list[tuple[int, str | None, str]], note: str = "") -> None:
        for index, name, arguments in calls:
            where = f"choice {index}: " if self.several else ""
            self.term.message(make_visible(f"{where}tool call {name or '?'}({arguments}){note}"))

    def append_text(self, out: Any, run: list[Delta]) -> None:
        """On a terminal: the answer as the base draws it, the other pieces in their style."""
        answer: list[Delta] = []
        same: list[str] = []  # consecutive pieces of one kind, drawn as one span
        kind = None
        for d in run:
            if type(d) is ChatPiece and d.kind == kind:
                same.append(d.text)
                continue
            if same:
                self._styled(out, "".join(same), kind)  # type: ignore[arg-type]
                same, kind = [], None
            if type(d) is not ChatPiece:
                answer.append(d)
                continue
            if answer:
                super().append_text(out, answer)  # type: ignore[misc]
                answer = []
            same, kind = [d.text], d.kind
        if same:
            self._styled(out, "".join(same), kind)  # type: ignore[arg-type]
        if answer:
            super().append_text(out, answer)  # type: ignore[misc]

    @staticmethod
    def _styled(out: Any, text: str, kind: str) -> None:
        style = STYLES.get(kind)
        for piece, escape in visible_pieces(text):
            out.append(piece, style="reverse" if escape else style)


class ChatPipeSink(ChatText, PipeSink):
    pass


class ChatTerminalSink(ChatText, TerminalSink):
    pass


class ChatLogprobTerminalSink(ChatText, LogprobTerminalSink):
    pass


def chat_text_sink(term: Terminal, choices: int, only: int | None, *, logprobs: bool, reasoning: str | None) -> PipeSink:
    """The text sink for a chat stream on this terminal (pipe, terminal, or the logprobs view)."""
    order = ChatOrder(expected=choices, only=only)
    layout = ChatLayout(reasoning, labels=term.stdout_tty)
    if logprobs and term.stdout_colour:
        return ChatLogprobTerminalSink(term, order, layout)
    if term.stdout_tty:
        return ChatTerminalSink(term, order, layout)
    return ChatPipeSink(term, order, layout)


class ChatSummary(Summary):
    """The usage line; with --stats, the time to the first reasoning and to the first answer
    apart when the model reasoned."""

    def stats_of(self, outcome: Outcome) -> str:
        figures = chat_figures(outcome)
        text = stats_text(figures)
        if figures["first_reasoning_s"] is None:
            return text
        answer = figures["first_answer_s"]
        head = f" · first reasoning {figures['first_reasoning_s']:.2f} s · first answer " + ("none" if answer is None else f"{answer:.2f} s")
        return head + " · " + text.split(" · ", 2)[2]  # the speed and total after "first token"


def chat_figures(outcome: Outcome) -> dict[str, Any]:
    """The timings of --json/--jsonl/--stats plus, for chat, `first_reasoning_s` and
    `first_answer_s` (from sending the request); `ttft_s` is the first token of any kind."""
    figures = outcome.figures()
    timeline = outcome.timeline
    t0 = timeline.sent
    for key, when in (("first_reasoning_s", timeline.first_reasoning), ("first_answer_s", timeline.first_answer)):
        figures[key] = None if when is None or t0 is None else round(max(0.0, when - t0), 4)
    return figures
