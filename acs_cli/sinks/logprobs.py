"""The logprobs view: tokens coloured by probability on a terminal, and --logprobs-table.

Each frame's `logprobs` holds parallel arrays, one entry per token of that frame: `tokens`,
`token_logprobs`, `top_logprobs` (entries may be null: with echo the prompt's first token has no
logprob), `text_offset`. vLLM clamps -inf to -9999.0. Token text is model text: on a terminal it is
shown through acs_cli.text.visible_pieces, so it cannot drive the terminal.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from acs_cli.records import Delta
from acs_cli.sinks.terminal import TerminalSink
from acs_cli.sinks.text import ChoiceOrder, PipeSink
from acs_cli.text import make_visible, visible_pieces

if TYPE_CHECKING:
    from acs_cli.outcome import Outcome
    from acs_cli.records import Record
    from acs_cli.sinks import Sink
    from acs_cli.terminal import Terminal

# (lowest probability, Rich style, SGR code, legend label), best first
BANDS = (
    (0.9, "green", 32, "≥90%"),
    (0.5, "yellow", 33, "≥50%"),
    (0.1, "magenta", 35, "≥10%"),
    (0.0, "red", 31, "<10%"),
)
CLAMP = -9999.0  # vLLM's stand-in for -inf


def _number(logprob: Any) -> float | None:
    """A logprob as a float (±inf past a float's range), None when it is not a number at all."""
    kind = type(logprob)
    if kind is float:
        return None if logprob != logprob else logprob  # NaN: unknown
    if kind is int:
        try:
            return float(logprob)
        except OverflowError:  # an integer past 1e308
            return math.inf if logprob > 0 else -math.inf
    return None  # null, a string, a bool, nested garbage


def probability(logprob: Any) -> float | None:
    """exp(logprob): 0 for -inf and vLLM's -9999 clamp (and anything below it), at most 1 (a
    positive logprob is out of range: 100%); None when unknown (null, NaN, +inf, not a number)."""
    value = _number(logprob)
    if value is None or value == math.inf:
        return None
    if value <= CLAMP:
        return 0.0
    return 1.0 if value >= 0 else math.exp(value)


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
    value = _number(logprob)
    if value is None or probability(value) is None:
        return "?"
    if value <= CLAMP:
        return "-inf"
    return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4g}"


def quoted(token: Any) -> str:
    """A token as a JSON string (its spaces and newlines visible), safe for a terminal; `?` for
    a token that is not a string."""
    return make_visible(json.dumps(token, ensure_ascii=False)) if isinstance(token, str) else "?"


def scores(delta: Delta) -> list[tuple[str, Any]] | None:
    """The (token, logprob) pairs that spell the delta's text, or None when its logprobs do not
    (byte tokens, a server's own shape): such text stays uncoloured."""
    logprobs = delta.logprobs
    if not logprobs:
        return None
    tokens = logprobs.get("tokens")
    values = logprobs.get("token_logprobs")
    if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values):
        return None
    if not all(isinstance(t, str) for t in tokens) or "".join(tokens) != delta.text:
        return None
    return list(zip(tokens, values, strict=True))


class LogprobTerminalSink(TerminalSink):
    """The terminal sink with each token coloured by its probability; a legend on stderr first."""

    def __init__(self, term: Terminal, order: ChoiceOrder) -> None:
        super().__init__(term, order)

    def begin(self) -> None:
        if self.term.colour:  # a legend in colour, on stderr, when stderr shows colour too
            legend(self.term)
        super().begin()

    def append_text(self, out: Any, run: list[Delta]) -> None:
        plain: list[Delta] = []
        for delta in run:
            pairs = scores(delta)
            if pairs is None:
                plain.append(delta)
                continue
            if plain:
                super().append_text(out, plain)
                plain = []
            for token, logprob in pairs:
                style = band_style(logprob)
                for piece, escape in visible_pieces(token):
                    out.append(piece, style=" ".join(filter(None, (style, "reverse" if escape else None))) or None)
        if plain:
            super().append_text(out, plain)


def legend(term: Terminal) -> None:
    """One line on stderr: what the colours mean."""
    bands = "  ".join(f"\x1b[{sgr}m■ {label}\x1b[0m" for _, _, sgr, label in BANDS)
    line = f"\x1b[2mtoken probability:\x1b[0m {bands}  \x1b[2muncoloured: unknown\x1b[0m\n"
    try:
        term.stderr.write(line)
        term.stderr.flush()
    except (OSError, ValueError):
        pass


