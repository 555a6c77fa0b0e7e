"""The run ladder: every command runs here, and every way it can end (success, an AcsError, a
signal, a closed stdout, a bug) becomes one Outcome, one message with its hint, one exit status.

`drive` runs the streaming part of a command around its sink: `begin`, the writes, and exactly
one `end(outcome)` whatever happened, with further signals held off while the sink ends (a second
Ctrl-C cannot lose the --json object or print a traceback).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

from acs_cli.errors import AcsError, ExitStatus, StdoutClosed, UsageError
from acs_cli.outcome import Outcome
from acs_cli.secrets import redact
from acs_cli.sinks import Sink
from acs_cli.terminal import Terminal
from acs_cli.text import make_visible, shorten

ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C's KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def signal_of(exc: KeyboardInterrupt) -> int:
    return exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)


def raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def run(command: Callable[[Terminal], Outcome | int], term: Terminal, usage: str | None = None) -> int:
    """Run a command; map every failure to one message, a hint and its exit status."""
    try:
        result = command(term)
        if isinstance(result, int):
            return result
        outcome = result
    except AcsError as exc:
        outcome = Outcome(error=exc)
    except KeyboardInterrupt as exc:
        outcome = Outcome(signal=signal_of(exc))
    except BrokenPipeError:
        outcome = Outcome(error=StdoutClosed())
    except Exception as exc:  # a bug: say so in one line, never with a traceback (locals may hold the key)
        if os.environ.get("ACS_DEBUG"):
            raise
        term.message(f"acs: internal error: {type(exc).__name__}: {make_visible(shorten(redact(str(exc)), 300))}", "error")
        term.message("hint: this is a bug in acs; rerun with ACS_DEBUG=1 for the traceback and report it", "hint")
        return int(ExitStatus.ERROR)
    report(term, outcome, usage)
    return outcome.status


def report(term: Terminal, outcome: Outcome, usage: str | None = None) -> None:
    """The failure's one line and its hint on stderr (nothing for success, a signal, a closed stdout)."""
    exc = outcome.error
    if exc is None or outcome.stdout_closed:
        return
    if usage and isinstance(exc, UsageError):
        term.message(usage)
    message = " ".join(line.strip() for line in redact(exc.message).splitlines() if line.strip())  # one line
    term.message(f"acs: error: {make_visible(message)}", "error")
    if exc.hint:
        term.message(f"hint: {make_visible(redact(exc.hint))}", "hint")


def drive(sink: Sink, body: Callable[[Outcome], AcsError | None], model: str | None = None) -> Outcome:
    """begin, run `body` (which sends, reads and writes records, and returns the verdict), then
    end the sink once with the outcome, whatever happened."""
    outcome = Outcome(model=model)
    sink.begin()
    try:
        outcome.error = body(outcome)
    except KeyboardInterrupt as exc:
        outcome.signal = signal_of(exc)
    except AcsError as exc:
        outcome.error = exc
    except BrokenPipeError:
        outcome.error = StdoutClosed()
    outcome.ended = time.perf_counter()
    with signals_held():
        try:
            sink.end(outcome)
        except BrokenPipeError:
            outcome.error = StdoutClosed()
    return outcome


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block is done (only the main thread can)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    saved = {}
    for signum in ENDING_SIGNALS:
        saved[signum] = signal.getsignal(signum)
        if saved[signum] not in (signal.SIG_IGN, None):
            signal.signal(signum, lambda s, f: pending.append(s))
    try:
        yield
    finally:
        for signum, handler in saved.items():
            if handler is not None:
                signal.signal(signum, handler)
