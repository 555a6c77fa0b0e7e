"""Local bad input is a usage error (exit 2, README "Exit status"), never "internal error", and
nothing is sent: NaN and Infinity in every numeric flag and in --param (JSON has no such values),
numbers too long to carry, out-of-range seconds, and arguments that are not UTF-8 text (refused;
stdin is decoded leniently instead, its undecodable bytes sent as U+FFFD)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cliutil import COMPLETIONS, assert_failure, env_for, text_reply
from tests.helpers import acs_env, run_acs
from tests.sse_server import ScriptedServer

NON_FINITE = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999", "-1e999"]
FLOAT_FLAGS = ["--temperature", "-t", "--top-p", "--presence-penalty", "--frequency-penalty"]


@pytest.fixture
def ok(server: ScriptedServer) -> ScriptedServer:
    server.route("POST", COMPLETIONS, text_reply(["fine"]))
    return server


def refused(r, ok: ScriptedServer, *words: str) -> str:
    message, hint = assert_failure(r, 2)
    assert "internal error" not in r.stderr
    for word in words:
        assert word in message, message
    assert ok.requests == []
    return hint


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("flag", FLOAT_FLAGS)
def test_non_finite_float_flags(ok: ScriptedServer, flag: str, value: str) -> None:
    r = run_acs(["complete", f"{flag}={value}" if flag.startswith("--") else flag, *([] if flag.startswith("--") else [value]), "hi"], env=env_for(ok))
    refused(r, ok)
    assert "finite" in r.stderr


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "[1, NaN]", '{"a": {"b": 1e999}}', "[[Infinity]]"])
def test_non_finite_params(ok: ScriptedServer, value: str) -> None:
    r = run_acs(["complete", "--param", f"x={value}", "hi"], env=env_for(ok))
    refused(r, ok, "--param x")


def test_a_param_number_too_long_to_carry(ok: ScriptedServer) -> None:
    r = run_acs(["complete", "--param", "x=" + "7" * 5000, "hi"], env=env_for(ok))
    refused(r, ok, "--param x", "too long")
    assert len(r.stderr) < 1000  # the value is not echoed whole


def test_lowercase_nan_in_a_param_is_a_string(ok: ScriptedServer) -> None:
    """`nan` is not JSON, so (like any VALUE that is not) it is sent as the string it is."""
    r = run_acs(["complete", "--param", "x=nan", "hi"], env=env_for(ok))
    assert r.returncode == 0, r.stderr
    assert ok.requests[0].json()["x"] == "nan"


@pytest.mark.parametrize("flag", ["--max-tokens", "--seed", "--n", "--logprobs", "--retries", "--choice"])
@pytest.mark.parametrize("value", ["nan", "inf", "1e999", "1.5"])
def test_whole_number_flags(ok: ScriptedServer, flag: str, value: str) -> None:
    r = run_acs(["complete", flag, value, "hi"], env=env_for(ok))
    refused(r, ok)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "-1", "4000", "1e12"])
def test_replay_delay_out_of_range(value: str) -> None:
    r = run_acs(["replay", "--delay", value])
    message, _ = assert_failure(r, 2)
    assert "--delay" in message
    assert r.stdout == ""


def test_replay_delay_zero_is_fine() -> None:
    r = run_acs(["replay", "--delay", "0", "-q"])
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("value", ["1e10", "1e300"])
def test_a_max_time_too_long_to_reach_is_no_cap(ok: ScriptedServer, value: str) -> None:
    r = run_acs(["complete", "--max-time", value, "hi"], env=env_for(ok))
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------------ undecodable arguments

UNDECODABLE = ["caf\udce9", "\udcff", "ok \udc80\udc81 ok", "\udcc3"]  # what Python makes of bytes that are not UTF-8


@pytest.mark.parametrize("text", UNDECODABLE)
def test_an_undecodable_prompt_is_refused(ok: ScriptedServer, text: str) -> None:
    hint = refused(run_acs(["complete", text], env=env_for(ok)), ok, "the prompt", "not valid UTF-8", "byte 0x")
    assert "stdin" in hint and "iconv" in hint


def test_the_message_names_the_byte_and_where(ok: ScriptedServer) -> None:
    r = run_acs(["complete", "caf\udce9"], env=env_for(ok))
    refused(r, ok, "byte 0xe9 at character 4")


@pytest.mark.parametrize("text", UNDECODABLE)
@pytest.mark.parametrize("flag", ["--stop", "--param", "--model"])
def test_undecodable_flag_values_are_refused(ok: ScriptedServer, flag: str, text: str) -> None:
    value = f"k={text}" if flag == "--param" else text
    refused(run_acs(["complete", flag, value, "hi"], env=env_for(ok)), ok, flag, "not valid UTF-8")


def test_an_undecodable_param_key_is_refused(ok: ScriptedServer) -> None:
    refused(run_acs(["complete", "--param", "k\udcff=1", "hi"], env=env_for(ok)), ok, "--param")


def test_undecodable_bytes_from_a_real_command_line(ok: ScriptedServer, tmp_path) -> None:
    """The bytes as a shell passes them: Python decodes argv with surrogate escapes."""
    for arg in ([b"caf\xe9"], [b"--stop", b"\xff\xfe", b"hi"], [b"-p", b"k=\x80", b"hi"]):
        r = subprocess.run([sys.executable.encode(), b"-m", b"acs_cli", b"complete", *arg], env=acs_env(env_for(ok), tmp_path), capture_output=True, timeout=30, stdin=subprocess.DEVNULL, cwd=tmp_path)
        err = r.stderr.decode("utf-8", "replace")
        assert r.returncode == 2, err
        assert "not valid UTF-8" in err and "Traceback" not in err
    assert ok.requests == []


def test_undecodable_bytes_on_stdin_are_sent_as_replacement_characters(ok: ScriptedServer) -> None:
    r = run_acs(["complete"], env=env_for(ok), input=b"caf\xe9 \xff\n")
    assert r.returncode == 0, r.stderr
    assert ok.requests[0].json()["prompt"] == "caf\ufffd \ufffd"


def test_valid_non_ascii_arguments_pass(ok: ScriptedServer) -> None:
    r = run_acs(["complete", "--stop", "世界", "--param", "k=Grüße", "-m", "モデル", "Grüße 🦀"], env=env_for(ok))
    assert r.returncode == 0, r.stderr
    body = ok.requests[0].json()
    assert body["prompt"] == "Grüße 🦀" and body["stop"] == ["世界"] and body["k"] == "Grüße" and body["model"] == "モデル"
