"""Output sinks: plain text to a pipe, live text on a terminal, raw bytes; and the usage line."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, BinaryIO

from acs_cli.sse import Choice, CompletionStream
from acs_cli.terminal import Terminal


class ChoiceOrder:
    """Puts the choices of a stream in index order while they arrive interleaved.

    The lowest unfinished choice streams live; text of later choices is held until every choice
    before it has finished, then released, so the output is each choice's text in index order.
    `section(index)` is called before a choice's text when there is more than one choice.
    """

    def __init__(self, expected: int = 1, only: int | None = None) -> None:
        self.expected = max(1, expected)
        self.only = only
        self.live = 0 if only is None else only
        self.started = False  # whether anything (a section or text) was written
        self.held: dict[int, list[str]] = {}
        self.finished: set[int] = set()
        self.multi = only is None and expected > 1

    def route(self, deltas: list[tuple[int, str]], stream: CompletionStream) -> list[tuple[int, str]]:
        """The (index, text) pieces that may be written now, in order."""
        out: list[tuple[int, str]] = []
        if self.only is not None:
            return [d for d in deltas if d[0] == self.only]
        live = self.live
        for index, text in deltas:
            if index == live:
                out.append((index, text))
            else:
                if index > 0 and not self.multi:
                    self.multi = True  # the server sent more choices than asked for
                self.held.setdefault(index, []).append(text)
        self._advance(stream, out)
        return out

    def _advance(self, stream: CompletionStream, out: list[tuple[int, str]]) -> None:
        # while the live choice has finished, the next one (by index) becomes live
        while True:
            state = stream.choices.get(self.live)
            if state is None or not state.finished:
                return
            nxt = self._next_after(self.live, stream)
            if nxt is None:
                return
            self.live = nxt
            held = self.held.pop(nxt, [])
            out.extend((nxt, text) for text in held)
            if not held:
                out.append((nxt, ""))  # its section starts now, before its first text

    def _next_after(self, index: int, stream: CompletionStream) -> int | None:
        candidates = [i for i in set(stream.choices) | set(self.held) | set(range(self.expected)) if i > index]
        return min(candidates) if candidates else None

    def drain(self, stream: CompletionStream) -> list[tuple[int, str]]:
        """Everything still held, in index order (the stream is over)."""
        out: list[tuple[int, str]] = []
        if self.only is not None:
            return out
        for index in sorted(i for i in set(self.held) | set(stream.choices) if i > self.live):
            out.append((index, ""))
            for text in self.held.pop(index, []):
                out.append((index, text))
        return out


class PipeSink:
    """stdout is a file or pipe: exactly the text, each batch written and flushed as it arrives.

    With several choices each one's text follows the previous in index order, after a blank line:
    "\n" when the previous choice's text ended with a newline, else "\n\n" (an empty choice
    too, so every choice keeps its place).
    """

    def __init__(self, out: BinaryIO, order: ChoiceOrder) -> None:
        self.out = out
        self.order = order
        self.current = order.live  # the choice whose text is being written
        self.choice_ends_newline = False  # whether the current choice's own text ends with "\n"
        self.labelled = False
        self.ends_with_newline = True  # whether the last character written is "\n"
        self.wrote = False
        self._pending_surrogate = ""

    def start(self) -> None:
        pass

    def write(self, deltas: list[tuple[int, str]], stream: CompletionStream) -> None:
        pieces = self.order.route(deltas, stream)
        if pieces:
            self._emit(pieces)

    def finish(self, stream: CompletionStream) -> None:
        pieces = self.order.drain(stream)
        if pieces:
            self._emit(pieces)
        if self._pending_surrogate:
            self._write_text(self._pending_surrogate, flush_all=True)
        self.close()

    def close(self) -> None:
        pass

    # hooks for the sink that wraps this one with --json, --jsonl, --stats (acs_cli/timing.py);
    # called once per run, so the plain path pays nothing per frame
    def sent(self, model: str | None = None) -> None:
        """The request is about to be sent."""

    def summary(self, stream: CompletionStream) -> str:
        """Text to add to the usage line."""
        return ""

    def conclude(self, stream: CompletionStream, error: BaseException | None, interrupted: bool) -> None:
        """The run is over: with `error` (None on success), or interrupted by Ctrl-C."""

    def _layout(self, pieces: list[tuple[int, str]]) -> list[tuple[str, str | None]]:
        """The pieces as (text, kind): kind None for model text, "sep" and "label" around choices."""
        out: list[tuple[str, str | None]] = []
        for index, text in pieces:
            if index != self.current:
                out.append(("\n" if self.choice_ends_newline else "\n\n", "sep"))
                self.current = index
                self.choice_ends_newline = False
                out.append((f"── choice {index} ──\n", "label"))
            elif not self.labelled and self.order.multi:
                out.append((f"── choice {index} ──\n", "label"))
            self.labelled = True
            if text:
                out.append((text, None))
                self.choice_ends_newline = text[-1] == "\n"
        return out

    def _emit(self, pieces: list[tuple[int, str]]) -> None:
        if len(pieces) == 1 and pieces[0][0] == self.current and self.labelled:
            text = pieces[0][1]  # the common case: one choice, one batch of text
            if text:
                self.choice_ends_newline = text[-1] == "\n"
                self._write_text(text)
            return
        self._write_text("".join(text for text, kind in self._layout(pieces) if kind != "label"))

    def _write_text(self, text: str, flush_all: bool = False) -> None:
        if not text:
            return
        text = self._pending_surrogate + text
        self._pending_surrogate = ""
        # a high surrogate from a JSON \ud83d escape waits for its low half in the next frame
        if not flush_all and "\ud800" <= text[-1] <= "\udbff":
            text, self._pending_surrogate = text[:-1], text[-1]
        if not text:
            return
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: pair what pairs, replace the rest
            data = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")
        self.out.write(data)
        self.out.flush()
        self.wrote = True
        self.ends_with_newline = text[-1] == "\n"


# C0 and C1 controls other than tab and newline, DEL, and the bidi overrides that reorder what a
# reader sees: model text is untrusted, so on a terminal they are shown, never interpreted
_VISIBLE = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F]}
_VISIBLE.update({c: f"\\u{c:04x}" for c in range(0x80, 0xA0)})
_VISIBLE.update({c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]})
_VISIBLE[0x1B] = "\\e"
_VISIBLE[0x0D] = "\\r"
_VISIBLE[0x08] = "\\b"
_UNSAFE = frozenset(chr(c) for c in _VISIBLE)


def visible_pieces(text: str) -> list[tuple[str, bool]]:
    """Split text into (piece, is_escape) so escapes can be styled apart from model text."""
    if _UNSAFE.isdisjoint(text):
        return [(text, False)]
    text = text.replace("\r\n", "\n")
    pieces: list[tuple[str, bool]] = []
    start = 0
    for i, ch in enumerate(text):
        if ch in _UNSAFE:
            if i > start:
                pieces.append((text[start:i], False))
            pieces.append((_VISIBLE[ord(ch)], True))
            start = i + 1
    if start < len(text):
        pieces.append((text[start:], False))
    return pieces


def make_visible(text: str) -> str:
    return "".join(piece for piece, _ in visible_pieces(text))


class TerminalSink(PipeSink):
    """stdout is a terminal: a spinner until the first token, then text drawn through Rich as it
    arrives, append-only (the terminal scrolls and keeps it; nothing is redrawn), control
    characters made visible, and a labelled section per choice when there are several."""

    def __init__(self, term: Terminal, order: ChoiceOrder, colour: bool) -> None:
        super().__init__(term.stdout, order)
        from rich.console import Console

        self.term = term
        try:  # a terminal whose locale cannot show a character gets a replacement, not a crash
            sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
        self.console = Console(
            file=sys.stdout,
            force_terminal=True,
            no_color=not colour,
            color_system="standard" if colour else None,
            soft_wrap=True,
            markup=False,
            highlight=False,
            emoji=False,
        )
        self.spinner: Spinner | None = Spinner(term) if term.spinner else None

    def start(self) -> None:
        if self.spinner:
            self.spinner.start()

    def stop_spinner(self) -> None:
        if self.spinner:
            self.spinner.stop()
            self.spinner = None

    def _emit(self, pieces: list[tuple[int, str]]) -> None:
        from rich.text import Text

        self.stop_spinner()
        out = Text()
        run: list[str] = []  # consecutive model text, made visible in one pass
        for text, kind in self._layout(pieces):
            if kind is None:
                run.append(text)
                continue
            self._append_visible(out, run)
            if kind == "label":
                out.append(text, style="bold cyan")
            elif self.wrote or out:
                out.append(text)
        self._append_visible(out, run)
        self._print(out)

    def _print(self, out: Any) -> None:
        """One Rich print and one flush for everything one read brought."""
        if not out:
            return
        self.console.print(out, end="")
        self.console.file.flush()
        self.wrote = True
        self.ends_with_newline = out.plain.endswith("\n")

    @staticmethod
    def _append_visible(out: Any, run: list[str]) -> None:
        if run:
            for piece, escape in visible_pieces("".join(run)):
                out.append(piece, style="reverse" if escape else None)
            run.clear()

    def close(self) -> None:
        self.stop_spinner()
        if self.wrote and not self.ends_with_newline:
            try:
                sys.stdout.write("\n")  # the prompt and the usage line start on a line of their own
                sys.stdout.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass
            self.ends_with_newline = True


class RawSink:
    """--raw: the body exactly as it came off the socket."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out

    def head(self, status_line: str, headers: list[tuple[bytes, bytes]]) -> None:
        lines = [status_line.encode("latin-1", "replace")] + [k + b": " + v for k, v in headers]
        self.out.write(b"\r\n".join(lines) + b"\r\n\r\n")
        self.out.flush()

    def write_bytes(self, chunk: bytes) -> None:
        self.out.write(chunk)
        self.out.flush()


