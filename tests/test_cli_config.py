"""Configuration: base URL, API key, model, timeout, from the environment and from flags.

README "Configuration": flags override environment variables; the key comes from the environment
only, is never printed and never follows a redirect to another host; a malformed base URL is an
error before any request; a key over plain http:// to a non-loopback host draws a warning.
"""

from __future__ import annotations

import pytest

from tests.cliutil import COMPLETIONS, KEY, MODELS, assert_failure, closed_port, env_for, text_reply
from tests.helpers import REPO_ROOT, run_acs, run_acs_process
from tests.sse_server import Reply, ScriptedServer

OK_TEXT = ["Hello", ", world"]


@pytest.fixture
def other_server():
    srv = ScriptedServer()
    try:
        yield srv
    finally:
        srv.close()


def serve_ok(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(OK_TEXT))


# ------------------------------------------------------------------------------------ base URL


def test_env_base_url_sends_to_base_completions(server: ScriptedServer) -> None:
    serve_ok(server)
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello, world"
    assert [(q.method, q.path) for q in server.requests] == [("POST", "/v1/completions")]


def test_base_url_with_a_longer_path_and_trailing_slash(server: ScriptedServer) -> None:
    server.route("POST", "/proxy/v1/completions", text_reply(OK_TEXT))
    r = run_acs(["complete", "hi"], env=env_for(None, ACS_API_BASE=server.origin + "/proxy/v1/"))
    assert r.returncode == 0, r.stderr
    assert [q.path for q in server.requests] == ["/proxy/v1/completions"]


def test_base_url_flag_wins_over_env(server: ScriptedServer, other_server: ScriptedServer) -> None:
    serve_ok(server)
    serve_ok(other_server)
    r = run_acs(["complete", "--base-url", server.base_url, "hi"], env=env_for(other_server))
    assert r.returncode == 0, r.stderr
    assert len(server.requests) == 1
    assert other_server.requests == []


def test_base_url_flag_alone(server: ScriptedServer) -> None:
    serve_ok(server)
    r = run_acs(["complete", "--base-url", server.base_url, "hi"], env=env_for(None))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello, world"


@pytest.mark.parametrize(
    "base",
    ["localhost:8000/v1", "http://exa mple.com/v1", "ftp://x", "http://", "https:///v1", "http://h:99999/v1", "   "],
)
@pytest.mark.parametrize("how", ["env", "flag"])
def test_malformed_base_url_is_config_error_before_any_request(server: ScriptedServer, base: str, how: str) -> None:
    serve_ok(server)
    server.route("GET", MODELS, Reply.json(200, {"object": "list", "data": [{"id": "m"}]}))
    if how == "env":
        r = run_acs(["complete", "hi"], env={"ACS_API_BASE": base})
    else:
        r = run_acs(["complete", "--base-url", base, "hi"], env={"ACS_API_BASE": server.base_url})
    message, hint = assert_failure(r, 3)
    assert ("ACS_API_BASE" if how == "env" else "--base-url") in message
    assert "ACS_API_BASE" in hint or "--base-url" in hint
    assert server.requests == []
    assert r.stdout == ""


# ------------------------------------------------------------------------------------ API key


def test_key_is_sent_as_bearer(server: ScriptedServer) -> None:
    serve_ok(server)
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_API_KEY=KEY))
    assert r.returncode == 0, r.stderr
    assert server.requests[0].headers.get("authorization") == f"Bearer {KEY}"
    assert KEY not in r.stdout + r.stderr


def test_key_is_sent_on_the_models_request_too(server: ScriptedServer) -> None:
    serve_ok(server)
    server.route("GET", MODELS, Reply.json(200, {"object": "list", "data": [{"id": "only"}]}))
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_API_KEY=KEY, ACS_MODEL=None))
    assert r.returncode == 0, r.stderr
    assert [q.headers.get("authorization") for q in server.requests] == [f"Bearer {KEY}"] * 2


def test_no_key_no_authorization_header(server: ScriptedServer) -> None:
    serve_ok(server)
    r = run_acs(["complete", "hi"], env=env_for(server))
    assert r.returncode == 0, r.stderr
    assert "authorization" not in server.requests[0].headers


