"""The logprobs view: tokens coloured by probability on a terminal, and --logprobs-table.

Each frame's `logprobs` holds parallel arrays, one entry per token of that frame: `tokens`,
`token_logprobs`, `top_logprobs` (entries may be null: with echo the prompt's first token has no
logprob), `text_offset`. vLLM clamps -inf to -9999.0. Token text is model text: on a terminal it is
shown through render.visible_pieces, so it cannot drive the terminal.
"""

from __future__ import annotations

import json
import math
from typing import Any

from acs_cli.render import TerminalSink, make_visible, visible_pieces
from acs_cli.sse import CompletionStream
from acs_cli.terminal import Terminal

# (lowest probability, Rich style, SGR code, legend label), best first
BANDS = (
    (0.9, "green", 32, "≥90%"),
    (0.5, "yellow", 33, "≥50%"),
    (0.1, "magenta", 35, "≥10%"),
    (0.0, "red", 31, "<10%"),
)
CLAMP = -9999.0  # vLLM's stand-in for -inf


def probability(logprob: Any) -> float | None:
    """exp(logprob), 0 for vLLM's -9999 clamp, None when unknown (null or not a number)."""
    if isinstance(logprob, bool) or not isinstance(logprob, (int, float)) or math.isnan(logprob):
        return None
    if logprob <= CLAMP:
        return 0.0
    return min(1.0, math.exp(logprob))


def band_style(logprob: Any) -> str | None:
    p = probability(logprob)
    if p is None:
        return None
    for lowest, style, _, _ in BANDS:
        if p >= lowest:
            return style
    return BANDS[-1][1]


def percent(p: float | None) -> str:
    return "?" if p is None else f"{100 * p:.1f}%"


def format_logprob(logprob: Any) -> str:
    if probability(logprob) is None:
        return "?"
    return "-inf" if logprob <= CLAMP else f"{logprob:.4f}"


def quoted(token: Any) -> str:
    """A token as a JSON string (its spaces and newlines visible), safe for a terminal."""
    return make_visible(json.dumps(token if isinstance(token, str) else str(token), ensure_ascii=False))


def frame_logprobs(choices: list[Any], deltas: list[tuple[int, str]]) -> list[dict[str, Any] | None]:
    """For each text delta a frame produced, the `logprobs` of the choice it came from (or None).

    The deltas of a frame are its choices' texts in order, the same string objects, so they are
    paired by identity."""
    out: list[dict[str, Any] | None] = []
    pending = iter([c for c in choices if type(c) is dict])
    for _, text in deltas:
        found = None
        for c in pending:
            if c.get("text") is text:
                logprobs = c.get("logprobs")
                found = logprobs if isinstance(logprobs, dict) else None
                break
        out.append(found)
    return out


class Scored(str):
    """Text of one frame, with the (token, logprob) pairs that spell it."""

    scores: list[tuple[str, Any]]


def scored(text: str, logprobs: dict[str, Any] | None) -> str:
    if not logprobs:
        return text
    tokens = logprobs.get("tokens")
    values = logprobs.get("token_logprobs")
    if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values):
        return text
    if not all(isinstance(t, str) for t in tokens) or "".join(tokens) != text:
        return text  # the tokens do not spell the text (byte tokens, a server's own shape): uncoloured
    out = Scored(text)
    out.scores = list(zip(tokens, values))
    return out


class ScoredStream(CompletionStream):
    """A CompletionStream whose text deltas carry their tokens' logprobs (for the coloured view)."""

    def _frame(self, frame: dict[str, Any], deltas: list[tuple[int, str]]) -> None:
        start = len(deltas)
        super()._frame(frame, deltas)
        choices = frame.get("choices")
        if len(deltas) > start and type(choices) is list:
            new = deltas[start:]
            for k, ((index, text), logprobs) in enumerate(zip(new, frame_logprobs(choices, new))):
                if logprobs is not None:
                    deltas[start + k] = (index, scored(text, logprobs))


