"""Closed and failing standard streams (README "Exit status" 12 and 141), for every command: stdout
closed (`>&-`) or a reader that left (`| head -c1`) is 141 with nothing on stderr; a stdout that
cannot be written (`> /dev/full`) is 12 with one line; a closed stderr (`2>&-`) never turns a
success into a failure."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from tests.cliutil import COMPLETIONS, MODELS, env_for, text_reply
from tests.helpers import acs_env
from tests.sse_server import Reply, ScriptedServer

COMMANDS = [
    ["--version"],
    ["-V"],
    ["--help"],
    ["complete", "--help"],
    ["config", "path"],
    ["config", "show"],
    ["completion", "bash"],
    ["models"],
    ["models", "--json"],
    ["replay", "--delay", "0"],  # the bundled sample, unpaced
    ["replay", "--json", "--delay", "0"],
    ["doctor", "--json"],
    ["complete", "hi"],
    ["complete", "--json", "hi"],
    ["complete", "--jsonl", "hi"],
    ["complete", "--raw", "-i", "hi"],
    ["complete", "--logprobs-table", "hi"],
]
IDS = [" ".join(c) for c in COMMANDS]


@pytest.fixture(scope="module")
def served() -> ScriptedServer:
    server = ScriptedServer()
    server.route("POST", COMPLETIONS, text_reply(["hello ", "world"]))
    server.route("GET", MODELS, Reply.json(200, {"data": [{"id": "m"}]}))
    yield server
    server.close()


def run_with(args: list[str], server: ScriptedServer, shell: str, **popen) -> subprocess.CompletedProcess:
    """`python -m acs_cli ARGS` with its streams arranged by `shell` (a redirection for bash)."""
    with tempfile.TemporaryDirectory(prefix="acs-home-") as home:
        command = ["bash", "-c", f'exec "$@" {shell}', "bash", sys.executable, "-m", "acs_cli", *args]
        return subprocess.run(command, env=acs_env(env_for(server), home), cwd=home, stdin=subprocess.DEVNULL, timeout=60, **popen)


def err_lines(data: bytes) -> list[str]:
    return [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]


@pytest.mark.parametrize("args", COMMANDS, ids=IDS)
def test_closed_stdout_is_141_and_silent(served: ScriptedServer, args: list[str]) -> None:
    r = run_with(args, served, ">&-", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert r.returncode == 141, r.stderr
    assert r.stderr == b""


@pytest.mark.parametrize("args", COMMANDS, ids=IDS)
def test_a_reader_that_left_is_141_and_silent(served: ScriptedServer, args: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before acs writes a byte: every write is EPIPE
    try:
        r = run_with(args, served, "", stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert r.returncode == 141, r.stderr
    assert r.stderr == b""


@pytest.mark.parametrize("args", COMMANDS, ids=IDS)
def test_a_full_stdout_is_12_with_one_line(served: ScriptedServer, args: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        r = run_with(args, served, "", stdout=full, stderr=subprocess.PIPE)
    lines = err_lines(r.stderr)
    assert r.returncode == 12, r.stderr
    assert lines == ["acs: error: cannot write to stdout: No space left on device"]


@pytest.mark.parametrize("args", COMMANDS, ids=IDS)
def test_a_closed_stderr_is_not_a_failure(served: ScriptedServer, args: list[str]) -> None:
    r = run_with(args, served, "2>&-", stdout=subprocess.PIPE)
    assert r.returncode == 0
    assert r.stdout


@pytest.mark.parametrize("args", [["complete", "hi"], ["complete", "--json", "hi"], ["replay", "--delay", "0"], ["complete", "--logprobs-table", "hi"]], ids=str)
def test_a_full_stderr_is_not_a_failure(served: ScriptedServer, args: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        r = run_with(args, served, "", stdout=subprocess.PIPE, stderr=full)
    assert r.returncode == 0
    assert r.stdout


def test_closed_stdin_reads_no_prompt(served: ScriptedServer) -> None:
    r = run_with(["complete", "hi"], served, "<&-", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello world"


def test_nothing_lands_on_a_closed_stdout_descriptor(served: ScriptedServer, tmp_path) -> None:
    """With fd 1 closed, the first file or socket acs opens would take it: /dev/null takes it
    first, so no text is written into a config file or the server's socket."""
    (tmp_path / "config.toml").write_text('max_tokens = 9\n')
    with tempfile.TemporaryDirectory(prefix="acs-home-") as home:
        env = acs_env({**env_for(served), "ACS_CONFIG": str(tmp_path / "config.toml")}, home)
        command = ["bash", "-c", 'exec "$@" >&-', "bash", sys.executable, "-m", "acs_cli", "complete", "hi"]
        r = subprocess.run(command, env=env, cwd=home, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 141, r.stderr
    assert (tmp_path / "config.toml").read_text() == "max_tokens = 9\n"
    assert served.requests[-1].json()["max_tokens"] == 9


@pytest.mark.parametrize("args", [["--version"], ["complete", "hi"], ["complete", "--json", "hi"], ["replay", "--delay", "0"]], ids=str)
def test_stdout_and_stderr_both_closed(served: ScriptedServer, args: list[str]) -> None:
    r = run_with(args, served, ">&- 2>&-")
    assert r.returncode == 141