@pytest.mark.parametrize("flag", [["--api-key", KEY], [f"--api-key={KEY}"], ["--key", KEY]])
def test_no_flag_accepts_the_key(server: ScriptedServer, flag: list[str]) -> None:
    serve_ok(server)
    r = run_acs(["complete", *flag, "hi"], env=env_for(server))
    assert r.returncode == 2, r.stderr
    assert server.requests == []
    assert "Traceback" not in r.stderr


def test_api_key_flag_is_a_usage_error_in_the_documented_shape(server: ScriptedServer) -> None:
    """README: every failure prints `acs: error: …` and a `hint:` line; an unknown flag is exit 2."""
    r = run_acs(["complete", "--api-key", KEY, "hi"], env=env_for(server))
    assert_failure(r, 2)
    assert KEY not in r.stdout + r.stderr


def test_help_mentions_no_key_option() -> None:
    r = run_acs(["complete", "--help"])
    assert r.returncode == 0
    assert "--api-key" not in r.stdout and "--key" not in r.stdout


def _assert_key_hidden(r) -> None:
    assert KEY not in r.stdout, r.stdout
    assert KEY not in r.stderr, r.stderr
    assert KEY[-8:] not in r.stdout + r.stderr  # not even a tail of it


def test_key_not_shown_on_401(server: ScriptedServer) -> None:
    server.route(
        "POST",
        COMPLETIONS,
        Reply.json(401, {"error": {"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}}),
    )
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_API_KEY=KEY))
    assert_failure(r, 6)
    _assert_key_hidden(r)


def test_key_not_shown_on_401_with_raw(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.json(401, {"error": "Unauthorized"}))
    r = run_acs(["complete", "--raw", "-i", "hi"], env=env_for(server, ACS_API_KEY=KEY))
    assert_failure(r, 6)
    _assert_key_hidden(r)


def test_key_not_shown_on_connect_error() -> None:
    base = f"http://127.0.0.1:{closed_port()}/v1"
    r = run_acs(["complete", "--retries", "0", "hi"], env={"ACS_API_BASE": base, "ACS_MODEL": "m", "ACS_API_KEY": KEY})
    assert_failure(r, 4)
    _assert_key_hidden(r)


@pytest.mark.parametrize("base", ["localhost:8000/v1", "http://exa mple.com", "http://"])
def test_key_not_shown_on_bad_url(base: str) -> None:
    r = run_acs(["complete", "hi"], env={"ACS_API_BASE": base, "ACS_API_KEY": KEY})
    assert_failure(r, 3)
    _assert_key_hidden(r)


@pytest.mark.parametrize("suffix", ["\r\nX-Evil: 1", "\nX-Evil: 1"])
def test_key_with_a_line_break_never_injects_a_header(server: ScriptedServer, suffix: str) -> None:
    """A key holding CR/LF (a paste gone wrong, or a hostile environment) must not split the
    Authorization header into two: acs refuses it (configuration, exit 3, key not shown) or
    sends no such header; the server never sees an injected `X-Evil` header."""
    serve_ok(server)
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_API_KEY=KEY + suffix))
    _assert_key_hidden(r)
    for q in server.requests:
        assert "x-evil" not in q.headers, q.headers
        assert not any(c in q.headers.get("authorization", "") for c in "\r\n"), q.headers
    if r.returncode != 0:
        assert_failure(r, 3)
        assert server.requests == []


SITECUSTOMIZE = """
import os
import acs_cli.api as api

def open_completion(self, body, **kw):
    headers = dict(self.client.headers)
    if os.environ.get("ACS_DEBUG"):
        raise RuntimeError("unexpected: injected fault")
    # an unexpected failure whose text carries the request's headers, as some library errors do
    raise RuntimeError("unexpected: headers were " + repr(headers))

api.Api.open_completion = open_completion
"""