def merge_logprobs(kept: dict[int, dict[str, list[Any]]], delta: Delta) -> None:
    """Add a frame's logprobs to what is kept for its choice (the parallel arrays extended)."""
    logprobs = delta.logprobs
    if not isinstance(logprobs, dict):
        return
    into = kept.get(delta.index)
    if into is None:
        into = kept[delta.index] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    # the arrays are parallel, one entry per token: a frame whose arrays differ in length (or
    # lack one) is padded with null or cut to its tokens, so later tokens keep their own values
    parts = {key: logprobs.get(key) for key in into}
    tokens = parts["tokens"]
    count = len(tokens) if isinstance(tokens, list) else max((len(v) for v in parts.values() if isinstance(v, list)), default=0)
    for key, values in into.items():
        more = parts[key]
        more = more[:count] if isinstance(more, list) else []
        values.extend(more)
        if len(more) < count:
            values.extend([None] * (count - len(more)))


class LogprobsTable:
    """Decorator: after the text, every token with its probability and top alternatives, on stderr."""

    def __init__(self, inner: Sink, term: Terminal, only: int | None, text: PipeSink | None = None) -> None:
        self.inner = inner
        self.term = term
        self.only = only
        self.text = text  # the sink that writes text on stdout, if any
        self.kept: dict[int, dict[str, list[Any]]] = {}
        self.choices: set[int] = set()

    def begin(self) -> None:
        self.inner.begin()

    def write(self, records: list[Record]) -> None:
        for r in records:
            if type(r) is Delta:
                self.choices.add(r.index)
                if r.logprobs is not None:
                    merge_logprobs(self.kept, r)
        self.inner.write(records)

    def end(self, outcome: Outcome) -> None:
        self.inner.end(outcome)
        if outcome.stdout_closed:
            return
        shown = [i for i in sorted(self.choices) if self.only is None or i == self.only]
        if self.text is not None and any(self.kept.get(i, {}).get("tokens") for i in shown):
            self.text.close_line()  # the table starts on a line of its own
        print_table(self.term, self.kept, shown, several=len(shown) > 1)


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
    pairs = [(t, v) for t, v in pairs if not (isinstance(t, str) and t == token)]  # never compare nested garbage
    pairs.sort(key=lambda tv: probability(tv[1]) or 0.0, reverse=True)
    return pairs


def _alternatives_text(pairs: list[tuple[Any, Any]]) -> str:
    return ", ".join(f"{quoted(t)} {percent(probability(v))}" for t, v in pairs)


def print_table(term: Terminal, kept: dict[int, dict[str, list[Any]]], choices: list[int], several: bool = False) -> None:
    """Every token of these choices with its probability and the top alternatives, on stderr: a
    table on a terminal, tab-separated lines (with a header) otherwise. Nothing when no choice has
    logprobs (acs_cli.sinks.summary says so once)."""
    with_logprobs = [(i, kept[i]) for i in choices if i in kept and kept[i].get("tokens")]
    if not with_logprobs:
        return
    if term.stderr_tty:
        _rich_table(term, with_logprobs, several=several)
        return
    lines = ["choice\tposition\ttoken\tprobability\tlogprob\talternatives"]
    for index, logprobs in with_logprobs:
        for i, token, value, alternatives in rows(logprobs):
            lines.append(
                f"{index}\t{i}\t{quoted(token)}\t{percent(probability(value))}\t{format_logprob(value)}\t{_alternatives_text(alternatives)}"
            )
    try:
        term.stderr.write("\n".join(lines) + "\n")
        term.stderr.flush()
    except (OSError, ValueError):
        pass


def _rich_table(term: Terminal, choices: list[tuple[int, dict[str, list[Any]]]], several: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    console = term.console("stderr")
    for index, logprobs in choices:
        table = Table(box=None, header_style="bold" if term.colour else None, pad_edge=False, title=f"choice {index}" if several else None)
        table.add_column("#", justify="right")
        table.add_column("token")
        table.add_column("probability", justify="right")
        table.add_column("logprob", justify="right")
        table.add_column("alternatives")
        for i, token, value, alternatives in rows(logprobs):
            table.add_row(
                str(i),
                Text(quoted(token)),
                Text(percent(probability(value)), style=band_style(value) or ""),
                format_logprob(value),
                Text(_alternatives_text(alternatives)),
            )
        try:
            console.print(table)
        except (OSError, ValueError):  # a closed or full stderr is never a failure
            return

