"""`acs bench` end to end in-process against the scripted loopback server: results, files, bad
input, failing servers, `compare`."""

from __future__ import annotations

import json

from tests.cliutil import assert_failure, closed_port, env_for, text_reply
from tests.helpers import run_acs
from tests.sse_server import Reply

COMPLETIONS = "/v1/completions"
TEXTS = ["a", "b", "c", "d"]


def bench(server, *args: str, env: dict | None = None, timeout: float = 60):
    return run_acs(["bench", *args], env={**env_for(server), **(env or {})}, timeout=timeout)


def test_summary_table_json_and_request_lines(server, tmp_path) -> None:
    server.route("POST", COMPLETIONS, text_reply(TEXTS, delay=0.002))
    out, lines = tmp_path / "r.json", tmp_path / "r.jsonl"
    r = bench(server, "-c", "3", "-n", "12", "--json", str(out), "--save-requests", str(lines), "--slo", "ttft=2s")
    assert r.returncode == 0, r.stderr
    assert "requests completed / failed / interrupted:" in r.stdout and "12 / 0 / 0" in r.stdout
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("acs bench: concurrency 3: 12 completed")  # one final line off a terminal
    data = json.loads(out.read_text())
    assert data["completed"] == 12 and data["failed"] == 0 and data["total_output_tokens"] == 48
    assert data["output_token_source"] == "usage" and data["max_concurrency"] == 3 and data["request_rate"] == "inf"
    assert data["goodput_percent"] == 100.0 and len(out.read_bytes()) < 8192
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert sorted(r["index"] for r in records) == list(range(12))
    assert all(len(r["itl_ms"]) == 3 and r["output_tokens"] == 4 and r["status"] == 200 for r in records)
    body = server.requests[0].json()
    assert body["stream"] is True and body["model"] == "m" and body["stream_options"] == {"include_usage": True}


def test_without_usage_tokens_are_frames_counted_and_flagged(server, tmp_path) -> None:
    server.route("POST", COMPLETIONS, text_reply(TEXTS, usage=None))
    out = tmp_path / "r.json"
    r = bench(server, "-n", "3", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "output tokens (frames counted):" in r.stdout and "note: the server sent no usage for 3 requests" in r.stdout
    assert json.loads(out.read_text())["output_token_source"] == "frames"


def test_role_only_empty_and_usage_frames_are_not_tokens(server, tmp_path) -> None:
    frames = [{"choices": [{"index": 0, "text": ""}]}, {"choices": [{"index": 0, "text": "x"}]},
              {"choices": [{"index": 0, "text": "y", "finish_reason": "stop"}]}, {"choices": [], "usage": None}]
    server.route("POST", COMPLETIONS, Reply.sse(frames, delay=0.05))
    lines = tmp_path / "r.jsonl"
    r = bench(server, "-n", "1", "--save-requests", str(lines))
    assert r.returncode == 0, r.stderr
    rec = json.loads(lines.read_text())
    assert rec["output_tokens"] == 2 and len(rec["itl_ms"]) == 1
    assert rec["ttft_ms"] >= 40  # the empty first frame 50 ms earlier was not the first token


def test_unknown_slo_name_is_a_usage_error(server) -> None:
    msg, hint = assert_failure(bench(server, "--slo", "latency=5ms"), 2)
    assert "unknown SLO name 'latency'" in msg and "ttft" in hint
    assert server.requests == []


def test_negative_rate_and_bad_numbers_are_usage_errors(server) -> None:
    for args in (["--rate", "-5"], ["--rate", "0"], ["-c", "2,-1"], ["--duration", "-3"], ["--input-tokens", "x"]):
        msg, _ = assert_failure(bench(server, *args), 2)
    assert server.requests == []


def test_unreadable_prompts_file(server, tmp_path) -> None:
    msg, hint = assert_failure(bench(server, "--prompts", str(tmp_path / "nope.jsonl")), 2)
    assert "cannot read the prompts file" in msg and "No such file" in msg


def test_prompts_file_is_sent(server, tmp_path) -> None:
    server.route("POST", COMPLETIONS, text_reply(TEXTS))
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "alpha", "max_tokens": 7}\nbeta\n')
    assert bench(server, "-n", "4", "--prompts", str(f)).returncode == 0
    sent = [(q.json()["prompt"], q.json().get("max_tokens")) for q in server.requests]
    assert sent == [("alpha", 7), ("beta", 256), ("alpha", 7), ("beta", 256)]


def test_a_server_that_fails_every_request_is_summarised_then_exit_8(server, tmp_path) -> None:
    server.route("POST", COMPLETIONS, Reply.json(500, {"error": {"message": "out of memory", "type": "InternalServerError"}}))
    out = tmp_path / "r.json"
    r = bench(server, "-c", "2", "-n", "6", "--json", str(out))
    msg, _ = assert_failure(r, 8)
    assert "no request succeeded" in msg and "out of memory" in msg
    assert "0 / 6 / 0" in r.stdout and "failures by kind:" in r.stdout and "http 6" in r.stdout
    data = json.loads(out.read_text())
    assert data["failed"] == 6 and data["errors"] == {"http": 6} and data["error_rate"] == 1.0


def test_some_failures_are_a_result_not_a_crash(server) -> None:
    bad = Reply.json(503, {"error": {"message": "busy"}})
    server.route("POST", COMPLETIONS, [text_reply(TEXTS), bad, text_reply(TEXTS), bad, text_reply(TEXTS)])
    r = bench(server, "-n", "5")
    assert r.returncode == 0, r.stderr
    assert "3 / 2 / 0" in r.stdout and "http 2" in r.stdout and "40.0%" in r.stdout