@pytest.mark.parametrize("debug", [None, "1"])
def test_key_not_shown_on_internal_error(server: ScriptedServer, tmp_path, debug: str | None) -> None:
    """An internal error (exit 1, injected with a sitecustomize module) is one line about a bug
    and a hint. acs knows the key, so it must not print it even when the exception's text holds
    the Authorization header. With ACS_DEBUG=1 the traceback is shown: it holds no locals, so no
    key either."""
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    serve_ok(server)
    env = env_for(server, ACS_API_KEY=KEY, ACS_DEBUG=debug, PYTHONPATH=f"{tmp_path}:{REPO_ROOT}")
    r = run_acs_process(["complete", "hi"], env=env)
    assert r.returncode == 1, r.stderr
    assert "unexpected" in r.stderr  # the injected fault did fire
    if debug is None:
        assert "Traceback" not in r.stderr
        assert "hint: " in r.stderr
    _assert_key_hidden(r)


# ------------------------------------------------------------------------------------ plain-http warning
# A non-loopback host that cannot be reached: a name under .invalid (RFC 6761) fails at the name
# lookup, so no connection to any other machine is ever tried.

WARNING = "warning: the key from ACS_API_KEY is sent over plain http://"  # names where the key came from


def test_plain_http_key_to_remote_host_warns() -> None:
    env = {"ACS_API_BASE": "http://acs-test.invalid:1/v1", "ACS_MODEL": "m", "ACS_API_KEY": KEY}
    r = run_acs(["complete", "--retries", "0", "hi"], env=env)
    assert WARNING in r.stderr
    assert "acs-test.invalid" in r.stderr
    assert_failure(r, 4)
    # the warning comes first, then the error
    assert r.stderr.index(WARNING) < r.stderr.index("acs: error: ")


def test_plain_http_without_key_does_not_warn() -> None:
    env = {"ACS_API_BASE": "http://acs-test.invalid:1/v1", "ACS_MODEL": "m"}
    r = run_acs(["complete", "--retries", "0", "hi"], env=env)
    assert "warning" not in r.stderr
    assert_failure(r, 4)


def test_https_key_to_remote_host_does_not_warn() -> None:
    env = {"ACS_API_BASE": "https://acs-test.invalid:1/v1", "ACS_MODEL": "m", "ACS_API_KEY": KEY}
    r = run_acs(["complete", "--retries", "0", "hi"], env=env)
    assert "warning" not in r.stderr
    assert_failure(r, 4)


def test_loopback_ip_does_not_warn(server: ScriptedServer) -> None:
    serve_ok(server)
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_API_KEY=KEY))
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr


def test_localhost_name_does_not_warn(server: ScriptedServer) -> None:
    serve_ok(server)
    base = f"http://localhost:{server.port}/v1"
    r = run_acs(["complete", "hi"], env={"ACS_API_BASE": base, "ACS_MODEL": "m", "ACS_API_KEY": KEY})
    assert "warning" not in r.stderr
    assert r.returncode in (0, 4), r.stderr  # localhost may resolve to ::1 first, where nobody listens


# ------------------------------------------------------------------------------------ redirects


def test_redirect_to_another_origin_drops_the_key(server: ScriptedServer, other_server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(307, "Temporary Redirect", headers=[("location", other_server.url(COMPLETIONS))], end="length"))
    serve_ok(other_server)
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_API_KEY=KEY))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello, world"
    assert server.requests[0].headers.get("authorization") == f"Bearer {KEY}"
    assert len(other_server.requests) == 1
    moved = other_server.requests[0]
    assert "authorization" not in moved.headers
    assert moved.method == "POST"
    assert moved.json()["prompt"] == "hi"  # 307 keeps the method and the body
    _assert_key_hidden(r)


def test_redirect_within_the_same_origin_keeps_the_key(server: ScriptedServer) -> None:
    server.route("POST", "/old/v1/completions", Reply(307, "Temporary Redirect", headers=[("location", COMPLETIONS)], end="length"))
    serve_ok(server)
    r = run_acs(["complete", "hi"], env=env_for(None, ACS_API_BASE=server.origin + "/old/v1", ACS_API_KEY=KEY))
    assert r.returncode == 0, r.stderr
    assert [q.path for q in server.requests] == ["/old/v1/completions", COMPLETIONS]
    assert [q.headers.get("authorization") for q in server.requests] == [f"Bearer {KEY}"] * 2


