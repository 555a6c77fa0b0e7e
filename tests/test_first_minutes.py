"""A newcomer's first five minutes, in the order they happen: `acs` alone, the sample with no
server, a typo, the first request against a server that is not there, the help of a command."""

from __future__ import annotations

import re

import pytest

from tests.cliutil import assert_failure
from tests.helpers import run_acs

NOWHERE = {"ACS_BASE_URL": "http://127.0.0.1:9/v1"}  # the discard port: nothing listens


def test_acs_alone_shows_the_first_steps_and_exits_2() -> None:
    r = run_acs([], stdin_tty=True)
    assert r.returncode == 2
    assert r.stdout == ""  # help asked for by mistake is a message, not data
    assert "First steps:" in r.stderr
    for step in ("acs replay", "ACS_BASE_URL=", "acs doctor"):
        assert step in r.stderr


def test_the_sample_works_without_a_server() -> None:
    r = run_acs(["replay", "--delay", "0"], env=NOWHERE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(" It’s fast.")
    assert "9 prompt + 80 completion = 89 tokens" in r.stderr


@pytest.mark.parametrize("typo, meant", [("complate", "complete"), ("replya", "replay"), ("doctr", "doctor"), ("model", "models")])
def test_a_mistyped_command_names_the_right_one(typo: str, meant: str) -> None:
    r = run_acs([typo, "hi"])
    message, hint = assert_failure(r, 2)
    assert f"'{meant}'" in message
    assert "`acs --help` lists the commands" in hint


@pytest.mark.parametrize("args, meant", [(["complete", "--max-tokns", "3", "hi"], "--max-tokens"), (["replay", "--dealy", "1"], "--delay")])
def test_a_mistyped_option_names_the_right_one_and_the_help_with_examples(args: list[str], meant: str) -> None:
    r = run_acs(args)
    message, hint = assert_failure(r, 2)
    assert meant in message
    assert f"`acs {args[0]} --help` lists its options, with examples" in hint
    assert run_acs([args[0], "--help"]).stdout.count("\nExamples:\n") == 1


def test_the_first_request_without_a_server_says_what_to_do() -> None:
    r = run_acs(["complete", "--retries", "0", "hi"], env=NOWHERE)
    message, hint = assert_failure(r, 4)
    assert "127.0.0.1:9" in message
    assert "ACS_API_BASE" in hint or "ACS_BASE_URL" in hint


def test_a_prompt_is_asked_for_with_an_example() -> None:
    r = run_acs(["complete"], env=NOWHERE, stdin_tty=True)
    _, hint = assert_failure(r, 2)
    assert re.search(r'acs complete "[^"]+"', hint)


@pytest.mark.parametrize("columns", ["40", "60", "120"])
def test_help_reads_on_any_terminal_width(columns: str) -> None:
    r = run_acs(["complete", "--help"], env={"COLUMNS": columns})
    assert r.returncode == 0, r.stderr
    assert "Request:" in r.stdout and "Examples:" in r.stdout
    help_lines = [line for line in r.stdout.split("\nExamples:\n")[0].splitlines()]
    assert all(len(line) <= max(int(columns), 50) for line in help_lines), "Click wraps the option help to the terminal"