class LogprobTerminalSink(TerminalSink):
    """The terminal sink with each token coloured by its probability; a legend on stderr first."""

    def __init__(self, term: Terminal, order: Any) -> None:
        super().__init__(term, order, colour=True)

    def start(self) -> None:
        if self.term.colour:  # a legend in colour, on stderr, when stderr shows colour too
            legend(self.term)
        super().start()

    def _emit(self, pieces: list[tuple[int, str]]) -> None:
        from rich.text import Text

        self.stop_spinner()
        out = Text()
        for text, kind in self._layout(pieces):
            if kind is None:
                scores = getattr(text, "scores", None)
                if scores is None:
                    self._append_visible(out, [text])
                    continue
                for token, logprob in scores:
                    style = band_style(logprob)
                    for piece, escape in visible_pieces(token):
                        out.append(piece, style=" ".join(filter(None, (style, "reverse" if escape else None))) or None)
            elif kind == "label":
                out.append(text, style="bold cyan")
            elif self.wrote or out:
                out.append(text)
        self._print(out)


def legend(term: Terminal) -> None:
    """One line on stderr: what the colours mean."""
    bands = "  ".join(f"\x1b[{sgr}m■ {label}\x1b[0m" for _, _, sgr, label in BANDS)
    line = f"\x1b[2mtoken probability:\x1b[0m {bands}  \x1b[2muncoloured: unknown\x1b[0m\n"
    try:
        term.stderr.write(line)
        term.stderr.flush()
    except (OSError, ValueError):
        pass


# ---------------------------------------------------------------------------------------- table


def rows(logprobs: dict[str, list[Any]]) -> list[tuple[int, Any, Any, list[tuple[Any, Any]]]]:
    """(position, token, logprob, alternatives best first) for each token of a choice."""
    tokens = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or []
    out = []
    for i, token in enumerate(tokens):
        value = values[i] if i < len(values) else None
        top = tops[i] if i < len(tops) else None
        out.append((i, token, value, _alternatives(token, top)))
    return out


def _alternatives(token: Any, top: Any) -> list[tuple[Any, Any]]:
    pairs: list[tuple[Any, Any]] = []
    if isinstance(top, dict):
        pairs = list(top.items())
    elif isinstance(top, list):  # llama-server's shape: [{"token": ..., "logprob": ...}, ...]
        pairs = [(t.get("token"), t.get("logprob")) for t in top if isinstance(t, dict)]
    pairs = [(t, v) for t, v in pairs if t != token]
    pairs.sort(key=lambda tv: probability(tv[1]) or 0.0, reverse=True)
    return pairs


def _alternatives_text(pairs: list[tuple[Any, Any]]) -> str:
    return ", ".join(f"{quoted(t)} {percent(probability(v))}" for t, v in pairs)


def print_table(term: Terminal, stream: CompletionStream, only: int | None = None) -> None:
    """Every token with its probability and the top alternatives, on stderr: a table on a
    terminal, tab-separated lines (with a header) otherwise."""
    choices = [c for c in stream.ordered() if only is None or c.index == only]
    with_logprobs = [c for c in choices if c.logprobs and c.logprobs.get("tokens")]
    if not with_logprobs:
        term.message("logprobs: the server sent none", "warn")
        return
    if term.stderr_tty:
        _rich_table(term, with_logprobs, several=len(choices) > 1)
        return
    lines = ["choice\tposition\ttoken\tprobability\tlogprob\talternatives"]
    for c in with_logprobs:
        assert c.logprobs is not None
        for i, token, value, alternatives in rows(c.logprobs):
            lines.append(
                f"{c.index}\t{i}\t{quoted(token)}\t{percent(probability(value))}\t{format_logprob(value)}\t{_alternatives_text(alternatives)}"
            )
    try:
        term.stderr.write("\n".join(lines) + "\n")
        term.stderr.flush()
    except (OSError, ValueError):
        pass


def _rich_table(term: Terminal, choices: list[Any], several: bool) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=term.stderr, no_color=not term.colour, highlight=False, markup=False, emoji=False)
    for c in choices:
        table = Table(box=None, header_style="bold" if term.colour else None, pad_edge=False, title=f"choice {c.index}" if several else None)
        table.add_column("#", justify="right")
        table.add_column("token")
        table.add_column("probability", justify="right")
        table.add_column("logprob", justify="right")
        table.add_column("alternatives")
        for i, token, value, alternatives in rows(c.logprobs):
            table.add_row(
                str(i),
                Text(quoted(token)),
                Text(percent(probability(value)), style=band_style(value) or ""),
                format_logprob(value),
                Text(_alternatives_text(alternatives)),
            )
        console.print(table)

