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

        app(prog_name="acs")
    except KeyboardInterrupt:  # Ctrl-C outside a stream (while importing, parsing flags)
        sys.exit(130)


if __name__ == "__main__":
    main()
