"""The error mapping and the wording of issue 10 through acs: raw-socket servers sending exact
bytes (a chunk framing broken mid-stream, plain http behind https://, a proxy that refuses or
wants credentials), names that do not resolve, retries said on the spinner or on stderr."""

from __future__ import annotations

import pytest

from acs_cli.outcome import Outcome
from acs_cli.sinks.summary import usage_line
from tests.cliutil import KEY, ExactAnswers, assert_failure, closed_port, env_for, text_reply
from tests.helpers import run_acs
from tests.sse_server import Reply, ScriptedServer

NOWHERE = "acs-test.invalid"  # RFC 2606: never resolves
FRAME = b'data: {"choices":[{"index":0,"text":"Hello"}]}\n\n'






CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
FIRST_CHUNK = b"%x\r\n" % len(FRAME) + FRAME + b"\r\n"


def env_at(base: str, **extra: str | None) -> dict[str, str | None]:
    return {"ACS_BASE_URL": base, "ACS_MODEL": "m", **extra}


# --------------------------------------------------------------------------- framing mid-body


def test_a_chunk_framing_broken_mid_stream_is_a_protocol_error() -> None:
    with ExactAnswers(CHUNKED_HEAD + FIRST_CHUNK, b"zz\r\nnot a chunk\r\n", pause=0.2) as srv:
        r = run_acs(["complete", "hi"], env=env_at(srv.base_url))
    message, hint = assert_failure(r, 11)
    assert r.stdout == "Hello"
    assert "malformed" in message and "incomplete" not in message
    assert "text so far is kept" in hint


def test_a_chunk_framing_broken_mid_body_with_raw_is_a_protocol_error() -> None:
    with ExactAnswers(CHUNKED_HEAD + FIRST_CHUNK, b"zz\r\nnot a chunk\r\n", pause=0.2) as srv:
        r = run_acs(["complete", "--raw", "hi"], env=env_at(srv.base_url))
    message, hint = assert_failure(r, 11)
    assert r.stdout_bytes == FRAME  # the body received (de-chunked, as curl -N shows it) is on stdout
    assert "malformed" in message and "mid-body" in message


def test_a_connection_closed_mid_chunk_is_still_incomplete() -> None:
    with ExactAnswers(CHUNKED_HEAD + FIRST_CHUNK, b"40\r\ndata: {", pause=0.2) as srv:
        r = run_acs(["complete", "hi"], env=env_at(srv.base_url))
    message, _ = assert_failure(r, 10)
    assert r.stdout == "Hello" and "incomplete" in message


# --------------------------------------------------------------------------- TLS and DNS