def test_redirect_of_models_request_to_another_origin_drops_the_key(
    server: ScriptedServer, other_server: ScriptedServer
) -> None:
    server.route("GET", MODELS, Reply(302, "Found", headers=[("location", other_server.url(MODELS))], end="length"))
    other_server.route("GET", MODELS, Reply.json(200, {"object": "list", "data": [{"id": "only"}]}))
    serve_ok(server)
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_API_KEY=KEY, ACS_MODEL=None))
    assert r.returncode == 0, r.stderr
    assert "authorization" not in other_server.requests[0].headers
    assert server.requests[-1].json()["model"] == "only"


# ------------------------------------------------------------------------------------ model


def test_env_model(server: ScriptedServer) -> None:
    serve_ok(server)
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_MODEL="from-env"))
    assert r.returncode == 0, r.stderr
    assert server.requests[0].json()["model"] == "from-env"
    assert all(q.path != MODELS for q in server.requests)


@pytest.mark.parametrize("flag", ["-m", "--model"])
def test_model_flag_wins_over_env(server: ScriptedServer, flag: str) -> None:
    serve_ok(server)
    r = run_acs(["complete", flag, "from-flag", "hi"], env=env_for(server, ACS_MODEL="from-env"))
    assert r.returncode == 0, r.stderr
    assert [q.path for q in server.requests] == [COMPLETIONS]
    assert server.requests[0].json()["model"] == "from-flag"


def test_no_model_uses_the_servers_only_model(server: ScriptedServer) -> None:
    serve_ok(server)
    server.route("GET", MODELS, Reply.json(200, {"object": "list", "data": [{"id": "meta-llama/Llama-3.1-8B", "object": "model"}]}))
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_MODEL=None))
    assert r.returncode == 0, r.stderr
    assert [(q.method, q.path) for q in server.requests] == [("GET", MODELS), ("POST", COMPLETIONS)]
    assert server.requests[1].json()["model"] == "meta-llama/Llama-3.1-8B"


def test_empty_model_env_counts_as_unset(server: ScriptedServer) -> None:
    serve_ok(server)
    server.route("GET", MODELS, Reply.json(200, {"object": "list", "data": [{"id": "only"}]}))
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_MODEL=""))
    assert r.returncode == 0, r.stderr
    assert server.requests[-1].json()["model"] == "only"


def test_no_model_and_several_served_is_config_error_listing_them(server: ScriptedServer) -> None:
    serve_ok(server)
    server.route("GET", MODELS, Reply.json(200, {"object": "list", "data": [{"id": "alpha-7b"}, {"id": "beta-13b"}, {"id": "gamma"}]}))
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_MODEL=None))
    message, hint = assert_failure(r, 3)
    for name in ("alpha-7b", "beta-13b", "gamma"):
        assert name in message
    assert "--model" in hint or "ACS_MODEL" in hint
    assert [q.path for q in server.requests] == [MODELS]


def test_no_model_and_none_served_is_config_error(server: ScriptedServer) -> None:
    serve_ok(server)
    server.route("GET", MODELS, Reply.json(200, {"object": "list", "data": []}))
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_MODEL=None))
    message, hint = assert_failure(r, 3)
    assert "--model" in hint or "ACS_MODEL" in hint
    assert [q.path for q in server.requests] == [MODELS]


def test_no_model_with_raw_also_picks_the_only_model(server: ScriptedServer) -> None:
    serve_ok(server)
    server.route("GET", MODELS, Reply.json(200, {"object": "list", "data": [{"id": "only"}]}))
    r = run_acs(["complete", "--raw", "hi"], env=env_for(server, ACS_MODEL=None))
    assert r.returncode == 0, r.stderr
    assert server.requests[-1].json()["model"] == "only"


