"""Ctrl-C (and SIGTERM) in the middle of a batch: exit 130 (143), every finished request already
written as a whole line, the summary says how to resume, and the next run sends only the rest."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.batch_server import answer_text, read_results, serve
from tests.cliutil import sigint_default_in_children
from tests.helpers import acs_env


@pytest.mark.parametrize(("signum", "status", "said"), [(signal.SIGINT, 130, "interrupted by Ctrl-C"), (signal.SIGTERM, 143, "terminated by SIGTERM")])
def test_signal_writes_what_finished_and_the_next_run_resumes(tmp_path: Path, signum: int, status: int, said: str) -> None:
    prompts = {f"s{i}": f"signal prompt {i}" for i in range(60)}
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"custom_id": c, "prompt": p}) + "\n" for c, p in prompts.items()))
    server, route = serve(delay=0.1)
    args = [sys.executable, "-m", "acs_cli", "batch", "in.jsonl", "-o", "out.jsonl", "--base-url", server.base_url, "-m", "m", "-c", "4"]
    try:
        with sigint_default_in_children():
            proc = subprocess.Popen(args, cwd=tmp_path, env=acs_env(home=tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len((tmp_path / "out.jsonl").read_bytes().splitlines() if (tmp_path / "out.jsonl").exists() else []) < 8:
            time.sleep(0.02)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == status, err.decode()
        first = read_results(tmp_path / "out.jsonl")
        assert 8 <= len(first) < 60
        assert f"{said}: " in err.decode() and "run the same command to resume" in err.decode()
        assert route.requests.total() <= len(first) + 4  # only the requests in flight were lost
        sent_before = route.requests.copy()
        resumed = subprocess.run(args, cwd=tmp_path, env=acs_env(home=tmp_path), stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    finally:
        server.close()
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert f"{len(first)} skipped as already done" in resumed.stderr.decode()
    results = read_results(tmp_path / "out.jsonl")
    assert sorted(r["custom_id"] for r in results) == sorted(prompts)
    assert all(r["response"]["body"]["choices"][0]["text"] == answer_text(prompts[r["custom_id"]]) for r in results)
    done_first = {prompts[r["custom_id"]] for r in first}
    assert not any(route.requests[p] > sent_before[p] for p in done_first)  # nothing finished was sent again