def test_https_against_a_plain_http_port_says_to_use_http_and_is_not_retried() -> None:
    with ExactAnswers(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n", whole=False) as plain:
        r = run_acs(["complete", "--retries", "2", "hi"], env=env_at(f"https://127.0.0.1:{plain.port}/v1"))
        accepted = plain.accepted
    message, hint = assert_failure(r, 4)
    assert "does not speak TLS" in message
    assert "use http://" in hint and "certificate" not in hint.lower()
    assert accepted == 1 and "retrying" not in r.stderr and "attempts" not in message


def test_a_name_that_does_not_resolve_is_not_retried() -> None:
    r = run_acs(["complete", "--retries", "2", "hi"], env=env_at(f"http://{NOWHERE}/v1"))
    message, hint = assert_failure(r, 4)
    assert "cannot resolve" in message and NOWHERE in message
    assert "host name" in hint and "ACS_BASE_URL" in hint
    assert "retrying" not in r.stderr and "attempts" not in message


# --------------------------------------------------------------------------- retries said


def test_retries_are_one_line_each_on_stderr_when_it_is_not_a_terminal() -> None:
    r = run_acs(["complete", "--retries", "2", "hi"], env=env_at(f"http://127.0.0.1:{closed_port()}/v1"))
    message, _ = assert_failure(r, 4)
    notices = [line for line in r.stderr.splitlines() if "retrying" in line]
    assert len(notices) == 2, r.stderr
    assert notices[0].startswith("acs: connection refused, retrying (2/3) in ") and notices[0].endswith(" s…")
    assert notices[1].startswith("acs: connection refused, retrying (3/3) in ")
    assert "after 3 attempts" in message


def test_a_retried_status_is_said_with_its_phrase(server: ScriptedServer) -> None:
    busy = Reply.json(503, {"error": {"message": "busy"}}, headers=[("content-type", "application/json"), ("retry-after", "0")])
    server.route("POST", "/v1/completions", [busy, text_reply(["fine"])])
    r = run_acs(["complete", "--retries", "1", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "fine"
    assert "acs: HTTP 503 Service Unavailable, retrying (2/2) in 0.0 s…" in r.stderr.splitlines()


def test_retries_are_said_on_the_spinner_on_a_terminal(server: ScriptedServer) -> None:
    busy = Reply.json(503, {"error": {"message": "busy"}}, headers=[("content-type", "application/json"), ("retry-after", "0.4")])
    server.route("POST", "/v1/completions", [busy, text_reply(["fine"])])
    r = run_acs(["complete", "--retries", "1", "hi"], env=env_for(server, TERM="xterm-256color"), stdout_tty=True, stderr_tty=True)
    assert r.returncode == 0, r.stderr
    assert "HTTP 503 Service Unavailable, retrying (2/2) in 0.4 s…" in r.stderr  # the spinner's label
    assert "acs: HTTP 503" not in r.stderr  # not a line of its own under the spinner


def test_no_retry_is_said_when_none_happens(server: ScriptedServer) -> None:
    server.route("POST", "/v1/completions", text_reply(["fine"]))
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert r.returncode == 0 and "retrying" not in r.stderr


# --------------------------------------------------------------------------- proxies


def test_a_refused_proxy_is_named_with_the_way_around_it() -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"
    r = run_acs(["complete", "--retries", "0", "hi"], env=env_at("http://api.example.test/v1", HTTP_PROXY=proxy, NO_PROXY=None))
    message, hint = assert_failure(r, 4)
    assert f"the proxy {proxy}" in message and "refused" in message.lower()
    assert "NO_PROXY=api.example.test" in hint


def test_a_proxy_whose_name_does_not_resolve_is_named() -> None:
    proxy = f"http://{NOWHERE}:3128"
    r = run_acs(["complete", "--retries", "2", "hi"], env=env_at("http://api.example.test/v1", HTTP_PROXY=proxy, NO_PROXY=None))
    message, hint = assert_failure(r, 4)
    assert f"cannot resolve the proxy {proxy}" in message
    assert "NO_PROXY" in hint and "retrying" not in r.stderr


def test_a_proxy_password_is_never_shown() -> None:
    proxy = f"http://user:pa55word@127.0.0.1:{closed_port()}"
    r = run_acs(["complete", "--retries", "0", "hi"], env=env_at("http://api.example.test/v1", HTTP_PROXY=proxy, NO_PROXY=None))
    assert_failure(r, 4)
    assert "pa55word" not in r.stderr


PROXY_407 = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def test_a_proxy_asking_for_credentials_for_http_is_named() -> None:
    with ExactAnswers(PROXY_407) as proxy:
        r = run_acs(["complete", "--retries", "0", "hi"], env=env_at("http://api.example.test/v1", HTTP_PROXY=f"http://127.0.0.1:{proxy.port}", NO_PROXY=None))
    message, hint = assert_failure(r, 7)
    assert "407" in message
    assert f"the proxy http://127.0.0.1:{proxy.port}" in hint and "credentials" in hint and "NO_PROXY=api.example.test" in hint


def test_a_proxy_refusing_the_tunnel_for_https_is_named() -> None:
    with ExactAnswers(PROXY_407) as proxy:
        r = run_acs(["complete", "--retries", "0", "hi"], env=env_at("https://api.example.test/v1", HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}", NO_PROXY=None))
    message, hint = assert_failure(r, 4)
    assert f"the proxy http://127.0.0.1:{proxy.port}" in message and "407" in message
    assert "credentials" in hint and "NO_PROXY=api.example.test" in hint


# --------------------------------------------------------------------------- wording


@pytest.mark.parametrize("status, phrase", [(501, "Not Implemented"), (505, "HTTP Version Not Supported")])
def test_statuses_a_retry_cannot_mend_do_not_say_retry_later(server: ScriptedServer, status: int, phrase: str) -> None:
    server.route("POST", "/v1/completions", Reply.json(status, {"error": {"message": phrase}}))
    r = run_acs(["complete", "--retries", "2", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 8)
    assert str(status) in message and "retry" not in hint
    assert len(server.requests) == 1


def test_the_plain_http_key_warning_names_where_the_key_came_from() -> None:
    # OPENAI_API_KEY is used with the base URL it belongs to (OPENAI_BASE_URL)
    r = run_acs(["complete", "--retries", "0", "hi"], env={"OPENAI_BASE_URL": f"http://{NOWHERE}/v1", "OPENAI_API_KEY": KEY, "ACS_MODEL": "m"})
    assert_failure(r, 4)
    warning = next(line for line in r.stderr.splitlines() if "plain http://" in line)
    assert "the key from OPENAI_API_KEY" in warning and "ACS_API_KEY" not in warning
    assert KEY not in r.stderr


def test_no_usage_line_when_no_server_answered() -> None:
    r = run_acs(["complete", "--retries", "0", "hi"], env=env_at(f"http://127.0.0.1:{closed_port()}/v1"))
    assert_failure(r, 4)
    assert "usage" not in r.stderr and "reported" not in r.stderr


def test_no_usage_line_when_the_server_never_answered_in_time() -> None:
    with ExactAnswers(b"", b"", pause=3) as silent:
        r = run_acs(["complete", "--retries", "0", "--timeout", "0.5", "hi"], env=env_at(silent.base_url))
    assert_failure(r, 5)
    assert "reported" not in r.stderr


def test_the_usage_line_of_an_interrupt_before_any_answer_blames_no_server() -> None:
    from acs_cli.completion_state import CompletionState

    assert usage_line(Outcome(signal=2)) == "usage: none (interrupted before any answer) · interrupted"
    headers_only = Outcome(signal=2, state=CompletionState(1))  # the head came, no frame yet
    assert "reported" not in usage_line(headers_only)


# --------------------------------------------------------------------------- a model list cut short


@pytest.mark.parametrize(("end", "status"), [("abort", 10), ("hang", 5)])
@pytest.mark.parametrize("args", [["models"], ["complete", "hi"]], ids=["models", "model-lookup"])
def test_a_model_list_cut_or_stalled_mid_body_is_an_error_not_a_bug(server: ScriptedServer, end: str, status: int, args: list[str]) -> None:
    server.route("GET", "/v1/models", Reply(headers=[("content-type", "application/json")], segments=[b'{"data": [{"id'], end=end))
    r = run_acs(args, env={"ACS_API_BASE": server.base_url, "ACS_TIMEOUT": "1"})
    message, hint = assert_failure(r, status)
    assert "internal error" not in r.stderr and "stdout" not in hint
    assert r.stdout == ""