def test_a_server_that_stops_answering_mid_run(server, tmp_path) -> None:
    hang = text_reply(TEXTS[:2], usage=None, done=False, end="hang")
    server.route("POST", COMPLETIONS, [text_reply(TEXTS), text_reply(TEXTS), hang])
    out = tmp_path / "r.json"
    r = bench(server, "-n", "4", "--timeout", "0.5", "--json", str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["completed"] == 2 and data["failed"] == 2 and data["errors"] == {"timeout": 2}


def test_no_server_exits_4(tmp_path) -> None:
    r = run_acs(["bench", "-n", "2"], env={"ACS_API_BASE": f"http://127.0.0.1:{closed_port()}/v1", "ACS_MODEL": "m"})
    msg, _ = assert_failure(r, 4)


def test_slo_goodput_missed_exits_13(server) -> None:
    server.route("POST", COMPLETIONS, text_reply(TEXTS, first_delay=0.05))
    r = bench(server, "-n", "3", "--slo", "ttft=10ms", "--slo-goodput", "50")
    msg, hint = assert_failure(r, 13)
    assert "goodput 0.0% is below --slo-goodput 50%" in msg
    ok = bench(server, "-n", "3", "--slo", "ttft=5s", "--slo-goodput", "50")
    assert ok.returncode == 0, ok.stderr


def test_several_levels_and_compare(server, tmp_path) -> None:
    server.route("POST", COMPLETIONS, text_reply(TEXTS))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    r = bench(server, "-c", "1,2", "-n", "4", "--json", str(a))
    assert r.returncode == 0, r.stderr
    runs = json.loads(a.read_text())["runs"]
    assert [x["max_concurrency"] for x in runs] == [1, 2]
    assert "req/s" in r.stdout.splitlines()[-3]  # the curve table
    bench(server, "-c", "1,2", "-n", "4", "--json", str(b))
    c = run_acs(["bench", "compare", str(a), str(b)])
    assert c.returncode == 0, c.stderr
    assert "== run 1: concurrency 2 vs concurrency 2" in c.stdout
    assert any(line.startswith("mean_ttft_ms") and line.rstrip().endswith(("better", "worse", "same")) for line in c.stdout.splitlines())
    msg, _ = assert_failure(run_acs(["bench", "compare", str(a), str(tmp_path / "none.json")]), 2)


def test_synthetic_prompts_use_the_servers_tokenize(server, tmp_path) -> None:
    server.route("POST", "/tokenize", Reply.json(200, {"tokens": list(range(5000)), "count": 5000}))
    server.route("POST", COMPLETIONS, text_reply(TEXTS, usage=None))
    out = tmp_path / "r.json"
    r = bench(server, "-n", "3", "--input-tokens", "64:8", "--output-tokens", "4", "--json", str(out))
    assert r.returncode == 0, r.stderr
    bodies = [q.json() for q in server.requests if q.path == COMPLETIONS]
    assert all(isinstance(b["prompt"], list) and 56 <= len(b["prompt"]) <= 72 for b in bodies)
    assert all(b["max_tokens"] == 4 and b["ignore_eos"] is True and b["min_tokens"] == 4 for b in bodies)
    assert json.loads(out.read_text())["input_token_source"] == "tokenize"


def test_a_tokenize_answer_past_the_json_limit_is_not_read_whole(server, tmp_path, monkeypatch) -> None:
    """/tokenize is read like every other body: as far as a JSON answer may go, then given up
    (the prompt lengths are estimated), never into memory without bound."""
    monkeypatch.setattr("acs_cli.body.DOCUMENT_LIMIT", 1000)
    server.route("POST", "/tokenize", Reply.json(200, {"tokens": list(range(5000)), "count": 5000}))
    server.route("POST", COMPLETIONS, text_reply(TEXTS, usage=None))
    out = tmp_path / "r.json"
    r = bench(server, "-n", "2", "--input-tokens", "64", "--output-tokens", "4", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["input_token_source"] == "estimate"


def test_help_and_bench_help_load_no_bench_module() -> None:
    """`acs --help` and `acs bench --help` stay lean: the bench, asyncio, the engine and Rich load
    only when a bench runs."""
    import subprocess
    import sys

    from tests.helpers import REPO_ROOT, acs_env

    code = ("import sys; from acs_cli.__main__ import main; main(sys.argv[1:]);"
            "print(sorted(m for m in sys.modules if m.startswith(('acs_cli.bench', 'acs_cli.engine', 'asyncio', 'rich', 'ray'))))")
    for args in (["--help"], ["bench", "--help"]):
        r = subprocess.run([sys.executable, "-c", code, *args], env=acs_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout[-500:]


def test_live_view_on_a_terminal_then_the_final_line(server) -> None:
    server.route("POST", COMPLETIONS, text_reply(TEXTS, delay=0.05))
    r = run_acs(["bench", "-c", "2", "-n", "8"], env={**env_for(server), "TERM": "xterm-256color"}, stderr_tty=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "concurrency 2 · " in r.stderr and "in flight" in r.stderr and "TTFT p50" in r.stderr and "ITL p50" in r.stderr
    last = r.stderr.rstrip().splitlines()[-1].split("\x1b[2K")[-1]  # after the view is cleared
    assert last.startswith("acs bench: concurrency 2: 8 completed")
    assert "\x1b" not in r.stdout  # the table on stdout stays plain
