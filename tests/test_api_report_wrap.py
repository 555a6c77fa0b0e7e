"""`acs: error:` and `hint:` lines (acs_cli.run.report): on a terminal they wrap at spaces with a
hanging indent under their text, never inside a word; piped, each stays one line."""

from __future__ import annotations

import pytest

from acs_cli.errors import ConnectError
from acs_cli.outcome import Outcome
from acs_cli.run import report
from acs_cli.terminal import Terminal
from tests.cliutil import assert_failure, closed_port
from tests.helpers import run_acs

LONG_PATH = "/v1/" + "deeply/nested/" * 4


def refused(columns: int, tty: bool):
    base = f"http://127.0.0.1:{closed_port()}{LONG_PATH}".rstrip("/")
    return run_acs(["complete", "--retries", "0", "hi"], env={"ACS_BASE_URL": base, "ACS_MODEL": "m", "COLUMNS": str(columns)}, stderr_tty=tty)


def blocks(stderr: str) -> tuple[list[str], list[str]]:
    """The error's lines and the hint's lines (each with its continuation lines)."""
    lines = stderr.rstrip("\n").split("\n")
    at_hint = next(i for i, line in enumerate(lines) if line.startswith("hint: "))
    at_error = next(i for i, line in enumerate(lines) if line.startswith("acs: error: "))
    return lines[at_error:at_hint], lines[at_hint:]


@pytest.mark.parametrize("columns", [40, 60, 80])
def test_on_a_terminal_the_error_and_hint_wrap_under_their_text(columns: int) -> None:
    r = refused(columns, tty=True)
    assert r.returncode == 4 and "Traceback" not in r.stderr
    error, hint = blocks(r.stderr)
    assert len(error) > 1, r.stderr  # the message is longer than the line
    for line in error + hint:
        assert len(line) <= columns or " " not in line.strip(), line  # only a word longer than the room overflows
    assert all(line.startswith(" " * 12) and line[12] != " " for line in error[1:]), error
    assert all(line.startswith(" " * 6) and line[6] != " " for line in hint[1:]), hint


@pytest.mark.parametrize("columns", [40, 60])
def test_wrapping_never_cuts_a_word(columns: int) -> None:
    on_tty = refused(columns, tty=True)
    piped = refused(columns, tty=False)
    message, hint = assert_failure(piped, 4)  # piped: one line each
    error, hint_lines = blocks(on_tty.stderr)
    port_free = [w for w in message.split() if "127.0.0.1" not in w]  # the port differs between runs
    wrapped_words = " ".join(line.strip() for line in error).split()
    assert [w for w in wrapped_words[2:] if "127.0.0.1" not in w] == port_free
    assert " ".join(line.strip() for line in hint_lines).split()[1:] == hint.split()


def test_piped_the_error_and_hint_stay_one_line_each_however_long() -> None:
    r = refused(40, tty=False)
    lines = r.stderr.rstrip("\n").split("\n")
    assert len(lines) == 2 and lines[0].startswith("acs: error: ") and lines[1].startswith("hint: ")
    assert len(lines[0]) > 40


def test_a_word_longer_than_the_line_gets_a_line_of_its_own() -> None:
    url = "https://example.test/" + "x" * 60
    term = Terminal.for_test(stderr_tty=True, width=40, env={"TERM": "dumb"})
    report(term, Outcome(error=ConnectError(f"cannot connect to {url}: refused", f"check {url} then retry")))
    _, err = term.captured()
    lines = err.decode().rstrip("\n").split("\n")
    assert lines[0] == "acs: error: cannot connect to"
    assert lines[1] == " " * 12 + url + ":"
    assert lines[2] == " " * 12 + "refused"
    assert lines[3] == "hint: check"
    assert lines[4] == " " * 6 + url
    assert lines[5] == " " * 6 + "then retry"


def test_a_short_error_on_a_terminal_is_unchanged() -> None:
    term = Terminal.for_test(stderr_tty=True, width=80, env={"TERM": "dumb"})
    report(term, Outcome(error=ConnectError("cannot connect", "start the server")))
    assert term.captured()[1] == b"acs: error: cannot connect\nhint: start the server\n"
