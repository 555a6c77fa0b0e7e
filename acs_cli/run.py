"""The run ladder: every command runs here, and every way it can end (success, an AcsError, a
signal, a closed stdout, a bug) becomes one Outcome, one message with its hint, one exit status.

`drive` runs the streaming part of a command around its sink: `begin`, the writes, and exactly
one `end(outcome)` whatever happened, with further signals held off while the sink ends (a second
Ctrl-C cannot lose the --json object or print a traceback). `--max-time` caps the part between.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from acs_cli.errors import AcsError, ExitStatus, OutputFailed, StdoutClosed, TimedOut, UsageError
from acs_cli.outcome import Outcome
from acs_cli.secrets import redact
from acs_cli.sinks import Sink
from acs_cli.terminal import Terminal
from acs_cli.text import make_visible, shorten, wrap

ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
MAX_ALARM = 1e9  # seconds (31 years): longer --max-time values are no cap


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP (or Ctrl-C, from the gate), raised in the main thread like Ctrl-C's
    KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def signal_of(exc: KeyboardInterrupt) -> int:
    return exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)


class SignalGate:
    """The process's handler for Ctrl-C, SIGTERM and SIGHUP (acs_cli.__main__.entry installs it).

    The first signal raises Interrupted, and the run ends as on Ctrl-C: partial text, usage line,
    the --json object, the connection closed. Signals after it are only counted, so a second
    Ctrl-C in quick succession cannot cut that ending short (a lost JSON object, a traceback);
    a third ends the process at once, for a person who insists or an output that blocks.
    """

    def __init__(self) -> None:
        self.first: int | None = None
        self.more = 0

    def __call__(self, signum: int, frame: object) -> None:
        if self.first is None:
            self.first = signum
            raise Interrupted(signum)
        self.more += 1
        if self.more >= 2:
            os._exit(128 + self.first)


GATE = SignalGate()


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
    if exc is None or exc.status == ExitStatus.BROKEN_PIPE:
        return
    if usage and isinstance(exc, UsageError):
        term.message(usage)
    message = " ".join(line.strip() for line in redact(exc.message).splitlines() if line.strip())  # one line
    width = stderr_width(term)
    term.message(_fit(f"acs: error: {make_visible(message)}", len("acs: error: "), width), "error")
    if exc.hint:
        term.message(_fit(f"hint: {make_visible(redact(exc.hint))}", len("hint: "), width), "hint")


def stderr_width(term: Terminal) -> int | None:
    """The width lines on stderr wrap to: the terminal's (COLUMNS first, as shutil reads it), or
    None when stderr is not a terminal (piped, each message stays one line for grep and logs)."""
    if not term.stderr_tty:
        return None
    if term.width:
        return term.width
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(term.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 80


def _fit(line: str, indent: int, width: int | None) -> str:
    """On a terminal, a long line wrapped at spaces with a hanging indent under its text."""
    return line if width is None else wrap(line, width, indent)


def output_error(exc: OSError) -> AcsError:
    """What a failed write to stdout means (the sinks write nothing else that can fail): its reader
    left or it is closed (141), or it cannot take the bytes: ENOSPC, EIO on a terminal that hung
    up (12)."""
    if isinstance(exc, BrokenPipeError) or exc.errno in (errno.EPIPE, errno.EBADF):
        return StdoutClosed()
    return OutputFailed(exc)


def drive(sink: Sink, body: Callable[[Outcome], AcsError | None], model: str | None = None, limit: MaxTime | None = None) -> Outcome:
    """begin, run `body` (which sends, reads and writes records, and returns the verdict) within
    the --max-time `limit`, then end the sink once with the outcome, whatever happened."""
    outcome = Outcome(model=model)
    try:
        sink.begin()
        with time_limit(limit):
            outcome.error = body(outcome)
    except KeyboardInterrupt as exc:
        outcome.signal = signal_of(exc)
    except AcsError as exc:
        outcome.error = exc
    except _Expired:
        outcome.error = limit.error(_phase(outcome)) if limit is not None else TimedOut("--max-time")
    except OSError as exc:  # the sinks write stdout and stderr only; stderr never fails
        outcome.error = output_error(exc)
    except Exception:  # a bug: the sink still ends (the cursor back, the JSON object), then the ladder says so
        outcome.error = AcsError("internal error in acs", "this is a bug in acs; rerun with ACS_DEBUG=1 for the traceback and report it")
        _end(sink, outcome)
        raise
    _end(sink, outcome)
    return outcome


def _end(sink: Sink, outcome: Outcome) -> None:
    outcome.ended = time.perf_counter()
    with signals_held():
        try:
            sink.end(outcome)
        except AcsError as exc:
            outcome.error = exc
        except OSError as exc:
            outcome.error = output_error(exc)


@dataclass
class MaxTime:
    """--max-time: a cap on the whole run, counted from when the command started (reading the
    prompt, connecting, retries, the model lookup, waiting and streaming), as curl's is."""

    seconds: float
    start: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        return self.start + self.seconds

    def error(self, phase: str) -> TimedOut:
        return TimedOut(
            f"the run took longer than --max-time {self.seconds:g} s ({phase})",
            "the text so far is kept; raise --max-time, or leave it out to wait as long as the stream flows",
        )


@contextlib.contextmanager
def before_request(limit: MaxTime | None) -> Iterator[None]:
    """The part of a command before `drive` (reading the prompt, the settings) within `limit`."""
    try:
        with time_limit(limit):
            yield
    except _Expired:
        assert limit is not None
        raise limit.error("before the request was sent") from None


class _Expired(BaseException):
    """--max-time's alarm, raised in the main thread wherever it is blocked (a BaseException, so
    no handler on the way can take it for an ordinary failure)."""


@contextlib.contextmanager
def time_limit(limit: MaxTime | None) -> Iterator[None]:
    """End the block with _Expired at the limit's deadline. A SIGALRM timer interrupts whatever
    call blocks; one already set (by whoever runs acs in-process) is kept and re-armed afterwards."""
    seconds = limit.deadline - time.monotonic() if limit is not None else 0.0
    if limit is None or seconds > MAX_ALARM or threading.current_thread() is not threading.main_thread():
        yield  # past MAX_ALARM no timer can be set, and the cap would never be reached anyway
        return
    start = time.monotonic()
    deadline = limit.deadline
    seconds = max(seconds, 1e-6)
    armed = True
    earlier = 0.0  # seconds to an alarm set before this one, while it has not gone off

    def expire(signum: int, frame: Any) -> None:
        nonlocal earlier
        if not armed:
            return
        now = time.monotonic()
        if now >= deadline - 0.001:
            raise _Expired
        if earlier and now >= start + earlier - 0.001:  # the earlier alarm: handed on, then ours
            earlier = 0.0
            signal.setitimer(signal.ITIMER_REAL, deadline - now)
            if callable(saved):
                saved(signum, frame)

    saved = signal.signal(signal.SIGALRM, expire)
    earlier, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    if earlier and earlier < seconds:
        signal.setitimer(signal.ITIMER_REAL, earlier)
    try:
        yield
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, saved)
        if earlier:
            signal.setitimer(signal.ITIMER_REAL, max(1e-6, earlier - (time.monotonic() - start)), interval)


def _phase(outcome: Outcome) -> str:
    state = outcome.state
    if outcome.timeline.sent is None:
        return "before the request was sent"
    if state is None:
        return "waiting for the answer"
    if not state.choices:
        return "waiting for the first token"
    return "while streaming"


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
