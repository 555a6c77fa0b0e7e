"""The three standard streams and what they are (terminal or not, colour or not), decided once."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import BinaryIO, TextIO


@dataclass
class Terminal:
    stdin: TextIO
    stdout: BinaryIO
    stderr: TextIO
    stdin_tty: bool
    stdout_tty: bool
    stderr_tty: bool
    colour: bool  # styles on stderr
    stdout_colour: bool  # styles on stdout (only ever when it is a terminal)
    dumb: bool  # TERM=dumb: no cursor movement, so no spinner

    @classmethod
    def from_process(cls) -> Terminal:
        env = os.environ
        dumb = env.get("TERM", "") == "dumb"
        stdout_tty = _isatty(sys.stdout)
        stderr_tty = _isatty(sys.stderr)
        no_colour = "NO_COLOR" in env and env["NO_COLOR"] != ""
        return cls(
            stdin=sys.stdin,
            stdout=sys.stdout.buffer,
            stderr=sys.stderr,
            stdin_tty=_isatty(sys.stdin),
            stdout_tty=stdout_tty,
            stderr_tty=stderr_tty,
            colour=stderr_tty and not no_colour and not dumb,
            stdout_colour=stdout_tty and not no_colour and not dumb,
            dumb=dumb,
        )

    @property
    def spinner(self) -> bool:
        """A spinner draws on stderr, and only when the person is watching both streams."""
        return self.stdout_tty and self.stderr_tty and not self.dumb

    def message(self, text: str, style: str | None = None) -> None:
        """One line on stderr, styled only when stderr is a colour terminal."""
        if style and self.colour:
            text = f"{_SGR[style]}{text}\x1b[0m"
        try:
            self.stderr.write(text + "\n")
            self.stderr.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass


_SGR = {"error": "\x1b[1;31m", "hint": "\x1b[33m", "dim": "\x1b[2m", "warn": "\x1b[33m"}


def _isatty(stream: object) -> bool:
    try:
        return bool(stream is not None and stream.isatty())  # type: ignore[attr-defined]
    except (ValueError, OSError):
        return False