# ------------------------------------------------------------------------------------ timeout


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", ""])
def test_invalid_timeout_env_is_config_error(server: ScriptedServer, value: str) -> None:
    serve_ok(server)
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_TIMEOUT=value))
    message, hint = assert_failure(r, 3)
    assert "ACS_TIMEOUT" in message
    assert "timeout" in hint.lower()
    assert server.requests == []


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "1s"])
def test_invalid_timeout_flag_is_config_error(server: ScriptedServer, value: str) -> None:
    """README exit table: 3 = configuration: malformed base URL or timeout (flag or variable)."""
    serve_ok(server)
    r = run_acs(["complete", f"--timeout={value}", "hi"], env=env_for(server))
    message, hint = assert_failure(r, 3)
    assert "--timeout" in message
    assert server.requests == []


def test_infinite_timeout_is_no_internal_error(server: ScriptedServer) -> None:
    """`ACS_TIMEOUT=inf` is either refused as configuration (3) or means no limit (0): exit 1 is
    documented as a bug in acs."""
    serve_ok(server)
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_TIMEOUT="inf"))
    assert "internal error" not in r.stderr, r.stderr
    assert r.returncode in (0, 3), r.stderr
    if r.returncode == 3:
        assert_failure(r, 3)


def test_valid_timeout_flag_wins_over_invalid_env(server: ScriptedServer) -> None:
    serve_ok(server)
    r = run_acs(["complete", "--timeout", "5", "hi"], env=env_for(server, ACS_TIMEOUT="abc"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello, world"


def test_env_timeout_is_used(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, text_reply(OK_TEXT, first_delay=2.5))
    r = run_acs(["complete", "hi"], env=env_for(server, ACS_TIMEOUT="1"))
    message, hint = assert_failure(r, 5)
    assert "1 s" in message


# ------------------------------------------------------------------------------------ acs models
# (the command the 404 hint points at; its help: "a table on a terminal, one id per line when piped")

MODEL_LIST = {"object": "list", "data": [{"id": "alpha-7b", "object": "model"}, {"id": "beta-13b", "object": "model"}]}


def test_models_piped_prints_one_id_per_line(server: ScriptedServer) -> None:
    server.route("GET", MODELS, Reply.json(200, MODEL_LIST))
    r = run_acs(["models"], env=env_for(server, ACS_API_KEY=KEY, ACS_MODEL=None))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["alpha-7b", "beta-13b"]
    assert server.requests[0].headers.get("authorization") == f"Bearer {KEY}"
    _assert_key_hidden(r)


def test_models_json(server: ScriptedServer) -> None:
    import json

    server.route("GET", MODELS, Reply.json(200, MODEL_LIST))
    r = run_acs(["models", "--json", "--base-url", server.base_url])
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    text = json.dumps(shown)
    assert "alpha-7b" in text and "beta-13b" in text


def test_models_failure_has_the_documented_shape(server: ScriptedServer) -> None:
    server.route("GET", MODELS, Reply.json(401, {"error": "Unauthorized"}))
    r = run_acs(["models"], env=env_for(server, ACS_API_KEY=KEY))
    _, hint = assert_failure(r, 6)
    assert "ACS_API_KEY" in hint
    _assert_key_hidden(r)


def test_http_proxy_from_the_environment_carries_the_request(server: ScriptedServer) -> None:
    """With HTTP_PROXY set, the request goes to the proxy in absolute form (httpx's own transport)."""
    upstream = "http://upstream.invalid:8000/v1"
    server.route("POST", f"{upstream}/completions", text_reply([" via", " proxy"]))
    r = run_acs(
        ["complete", "-m", "m", "hi"],
        env={"ACS_API_BASE": upstream, "HTTP_PROXY": f"http://127.0.0.1:{server.port}"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == " via proxy"
    assert server.requests[0].target == f"{upstream}/completions"


def test_no_proxy_bypasses_the_proxy(server: ScriptedServer) -> None:
    server.route("POST", "/v1/completions", text_reply([" direct"]))
    r = run_acs(
        ["complete", "-m", "m", "hi"],
        env={"ACS_API_BASE": server.base_url, "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == " direct"
