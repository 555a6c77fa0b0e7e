"""The completion text on stdout: exactly the text in a pipe, choices in index order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from acs_cli.records import Delta, Finish

if TYPE_CHECKING:
    from acs_cli.outcome import Outcome
    from acs_cli.records import Record
    from acs_cli.terminal import Terminal


class ChoiceOrder:
    """Puts the choices of a stream in index order while they arrive interleaved.

    The lowest unfinished choice streams live; text of later choices is held until every choice
    before it has finished, then released, so the output is each choice's text in index order.
    A piece with empty text marks where a choice's section starts. With one choice asked for,
    that choice streams live whatever its index (a server may number it other than 0).
    """

    piece_type: type | None = None  # a Delta subclass routed like Delta (chat's display pieces)

    def __init__(self, expected: int = 1, only: int | None = None) -> None:
        self.expected = max(1, expected)
        self.only = only
        self.live = 0 if only is None else only
        self.adopt = only is None and self.expected == 1  # the first choice seen becomes live
        self.start = self.live  # the first live choice (after adoption)
        self.held: dict[int, list[Delta]] = {}
        self.seen: set[int] = set()
        self.finished: set[int] = set()
        self.passed: set[int] = set()  # choices that were live and are done with
        self.multi = only is None and self.expected > 1
        # the indexes that keep a place even before they appear: 0..n-1 for several choices; one
        # choice is whichever index it comes with
        self.asked = set(range(self.expected)) if self.expected > 1 else set()

    def route(self, records: list[Record]) -> list[Delta]:
        """The deltas that may be written now, in order; a delta with empty text marks where a
        choice's section starts."""
        out: list[Delta] = []
        extra = self.piece_type
        if self.only is not None:
            only = self.only
            return [r for r in records if (type(r) is Delta or type(r) is extra) and r.index == only and r.text]  # type: ignore[union-attr, misc]
        for r in records:
            kind = type(r)
            if kind is Delta or kind is extra:
                index = r.index  # type: ignore[union-attr]
                if self.adopt:
                    self.adopt = False
                    self.live = self.start = index
                self.seen.add(index)
                if index == self.live:
                    if r.text:  # type: ignore[union-attr]
                        out.append(r)  # type: ignore[arg-type]
                    continue
                self.multi = True  # a second choice: sections from here on
                if r.text:  # type: ignore[union-attr]
                    self.held.setdefault(index, []).append(r)  # type: ignore[arg-type]
            elif kind is Finish:
                self.seen.add(r.index)  # type: ignore[union-attr]
                self.finished.add(r.index)  # type: ignore[union-attr]
        if self.live in self.finished:
            self._advance(out)
        return out

    def _advance(self, out: list[Delta]) -> None:
        # while the live choice has finished, the lowest one not yet shown becomes live
        while self.live in self.finished:
            later = (self.seen | set(self.held) | self.asked) - self.passed - {self.live}
            if not later:
                return
            self.passed.add(self.live)
            self.live = min(later)
            out.append(Delta(self.live, ""))  # its section starts now, before its first text
            out.extend(self.held.pop(self.live, []))

    def drain(self) -> list[Delta]:
        """Everything still held, in index order (the stream is over)."""
        out: list[Delta] = []
        if self.only is not None:
            return out
        for index in sorted((self.seen | set(self.held)) - self.passed - {self.live}):
            out.append(Delta(index, ""))
            out.extend(self.held.pop(index, []))
        return out


class PipeSink:
    """stdout is a file or pipe: exactly the text, each batch written and flushed as it arrives.

    With several choices each one's text follows the previous in index order, after a blank line:
    "\\n" when the previous choice's text ended with a newline, else "\\n\\n" (an empty choice
    too, so every choice keeps its place).
    """

    def __init__(self, term: Terminal, order: ChoiceOrder) -> None:
        self.term = term
        self.order = order
        self.current = order.start  # the choice whose text is being written
        self.choice_ends_newline = False  # whether the current choice's own text ends with "\n"
        self.labelled = False
        self.ends_with_newline = True  # whether the last character written is "\n"
        self.wrote = False
        self._pending_surrogate = ""
        self.line_closed = False  # a newline went to stderr after text that ended mid-line

    @property
    def open_line(self) -> bool:
        """Whether the text written so far ends mid-line."""
        return self.wrote and not self.ends_with_newline

    def close_line(self) -> None:
        """Before the first line acs writes on stderr after the text: when the text went to a
        pipe or a file without a final newline while stderr is a terminal (`acs complete | cat`
        shows it on that same terminal), a newline on stderr, so that line starts a line of its
        own. stdout stays the exact text."""
        term = self.term
        if self.open_line and not self.line_closed and term.stderr_tty and not term.stdout_tty:
            self.line_closed = True
            term.message("")

    def begin(self) -> None:
        pass

    def write(self, records: list[Record]) -> None:
        pieces = self.order.route(records)
        if pieces:
            self._emit(pieces)

    def end(self, outcome: Outcome) -> None:
        if outcome.stdout_closed:
            return
        pieces = self.order.drain()
        if pieces:
            self._emit(pieces)
        if self._pending_surrogate:
            self._write_text(self._pending_surrogate, flush_all=True)

    def _layout(self, pieces: list[Delta]) -> list[tuple[str, Delta | str]]:
        """The pieces in order as ("text", delta) for model text and ("sep" | "label", text)
        around the choices."""
        out: list[tuple[str, Delta | str]] = []
        if not self.labelled:
            self.current = self.order.start  # a single choice may be numbered other than 0
        for piece in pieces:
            index, text = piece.index, piece.text
            if index != self.current:
                out.append(("sep", "\n" if self.choice_ends_newline else "\n\n"))
                self.current = index
                self.choice_ends_newline = False
                out.append(("label", f"── choice {index} ──\n"))
            elif not self.labelled and self.order.multi:
                out.append(("label", f"── choice {index} ──\n"))
            self.labelled = True
            if text:
                out.append(("text", piece))
                self.choice_ends_newline = text[-1] == "\n"
        return out

    def _emit(self, pieces: list[Delta]) -> None:
        if len(pieces) == 1 and pieces[0].index == self.current and self.labelled:
            text = pieces[0].text  # the common case: one choice, one batch of text
            if text:
                self.choice_ends_newline = text[-1] == "\n"
                self._write_text(text)
            return
        parts = [item.text if isinstance(item, Delta) else item for kind, item in self._layout(pieces) if kind != "label"]
        self._write_text("".join(parts))

    def _write_text(self, text: str, flush_all: bool = False) -> None:
        if not text:
            return
        text = self._pending_surrogate + text
        self._pending_surrogate = ""
        # a high surrogate from a JSON \\ud83d escape waits for its low half in the next frame
        if not flush_all and "\ud800" <= text[-1] <= "\udbff":
            text, self._pending_surrogate = text[:-1], text[-1]
        if not text:
            return
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: pair what pairs, replace the rest
            data = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")
        self.term.write_out(data)
        self.wrote = True
        self.ends_with_newline = text[-1] == "\n"
