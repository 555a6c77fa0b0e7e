"""`acs batch` against real servers (llama.cpp's llama-server and llama-cpp-python's server): at
temperature 0, each line's result is exactly the text (or chat message) of one non-streaming
request with the same body. Marked `realserver` (see tests/realserver/servers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.batch_server import read_results
from tests.helpers import run_acs
from tests.realserver.servers import RunningServer, realserver, realserver_logs  # noqa: F401  (fixtures)

pytestmark = pytest.mark.realserver

PROMPTS = ["Once upon a time", "The capital of France is", "1, 2, 3,", "def main():", "Hello", "In the beginning", "Roses are red", "Q: why?\nA:"]


def test_batch_equals_single_non_streaming_requests(tmp_path: Path, realserver: RunningServer) -> None:
    bodies = {f"p{i}": {"model": realserver.model, "prompt": p, "max_tokens": 16 + i, "temperature": 0, "seed": 42} for i, p in enumerate(PROMPTS)}
    lines = [json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/completions", "body": body}) for cid, body in bodies.items()]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    r = run_acs(["batch", "in.jsonl", "-o", "out.jsonl", "--base-url", realserver.base_url, "-c", "3"], cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr + realserver.describe()
    results = {res["custom_id"]: res for res in read_results(tmp_path / "out.jsonl")}
    assert sorted(results) == sorted(bodies)
    for cid, body in bodies.items():
        single = realserver.post_json("/v1/completions", {**body, "stream": False})
        got = results[cid]["response"]
        assert got["status_code"] == 200 and results[cid]["error"] is None
        assert got["body"]["object"] == "text_completion"
        assert got["body"]["choices"][0]["text"] == single["choices"][0]["text"], cid
        assert got["body"]["choices"][0]["finish_reason"] == single["choices"][0]["finish_reason"], cid
        if got["body"]["usage"] is not None:  # llama-cpp-python's streams carry no usage
            assert got["body"]["usage"]["completion_tokens"] == single["usage"]["completion_tokens"], cid


def test_chat_batch_equals_single_non_streaming_requests(tmp_path: Path, realserver: RunningServer) -> None:
    bodies = {
        f"c{i}": {"model": realserver.model, "messages": [{"role": "user", "content": p}], "max_tokens": 12, "temperature": 0, "seed": 42}
        for i, p in enumerate(PROMPTS[:4])
    }
    lines = [json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": body}) for cid, body in bodies.items()]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    r = run_acs(["batch", "in.jsonl", "-o", "out.jsonl", "--base-url", realserver.base_url, "-c", "2"], cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr + realserver.describe()
    results = {res["custom_id"]: res for res in read_results(tmp_path / "out.jsonl")}
    for cid, body in bodies.items():
        single = realserver.post_json("/v1/chat/completions", {**body, "stream": False})
        got = results[cid]["response"]["body"]
        assert got["object"] == "chat.completion"
        assert got["choices"][0]["message"]["content"] == (single["choices"][0]["message"]["content"] or ""), cid
        assert got["choices"][0]["finish_reason"] == single["choices"][0]["finish_reason"], cid
