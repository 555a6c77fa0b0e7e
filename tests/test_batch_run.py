"""`acs batch` end to end against loopback servers that fail on purpose: every custom_id exactly
once with the text for its own prompt, retries only where they belong, several endpoints,
--ordered, --errors, --retry-failed, the exit statuses and what is said on stderr."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.batch_server import answer_text, completion_reply, cut_reply, http_error, read_results, serve
from tests.cliutil import ClosingListener
from tests.helpers import run_acs

JSON = [("content-type", "application/json")]


def prompts(n: int) -> list[str]:
    return [f"prompt number {i}" for i in range(n)]


def write_prompts(path: Path, items: list[str]) -> Path:
    path.write_text("".join(json.dumps({"custom_id": f"id-{i}", "prompt": p}) + "\n" for i, p in enumerate(items)))
    return path


def batch(tmp_path: Path, *args: str, timeout: float = 60, **kw):
    return run_acs(["batch", *args, "-m", "m"], timeout=timeout, cwd=tmp_path, **kw)


def by_id(results: list[dict]) -> dict[str, dict]:
    ids = [r["custom_id"] for r in results]
    assert len(ids) == len(set(ids)), "a custom_id appears twice"
    return {r["custom_id"]: r for r in results}


def text_of(result: dict) -> str:
    return result["response"]["body"]["choices"][0]["text"]


def index(prompt: str) -> int:
    return int(prompt.rsplit(" ", 1)[1])


def flaky(prompt: str, attempt: int):
    """429 + Retry-After, 503, cuts mid-stream on first attempts; 500 and 400 always."""
    i = index(prompt)
    if i % 25 == 11:
        return http_error(500)
    if i % 25 == 13:
        return http_error(400, "bad request")
    if attempt == 1 and i % 10 == 3:
        return http_error(429, headers=[*JSON, ("retry-after", "0")])
    if attempt == 1 and i % 10 == 5:
        return cut_reply(prompt)
    if attempt <= 2 and i % 10 == 7:
        return http_error(503)
    return None


def test_faults_every_id_once_with_its_own_text_and_retries_only_where_they_belong(tmp_path: Path) -> None:
    items = prompts(150)
    attempts: Counter[str] = Counter()  # attempt numbers across both servers
    fast, fast_route = serve(flaky, attempts=attempts)
    slow, slow_route = serve(flaky, delay=0.05, attempts=attempts)
    try:
        write_prompts(tmp_path / "in.jsonl", items)
        r = batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--base-url", fast.base_url, "--base-url", slow.base_url, "-c", "8")
    finally:
        fast.close()
        slow.close()
    assert r.returncode == 14, r.stderr
    results = by_id(read_results(tmp_path / "out.jsonl"))
    assert set(results) == {f"id-{i}" for i in range(len(items))}
    counts = fast_route.requests + slow_route.requests
    for i, p in enumerate(items):
        res = results[f"id-{i}"]
        if i % 25 in (11, 13):  # failures: recorded with the server's status and body, sent once
            status = 500 if i % 25 == 11 else 400
            assert res["response"]["status_code"] == status and res["error"] is None
            message = "scripted failure" if status == 500 else "bad request"
            assert res["response"]["body"] == {"error": {"message": message, "type": "scripted", "code": status}}  # the server's own body
            assert counts[p] == 1, f"{p} was retried after HTTP {status}"
            continue
        assert res["error"] is None and res["response"]["status_code"] == 200
        assert text_of(res) == answer_text(p)
        assert res["response"]["body"]["object"] == "text_completion"
        assert res["response"]["body"]["usage"]["completion_tokens"] == 3
        expected = 3 if i % 10 == 7 else 2 if i % 10 in (3, 5) else 1
        assert counts[p] == expected, p
    assert "retries (" in r.stderr and "12 failed (http 400 ×6, http 500 ×6)" in r.stderr
    assert "acs: error: 12 of 150 requests failed" in r.stderr and "--retry-failed" in r.stderr


def test_least_outstanding_gives_the_slow_replica_fewer(tmp_path: Path) -> None:
    write_prompts(tmp_path / "in.jsonl", prompts(80))
    fast, fast_route = serve()
    slow, slow_route = serve(delay=0.1)
    try:
        r = batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--base-url", slow.base_url, "--base-url", fast.base_url, "-c", "8")
    finally:
        fast.close()
        slow.close()
    assert r.returncode == 0, r.stderr
    assert fast_route.requests.total() + slow_route.requests.total() == 80
    assert slow_route.requests.total() < fast_route.requests.total() / 2


def test_retry_failed_sends_only_the_failures_and_keeps_each_id_once(tmp_path: Path) -> None:
    items = prompts(40)
    write_prompts(tmp_path / "in.jsonl", items)
    failing, _ = serve(lambda p, a: http_error(500) if index(p) % 4 == 0 else None)
    try:
        first = batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--base-url", failing.base_url)
    finally:
        failing.close()
    assert first.returncode == 14
    again, route = serve()
    try:
        plain = batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--base-url", again.base_url)
        assert plain.returncode == 14 and route.requests.total() == 0  # failures are not sent again without the flag
        assert "10 failed in an earlier run" in plain.stderr
        retried = batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--base-url", again.base_url, "--retry-failed")
    finally:
        again.close()
    assert retried.returncode == 0, retried.stderr
    assert sorted(route.requests) == sorted(p for p in items if index(p) % 4 == 0)
    results = by_id(read_results(tmp_path / "out.jsonl"))
    assert len(results) == 40 and all(text_of(results[f"id-{i}"]) == answer_text(p) for i, p in enumerate(items))
    assert "30 skipped as already done" in retried.stderr


def test_errors_file_takes_the_failures(tmp_path: Path) -> None:
    items = prompts(20)
    write_prompts(tmp_path / "in.jsonl", items)
    server, _ = serve(lambda p, a: http_error(500) if index(p) % 5 == 0 else None)
    try:
        r = batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--errors", "err.jsonl", "--base-url", server.base_url)
    finally:
        server.close()
    assert r.returncode == 14 and "err.jsonl" in r.stderr
    good = by_id(read_results(tmp_path / "out.jsonl"))
    bad = by_id(read_results(tmp_path / "err.jsonl"))
    assert set(bad) == {"id-0", "id-5", "id-10", "id-15"}
    assert len(good) == 16 and not set(good) & set(bad)


def test_ordered_writes_input_order(tmp_path: Path) -> None:
    items = prompts(30)
    write_prompts(tmp_path / "in.jsonl", items)
    slow_first = {"prompt number 0", "prompt number 1"}
    server, _ = serve(lambda p, a: None)
    server.route("POST", "/v1/completions", _delayed(slow_first))
    try:
        unordered = batch(tmp_path, "in.jsonl", "-o", "a.jsonl", "--base-url", server.base_url, "-c", "8")
        ordered = batch(tmp_path, "in.jsonl", "-o", "b.jsonl", "--base-url", server.base_url, "-c", "8", "--ordered")
    finally:
        server.close()
    assert unordered.returncode == 0 and ordered.returncode == 0
    assert [r["custom_id"] for r in read_results(tmp_path / "b.jsonl")] == [f"id-{i}" for i in range(30)]
    assert [r["custom_id"] for r in read_results(tmp_path / "a.jsonl")][:2] != ["id-0", "id-1"]


def _delayed(slow: set[str]):
    from tests.batch_server import completion_reply

    def route(req):
        prompt = req.json()["prompt"]
        return completion_reply(prompt, first_delay=0.3 if prompt in slow else 0.0)

    return route


def test_a_dead_replica_is_rested_and_the_others_do_the_work(tmp_path: Path) -> None:
    items = prompts(60)
    write_prompts(tmp_path / "in.jsonl", items)
    server, route = serve()
    with ClosingListener() as dead:
        try:
            r = batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--base-url", server.base_url, "--base-url", f"http://127.0.0.1:{dead.port}/v1", "-c", "4")
        finally:
            server.close()
        accepted = dead.accepted
    assert r.returncode == 0, r.stderr
    assert len(by_id(read_results(tmp_path / "out.jsonl"))) == 60
    assert route.requests.total() == 60
    assert accepted <= 8  # rested after 3 failures in a row: the requests went to the live one


def test_no_retry_on_other_4xx_and_an_error_for_no_answer(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("one\ntwo\n")
    with ClosingListener() as dead:
        r = batch(tmp_path, "in.txt", "-o", "out.jsonl", "--base-url", f"http://127.0.0.1:{dead.port}/v1", "--retries", "1")
    assert r.returncode == 14
    results = by_id(read_results(tmp_path / "out.jsonl"))
    assert set(results) == {"line-1", "line-2"}
    for res in results.values():
        assert res["response"] is None and res["error"]["code"] in ("connect", "incomplete")


@pytest.mark.parametrize("fmt", ["batch", "prompts", "text"])
def test_each_format_and_request_defaults_under_line_fields(tmp_path: Path, fmt: str) -> None:
    lines = {
        "batch": [json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x 1", "max_tokens": 7}}),
                  json.dumps({"custom_id": "b", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x 2", "model": "other"}})],
        "prompts": [json.dumps({"custom_id": "a", "prompt": "x 1", "max_tokens": 7}), json.dumps({"prompt": "x 2", "model": "other"})],
        "text": ["x 1", "x 2"],
    }[fmt]  # fmt: skip
    (tmp_path / "in").write_text("\n".join(lines) + "\n")
    server, route = serve()
    try:
        r = batch(tmp_path, "in", "-o", "out.jsonl", "--base-url", server.base_url, "--max-tokens", "5", "-t", "0.5", "--param", "top_k=3")
    finally:
        server.close()
    assert r.returncode == 0, r.stderr
    bodies = sorted(route.bodies, key=lambda b: b["prompt"])
    assert all(b["stream"] is True and b["stream_options"] == {"include_usage": True} for b in bodies)
    assert all(b["temperature"] == 0.5 and b["top_k"] == 3 for b in bodies)
    if fmt != "text":
        assert bodies[0]["max_tokens"] == 7 and bodies[1]["max_tokens"] == 5 and bodies[1]["model"] == "other" and bodies[0]["model"] == "m"
    results = by_id(read_results(tmp_path / "out.jsonl"))
    assert {text_of(res) for res in results.values()} == {answer_text("x 1"), answer_text("x 2")}


def test_stdin_input(tmp_path: Path) -> None:
    server, _ = serve()
    try:
        r = batch(tmp_path, "-", "-o", "out.jsonl", "--base-url", server.base_url, input="a\nb\n\nc\n")
    finally:
        server.close()
    assert r.returncode == 0, r.stderr
    results = by_id(read_results(tmp_path / "out.jsonl"))
    assert sorted(results) == ["line-1", "line-2", "line-4"] and text_of(results["line-4"]) == answer_text("c")
    assert r.stdout == "" and "3 done, 0 failed" in r.stderr


def test_progress_on_a_terminal_and_summary_everywhere(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("".join(f"p {i}\n" for i in range(30)))
    server, _ = serve(delay=0.02)
    try:
        tty = batch(tmp_path, "in.txt", "-o", "a.jsonl", "--base-url", server.base_url, "-c", "2", stderr_tty=True, env={"TERM": "xterm"})
        pipe = batch(tmp_path, "in.txt", "-o", "b.jsonl", "--base-url", server.base_url, "-c", "2")
    finally:
        server.close()
    assert tty.returncode == pipe.returncode == 0
    assert "in flight" in tty.stderr and "/30" in tty.stderr and "tok/s" in tty.stderr
    assert "in flight" not in pipe.stderr and "\x1b" not in pipe.stderr
    for r in (tty, pipe):
        assert "acs batch: 30 done, 0 failed, 0 skipped as already done; 200 tokens (110 prompt, 90 completion)" in r.stderr


def test_several_profiles_are_several_endpoints_with_their_own_keys(tmp_path: Path) -> None:
    write_prompts(tmp_path / "in.jsonl", prompts(40))
    one, route_one = serve()
    two, route_two = serve()
    config = tmp_path / ".config" / "acs" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'max_tokens = 9\n[profiles.a]\nbase_url = "{one.base_url}"\nmodel = "ma"\n'
        f'[profiles.b]\nbase_url = "{two.base_url}"\nmodel = "mb"\ntemperature = 0.7\n'
    )
    try:
        r = run_acs(["batch", "in.jsonl", "-o", "out.jsonl", "--profile", "a", "--profile", "b", "-c", "4"], cwd=tmp_path, home=tmp_path)
    finally:
        one.close()
        two.close()
    assert r.returncode == 0, r.stderr
    assert route_one.requests.total() > 0 and route_two.requests.total() > 0
    assert route_one.requests.total() + route_two.requests.total() == 40
    assert {b["model"] for b in route_one.bodies} == {"ma"} and {b["model"] for b in route_two.bodies} == {"mb"}
    assert all(b["max_tokens"] == 9 and "temperature" not in b for b in route_one.bodies + route_two.bodies)  # defaults: the first profile's
    assert len(by_id(read_results(tmp_path / "out.jsonl"))) == 40


def test_the_model_from_the_server_and_the_key_sent_never_shown(tmp_path: Path) -> None:
    from tests.cliutil import KEY, MODELS
    from tests.sse_server import Reply

    write_prompts(tmp_path / "in.jsonl", prompts(5))
    server, route = serve()
    server.route("GET", MODELS, Reply.json(200, {"object": "list", "data": [{"id": "only-model", "object": "model"}]}))
    try:
        r = run_acs(["batch", "in.jsonl", "-o", "out.jsonl", "--base-url", server.base_url], cwd=tmp_path, env={"ACS_API_KEY": KEY})
    finally:
        server.close()
    assert r.returncode == 0, r.stderr
    assert {b["model"] for b in route.bodies} == {"only-model"}
    posts = [q for q in server.requests if q.method == "POST"]
    assert len(posts) == 5 and all(q.headers["authorization"] == f"Bearer {KEY}" for q in posts)
    assert KEY not in r.stderr + r.stdout and KEY not in (tmp_path / "out.jsonl").read_text() + (tmp_path / "out.jsonl.acs-batch").read_text()


def test_help_and_complete_do_not_import_the_batch_machinery() -> None:
    import subprocess
    import sys

    from tests.helpers import acs_env

    code = "import sys; from acs_cli.__main__ import main; main(['--help']); print(sorted(m for m in sys.modules if m.startswith(('acs_cli.batch', 'acs_cli.engine', 'asyncio', 'rich.progress'))))"
    out = subprocess.run([sys.executable, "-c", code], env=acs_env(), capture_output=True, text=True, timeout=30)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def run_all(tmp_path: Path, n: int) -> None:
    """A batch of n prompts that all succeed, in.jsonl to out.jsonl."""
    write_prompts(tmp_path / "in.jsonl", prompts(n))
    server, _ = serve()
    try:
        assert batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--base-url", server.base_url).returncode == 0
    finally:
        server.close()


def test_a_finished_output_needs_no_server(tmp_path: Path) -> None:
    run_all(tmp_path, 6)
    with ClosingListener() as dead:
        again = batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--base-url", dead.base_url)
        assert dead.accepted == 0
    assert again.returncode == 0 and "0 done, 0 failed, 6 skipped as already done" in again.stderr
    assert len(read_results(tmp_path / "out.jsonl")) == 6


def test_signal_handlers_are_given_back(tmp_path: Path) -> None:
    import signal

    def handlers() -> dict:
        return {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}

    before = handlers()
    run_all(tmp_path, 3)
    assert handlers() == before


def test_several_choices_and_logprobs_in_the_answer_object(tmp_path: Path) -> None:
    from tests.cliutil import COMPLETIONS
    from tests.sse_server import ScriptedServer, vllm_frame

    (tmp_path / "in.jsonl").write_text(json.dumps({"custom_id": "x", "prompt": "p", "n": 2, "logprobs": 1}) + "\n")
    lp = {"tokens": ["a"], "token_logprobs": [-0.5], "top_logprobs": [{"a": -0.5}], "text_offset": [0]}
    with ScriptedServer() as server:
        frames = [vllm_frame("a", index=0, logprobs=lp), vllm_frame("b", index=1), vllm_frame("c", index=0, finish_reason="stop", logprobs=lp), vllm_frame("d", index=1, finish_reason="length")]
        server.route("POST", COMPLETIONS, _sse(frames))
        r = batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--base-url", server.base_url)
    assert r.returncode == 0, r.stderr
    (result,) = read_results(tmp_path / "out.jsonl")
    choices = result["response"]["body"]["choices"]
    assert [(c["index"], c["text"], c["finish_reason"]) for c in choices] == [(0, "ac", "stop"), (1, "bd", "length")]
    assert choices[0]["logprobs"]["tokens"] == ["a", "a"] and choices[1]["logprobs"] is None


def _sse(frames: list[bytes]):
    from tests.sse_server import Reply, usage_frame

    return Reply.sse([*frames, usage_frame(2, 4)])


def test_chat_lines_go_to_chat_completions_and_come_back_as_chat_completion_objects(tmp_path: Path) -> None:
    lines = [
        {"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "user", "content": "hello"}]}},
        {"custom_id": "t1", "method": "POST", "url": "/v1/completions", "body": {"prompt": "plain"}},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    server, route = serve()
    try:
        r = batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--base-url", server.base_url, "--max-tokens", "9")
    finally:
        server.close()
    assert r.returncode == 0, r.stderr
    assert sorted(q.path for q in server.requests) == ["/v1/chat/completions", "/v1/completions"]
    chat_body = next(b for b in route.bodies if "messages" in b)
    assert chat_body["stream"] is True and chat_body["max_tokens"] == 9 and chat_body["model"] == "m" and "prompt" not in chat_body
    results = by_id(read_results(tmp_path / "out.jsonl"))
    chat = results["c1"]["response"]["body"]
    assert chat["object"] == "chat.completion" and chat["usage"]["completion_tokens"] == 2
    (choice,) = chat["choices"]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"] == answer_text("hello")
    assert choice["finish_reason"] == "stop" and choice["logprobs"] is None
    assert results["t1"]["response"]["body"]["object"] == "text_completion" and text_of(results["t1"]) == answer_text("plain")


def test_rpm_paces_the_requests(tmp_path: Path) -> None:
    import time

    write_prompts(tmp_path / "in.jsonl", prompts(6))
    server, route = serve()
    try:
        started = time.monotonic()
        r = batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--base-url", server.base_url, "--rpm", "240")  # 4 a second, 4 at once
        took = time.monotonic() - started
    finally:
        server.close()
    assert r.returncode == 0 and route.requests.total() == 6
    assert took >= 0.45  # the bucket holds 4: the last 2 wait a quarter second each


def test_a_lone_surrogate_escape_in_a_line_is_sent_as_json_can_carry_it(tmp_path: Path) -> None:
    """A `\\ud800` escape in the input is a string no UTF-8 holds: the body goes out with \\u
    escapes (as `acs complete` sends a server's own model id back), never as bytes that are not UTF-8."""
    (tmp_path / "in.jsonl").write_text('{"custom_id": "s", "prompt": "a \\ud800 b"}\n')
    server, route = serve(lambda prompt, attempt: completion_reply("plain"))  # an answer UTF-8 can carry
    try:
        r = batch(tmp_path, "in.jsonl", "-o", "out.jsonl", "--base-url", server.base_url)
    finally:
        server.close()
    assert r.returncode == 0, r.stderr
    assert route.bodies[0]["prompt"] == "a \ud800 b"
    assert b"\\ud800" in server.requests[0].body and server.requests[0].body.decode("utf-8")
