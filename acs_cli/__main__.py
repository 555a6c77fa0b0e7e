"""`python -m acs_cli` and the `acs` console script."""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv in (["--version"], ["-V"]):
        # answered before Typer is imported: the commonest probe of a CLI should cost nothing
        from acs_cli import __version__

        sys.stdout.write(f"acs {__version__}\n")
        return
    try:
        from acs_cli.cli import app

        code = app(prog_name="acs", standalone_mode=False)
    except KeyboardInterrupt:  # Ctrl-C outside a stream (while importing, parsing flags)
        sys.exit(130)
    except Exception as exc:
        if not hasattr(exc, "format_message") or not hasattr(exc, "exit_code"):
            raise
        sys.exit(_flag_error(exc, argv))
    sys.exit(code if isinstance(code, int) else 0)


def _flag_error(exc: Exception, argv: list[str]) -> int:
    """Click's complaint about the command line, in acs's one-line-and-a-hint form."""
    from acs_cli.errors import ExitStatus

    if type(exc).__name__ == "NoArgsIsHelpError":  # plain `acs`: the help is the answer
        sys.stderr.write(exc.format_message() + "\n")  # type: ignore[attr-defined]
        return int(ExitStatus.USAGE)
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        sys.stderr.write(ctx.get_usage() + "\n")
    message = exc.format_message()  # type: ignore[attr-defined]
    command = ctx.command_path if ctx is not None else "acs"
    if any(arg.split("=", 1)[0] in ("--api-key", "--key", "--token") for arg in argv):
        hint = "the key is read from ACS_API_KEY only, never from the command line"
    else:
        hint = f"`{command} --help` lists the commands and options"
    sys.stderr.write(f"acs: error: {message}\nhint: {hint}\n")
    code = getattr(exc, "exit_code", 2)
    return int(ExitStatus.USAGE) if code == 2 else int(code)


if __name__ == "__main__":
    main()
