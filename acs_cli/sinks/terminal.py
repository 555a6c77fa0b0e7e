"""Live text on a terminal: a spinner until the first token, then append-only Rich output with
every control character made visible, a labelled section per choice when there are several."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from acs_cli.records import Delta
from acs_cli.sinks.text import ChoiceOrder, PipeSink
from acs_cli.text import make_visible, visible_pieces

if TYPE_CHECKING:
    from acs_cli.outcome import Outcome
    from acs_cli.terminal import Terminal


class TerminalSink(PipeSink):
    """stdout is a terminal: text drawn through Rich as it arrives, append-only (the terminal
    scrolls and keeps it; nothing is redrawn), one print and one flush per read."""

    def __init__(self, term: Terminal, order: ChoiceOrder) -> None:
        super().__init__(term, order)
        self.console = term.console("stdout", soft_wrap=True, force_terminal=True)
        self.spinner: Spinner | None = Spinner(term) if term.spinner else None

    def begin(self) -> None:
        if self.spinner:
            self.spinner.start()

    def stop_spinner(self) -> None:
        if self.spinner:
            self.spinner.stop()
            self.spinner = None

    def end(self, outcome: Outcome) -> None:
        self.stop_spinner()
        if outcome.stdout_closed:
            return
        super().end(outcome)
        if self.wrote and not self.ends_with_newline:
            try:  # the prompt and the usage line start on a line of their own
                self.term.write_out(b"\n")
            except (BrokenPipeError, OSError):
                pass
            self.ends_with_newline = True

    def _emit(self, pieces: list[Delta]) -> None:
        from rich.text import Text

        self.stop_spinner()
        out = Text()
        run: list[Delta] = []  # consecutive model text, drawn in one pass
        for kind, item in self._layout(pieces):
            if isinstance(item, Delta):
                run.append(item)
                continue
            if run:
                self.append_text(out, run)
                run = []
            if kind == "label":
                out.append(item, style="bold cyan")
            elif self.wrote or out:
                out.append(item)
        if run:
            self.append_text(out, run)
        self._print(out)

    def append_text(self, out: Any, run: list[Delta]) -> None:
        """Model text, its control characters shown as reversed visible escapes."""
        for piece, escape in visible_pieces("".join(d.text for d in run)):
            out.append(piece, style="reverse" if escape else None)

    def _print(self, out: Any) -> None:
        """One Rich print and one flush for everything one read brought."""
        if not out:
            return
        try:
            self.console.print(out, end="")
            self.console.file.flush()
        except ValueError:  # stdout closed under us
            raise BrokenPipeError from None
        self.wrote = True
        self.ends_with_newline = out.plain.endswith("\n")


class Spinner:
    """A spinner with the time waited, on stderr, until the first token.

    Drawn by a small thread on one line that it erases when stopped; stopping costs one write,
    so the first token is not held up (a Rich Live display takes milliseconds to stop).
    """

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"  # Rich's "dots"
    INTERVAL = 0.08
    # the spinner drawing now, if any: it owns stderr's last line, so a retry is said on it
    showing: Spinner | None = None

    def __init__(self, term: Terminal, label: str = "waiting for the first token…") -> None:
        self.term = term
        self.label = label
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._style = ("\x1b[36m", "\x1b[0m") if term.colour else ("", "")
        self._started = time.monotonic()

    def start(self) -> None:
        self._started = time.monotonic()
        Spinner.showing = self
        self._write("\x1b[?25l")  # hide the cursor while the line is redrawn
        self._draw(0)
        self._thread = threading.Thread(target=self._run, name="acs-spinner", daemon=True)
        self._thread.start()

    def say(self, label: str) -> None:
        """Change what the spinner says (a retry, and why)."""
        self.label = label

    def _run(self) -> None:
        # the signals that end a run (and --max-time's alarm) must interrupt the main thread's
        # blocking read, never land here
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM})
        frame = 0
        while not self._stopped.wait(self.INTERVAL):
            frame += 1
            self._draw(frame)

    def _draw(self, frame: int) -> None:
        waited = time.monotonic() - self._started
        on, off = self._style
        line = f"\r{on}{self.FRAMES[frame % len(self.FRAMES)]}{off} {self.label} {waited:.1f}s\x1b[K"
        with self._lock:
            if not self._stopped.is_set():
                self._write(line)

    def stop(self) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
            self._write("\r\x1b[K\x1b[?25h")  # erase the line, show the cursor again
        if Spinner.showing is self:
            Spinner.showing = None

    def _write(self, text: str) -> None:
        try:
            self.term.stderr.write(text)
            self.term.stderr.flush()
        except (OSError, ValueError):
            pass


def retry_notice(term: Terminal) -> Callable[[object], None]:
    """How a command says a retry (acs_cli.api.Retry: what failed, which attempt comes, when):
    on the spinner's line while a spinner draws, else one line on stderr per retry (a person
    watching a terminal, and a log, both see why acs is still waiting)."""

    def say(retry: object) -> None:
        text = make_visible(str(retry))  # the reason may hold a server's status phrase
        spinner = Spinner.showing
        if spinner is not None and spinner.term is term:
            spinner.say(text)
        else:
            term.message(f"acs: {text}", "dim")

    return say
