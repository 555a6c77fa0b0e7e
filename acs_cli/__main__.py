"""`python -m acs_cli` and the `acs` console script.

`main(argv, term)` runs one command and returns its exit status; it never exits the process and
writes only through the Terminal, so tests run it in-process with `Terminal.for_test`. `entry()`
is the process around it: closed standard streams, the signals that end a run like Ctrl-C, and
the exit itself.

Every way stdout can fail ends with a documented status and at most one line on stderr: a closed
stdout (`>&-`) or a reader that left (`| head -c1`) is 141 and silent; a stdout that cannot be
written (`> /dev/full`: ENOSPC, or EIO) is 12 with one line. A closed or failing stderr is never
a failure.
"""

from __future__ import annotations

import io
import os
import sys
from typing import TYPE_CHECKING

from acs_cli import __version__

if TYPE_CHECKING:
    from acs_cli.terminal import Terminal

# acs's own modules are imported inside the functions that use them: `acs --version` answers
# before any of them (or Typer) loads, and `acs --help` before the HTTP stack does.
STDOUT_CLOSED = 141
OUTPUT_FAILED = 12  # acs_cli.errors.ExitStatus.OUTPUT, without importing it for --version


VERSION_ARGS = (["--version"], ["-V"])


def main(argv: list[str] | None = None, term: Terminal | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv in VERSION_ARGS:
            return _version(term)
        return _command(argv, term)
    except BrokenPipeError:
        return STDOUT_CLOSED
    except OSError as exc:  # only a write can fail here: commands' own failures end in the ladder
        _say(term, f"acs: error: cannot write to stdout: {exc.strerror or exc}")
        return OUTPUT_FAILED


def _version(term: Terminal | None) -> int:
    # answered before Typer is imported: the commonest probe of a CLI should cost nothing
    text = f"acs {__version__}\n".encode()
    if term is not None:
        term.write_out(text)
    else:
        sys.stdout.buffer.write(text)
        sys.stdout.buffer.flush()
    return 0


def _command(argv: list[str], term: Terminal | None) -> int:
    from acs_cli.run import GATE, signal_of
    from acs_cli.terminal import Terminal

    term = term or Terminal.from_process()
    try:
        from acs_cli.cli import app

        code = app(args=argv, prog_name="acs", standalone_mode=False, obj=term)
    except KeyboardInterrupt as exc:  # a signal outside a stream (while importing, parsing flags)
        return 128 + signal_of(exc)
    except SystemExit:  # Typer's own answer to EPIPE while Click printed (the help)
        if _unpacify():
            return STDOUT_CLOSED
        raise
    except Exception as exc:
        if not hasattr(exc, "format_message") or not hasattr(exc, "exit_code"):
            raise
        return _flag_error(exc, argv, term)
    code = code if isinstance(code, int) else 0
    if code == 130 and GATE.first is not None:  # Typer reports every KeyboardInterrupt as 130
        code = 128 + GATE.first
    return code


def _unpacify() -> bool:
    """Whether Typer wrapped the streams after an EPIPE (it then exits 1); unwrap them."""
    wrapped = False
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if type(stream).__name__ == "PacifyFlushWrapper":
            setattr(sys, name, stream.wrapped)
            wrapped = True
    return wrapped


def _say(term: Terminal | None, line: str) -> None:
    if term is not None:
        term.message(line, "error")
        return
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def _flag_error(exc: Exception, argv: list[str], term: Terminal) -> int:
    """Click's complaint about the command line, in acs's one-line-and-a-hint form."""
    from acs_cli.errors import ExitStatus
    from acs_cli.text import make_visible

    if type(exc).__name__ == "NoArgsIsHelpError":  # plain `acs`: the help is the answer
        term.message(exc.format_message())  # type: ignore[attr-defined]
        return int(ExitStatus.USAGE)
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        term.message(ctx.get_usage())
    message = exc.format_message()  # type: ignore[attr-defined]
    command = ctx.command_path if ctx is not None else "acs"
    if any(arg.split("=", 1)[0] in ("--api-key", "--key", "--token") for arg in argv):
        hint = "the key is read from ACS_API_KEY only, never from the command line"
    else:
        hint = "`acs --help` lists the commands" if command == "acs" else f"`{command} --help` lists its options, with examples"
    term.message(f"acs: error: {make_visible(message)}")  # it may quote an argument: shown, never run
    term.message(f"hint: {make_visible(hint)}")
    code = getattr(exc, "exit_code", 2)
    return int(ExitStatus.USAGE) if code == 2 else int(code)


class _ClosedStdout(io.RawIOBase):
    """stdout when fd 1 was closed (`>&-`): every write fails as a pipe whose reader left, until
    the process is ending (`silenced`) and the interpreter's last flush must stay quiet."""

    silenced = False

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        if self.silenced:
            return len(data)  # type: ignore[arg-type]
        raise BrokenPipeError(32, "stdout is closed")


def _guard_streams() -> None:
    """Closed standard streams (`<&-`, `>&-`, `2>&-`): /dev/null takes their descriptors, so no file
    or socket acs opens lands on 0, 1 or 2; stdout then fails like a pipe whose reader left, and
    stderr takes what is written and drops it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stdout is None:
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(_ClosedStdout()), encoding="utf-8", errors="replace")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # for the whole process


def _silence_stdout() -> None:
    # stdout failed (`| head`, /dev/full): point it at /dev/null so the interpreter's final flush of
    # what is still buffered is silent
    raw = getattr(getattr(sys.stdout, "buffer", None), "raw", None)
    if isinstance(raw, _ClosedStdout):
        raw.silenced = True
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def entry() -> None:
    """The process: closed streams guarded, SIGINT, SIGTERM and SIGHUP ending a run as Ctrl-C
    does, a failed stdout ending quietly."""
    try:
        status = _process()
    except KeyboardInterrupt as exc:  # a signal before the gate was up (while importing)
        status = 128 + int(getattr(exc, "signum", 2))
    for _ in range(3):  # a signal in the last steps: the gate raises once, then only counts
        try:
            _exit(status)
        except KeyboardInterrupt:
            continue


def _process() -> int:
    import signal

    _guard_streams()
    if sys.argv[1:] in VERSION_ARGS:
        return main()  # nothing to end gracefully: the version costs no imports
    from acs_cli.run import ENDING_SIGNALS, GATE

    for signum in ENDING_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, GATE)
    return main()


def _exit(status: int) -> None:
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # exiting: a signal now must not
        signal.signal(signum, signal.SIG_IGN)  # kill the interpreter as it finalizes (it resets
    if status in (STDOUT_CLOSED, OUTPUT_FAILED):  # Python's handlers to the default)
        _silence_stdout()
    sys.exit(status)


if __name__ == "__main__":
    entry()
