"""`python -m acs_cli` and the `acs` console script.

`main(argv, term)` runs one command and returns its exit status; it never exits the process and
writes only through the Terminal, so tests run it in-process with `Terminal.for_test`. `entry()`
is the process around it: the signals that end a run like Ctrl-C, and the exit itself.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from acs_cli.terminal import Terminal


def main(argv: list[str] | None = None, term: Terminal | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["--version"], ["-V"]):
        # answered before Typer is imported: the commonest probe of a CLI should cost nothing
        from acs_cli import __version__

        text = f"acs {__version__}\n".encode()
        if term is not None:
            term.write_out(text)
        else:
            sys.stdout.buffer.write(text)
            sys.stdout.buffer.flush()
        return 0
    from acs_cli.terminal import Terminal

    term = term or Terminal.from_process()
    try:
        from acs_cli.cli import app

        code = app(args=argv, prog_name="acs", standalone_mode=False, obj=term)
    except KeyboardInterrupt as exc:  # a signal outside a stream (while importing, parsing flags)
        from acs_cli.run import signal_of

        return 128 + signal_of(exc)
    except Exception as exc:
        if not hasattr(exc, "format_message") or not hasattr(exc, "exit_code"):
            raise
        return _flag_error(exc, argv, term)
    return code if isinstance(code, int) else 0


def _flag_error(exc: Exception, argv: list[str], term: Terminal) -> int:
    """Click's complaint about the command line, in acs's one-line-and-a-hint form."""
    from acs_cli.errors import ExitStatus

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
    term.message(f"acs: error: {message}")
    term.message(f"hint: {hint}")
    code = getattr(exc, "exit_code", 2)
    return int(ExitStatus.USAGE) if code == 2 else int(code)


def entry() -> None:
    """The process: SIGTERM and SIGHUP end a run as Ctrl-C does; a closed stdout ends quietly."""
    import signal

    from acs_cli.run import raise_interrupted

    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, raise_interrupted)
    try:
        status = main()
    except KeyboardInterrupt as exc:
        from acs_cli.run import signal_of

        status = 128 + signal_of(exc)
    if status == 141:
        _silence_stdout()
    sys.exit(status)


def _silence_stdout() -> None:
    # the reader left (`| head`): point stdout at /dev/null so the interpreter's final flush is silent
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    entry()