class Spinner:
    """A spinner with the time waited, on stderr, until the first token.

    Drawn by a small thread on one line that it erases when stopped; stopping costs one write,
    so the first token is not held up (a Rich Live display takes milliseconds to stop).
    """

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"  # Rich's "dots"
    INTERVAL = 0.08

    def __init__(self, term: Terminal) -> None:
        self.term = term
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        colour = term.colour
        self._style = ("\x1b[36m", "\x1b[0m") if colour else ("", "")

    def start(self) -> None:
        self._started = time.monotonic()
        self._write("\x1b[?25l")  # hide the cursor while the line is redrawn
        self._draw(0)
        self._thread = threading.Thread(target=self._run, name="acs-spinner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        frame = 0
        while not self._stopped.wait(self.INTERVAL):
            frame += 1
            self._draw(frame)

    def _draw(self, frame: int) -> None:
        waited = time.monotonic() - self._started
        on, off = self._style
        line = f"\r{on}{self.FRAMES[frame % len(self.FRAMES)]}{off} waiting for the first token… {waited:.1f}s\x1b[K"
        with self._lock:
            if not self._stopped.is_set():
                self._write(line)

    def stop(self) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
            self._write("\r\x1b[K\x1b[?25h")  # erase the line, show the cursor again

    def _write(self, text: str) -> None:
        try:
            self.term.stderr.write(text)
            self.term.stderr.flush()
        except (OSError, ValueError):
            pass


def usage_line(stream: CompletionStream, *, interrupted: bool = False) -> str:
    """`9 prompt + 80 completion = 89 tokens · finish: length`, or what is known instead."""
    usage = stream.usage
    if usage:
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
            head = f"{head} = {total} tokens" if head else f"{total} tokens"
        else:
            head += " tokens"
    else:
        head = "usage: the server reported none"
        if interrupted and stream.frames:
            head = f"{stream.frames} frames received before the interrupt; the server reported no usage"
    finishes = _finishes(stream.ordered())
    tail = f" · finish: {finishes}" if finishes else ""
    if interrupted:
        tail += " · interrupted"
    return head + tail


def _finishes(choices: list[Choice]) -> str:
    if not choices:
        return ""
    if len(choices) == 1:
        return choices[0].finish_reason or "none"
    return ", ".join(f"[{c.index}] {c.finish_reason or 'none'}" for c in choices)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
