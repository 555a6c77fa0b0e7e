"""The three standard streams and what they are (terminal or not, colour or not), decided once.

Every byte acs writes goes through a Terminal: `write_out` for data on stdout, `message` for a
line on stderr, `console` for Rich drawing (markup always off: server text is never markup).
`Terminal.for_test` builds one over in-memory streams with chosen terminal and colour flags, so a
command runs in-process in tests exactly as it does in a process.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, TextIO

from acs_cli.errors import OutputFailed

_SGR = {"error": "\x1b[1;31m", "hint": "\x1b[33m", "dim": "\x1b[2m", "warn": "\x1b[33m"}


@dataclass
class Terminal:
    stdin: BinaryIO | None
    stdout: BinaryIO
    stderr: TextIO
    stdout_text: TextIO  # stdout's text layer, for Rich; flushed after every print
    stdin_tty: bool
    stdout_tty: bool
    stderr_tty: bool
    colour: bool  # styles on stderr
    stdout_colour: bool  # styles on stdout (only ever when it is a terminal)
    dumb: bool  # TERM=dumb: no cursor movement, so no spinner
    width: int | None = None  # None: ask the terminal
    buffers: tuple[io.BytesIO, io.BytesIO] | None = field(default=None, repr=False)  # for_test's

    @classmethod
    def from_process(cls) -> Terminal:
        env = os.environ
        stdout_tty = _isatty(sys.stdout)
        stderr_tty = _isatty(sys.stderr)
        stdout_text = sys.stdout
        try:  # a terminal whose locale cannot show a character gets a replacement, not a crash
            sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
        stdin = getattr(sys.stdin, "buffer", None) if sys.stdin is not None else None
        return cls(
            stdin=stdin,
            stdout=sys.stdout.buffer,
            stderr=sys.stderr,
            stdout_text=stdout_text,
            stdin_tty=_isatty(sys.stdin),
            stdout_tty=stdout_tty,
            stderr_tty=stderr_tty,
            **_styles(env, stdout_tty, stderr_tty),
        )

    @classmethod
    def for_test(
        cls,
        stdin: bytes | None = b"",
        *,
        stdin_tty: bool = False,
        stdout_tty: bool = False,
        stderr_tty: bool = False,
        env: Mapping[str, str] | None = None,
        width: int = 80,
    ) -> Terminal:
        """In-memory streams; `env` decides colour as a process's environment would (default:
        TERM=xterm-256color). `captured()` gives what was written."""
        out, err = io.BytesIO(), io.BytesIO()
        environ = {"TERM": "xterm-256color"} if env is None else env
        return cls(
            stdin=None if stdin is None else io.BytesIO(stdin),
            stdout=out,
            stderr=io.TextIOWrapper(err, encoding="utf-8", errors="replace", write_through=True),
            stdout_text=io.TextIOWrapper(out, encoding="utf-8", errors="replace", write_through=True),
            stdin_tty=stdin_tty,
            stdout_tty=stdout_tty,
            stderr_tty=stderr_tty,
            width=width,
            buffers=(out, err),
            **_styles(environ, stdout_tty, stderr_tty),
        )

    def captured(self) -> tuple[bytes, bytes]:
        """(stdout, stderr) bytes written so far; a for_test terminal only."""
        assert self.buffers is not None, "captured() is for Terminal.for_test terminals"
        self.stderr.flush()
        return self.buffers[0].getvalue(), self.buffers[1].getvalue()

    @property
    def spinner(self) -> bool:
        """A spinner draws on stderr, and only when the person is watching both streams."""
        return self.stdout_tty and self.stderr_tty and not self.dumb

    def read_stdin(self) -> bytes:
        if self.stdin is None:
            return b""
        try:
            return self.stdin.read()
        except (OSError, ValueError):
            return b""

    def write_out(self, data: bytes) -> None:
        """Data on stdout, flushed at once (a reader sees it live). A closed stdout raises
        BrokenPipeError, which the run ladder turns into exit 141."""
        try:
            self.stdout.write(data)
            self.stdout.flush()
        except ValueError:  # stdout closed under us
            raise BrokenPipeError from None
        except BrokenPipeError:
            raise
        except OSError as exc:  # ENOSPC (/dev/full), EIO: a failure to say, not a reader that left
            raise OutputFailed(exc) from None

    def message(self, text: str, style: str | None = None) -> None:
        """One line on stderr, styled only when stderr is a colour terminal; a closed stderr is
        never a failure."""
        if style and self.colour:
            text = f"{_SGR[style]}{text}\x1b[0m"
        try:
            self.stderr.write(text + "\n")
            self.stderr.flush()
        except (OSError, ValueError):
            pass

    def console(self, stream: str = "stderr", **options: Any) -> Any:
        """A Rich console on stdout or stderr that never interprets markup, emoji codes or
        highlighting in what it prints; colour only when that stream is a colour terminal."""
        from rich.console import Console

        on_stdout = stream == "stdout"
        file: IO[str] = self.stdout_text if on_stdout else self.stderr
        tty = self.stdout_tty if on_stdout else self.stderr_tty
        colour = self.stdout_colour if on_stdout else self.colour
        settings: dict[str, Any] = {
            "file": file,
            "force_terminal": tty,
            "no_color": not colour,
            "color_system": ("standard" if colour else None) if tty else None,
            "markup": False,
            "highlight": False,
            "emoji": False,
            "width": self.width,
        }
        settings.update(options)
        return Console(**settings)


def _styles(env: Mapping[str, str], stdout_tty: bool, stderr_tty: bool) -> dict[str, Any]:
    dumb = env.get("TERM", "") == "dumb"
    no_colour = env.get("NO_COLOR", "") != ""
    return {
        "colour": stderr_tty and not no_colour and not dumb,
        "stdout_colour": stdout_tty and not no_colour and not dumb,
        "dumb": dumb,
    }


def _isatty(stream: object) -> bool:
    try:
        return bool(stream is not None and stream.isatty())  # type: ignore[attr-defined]
    except (ValueError, OSError):
        return False
