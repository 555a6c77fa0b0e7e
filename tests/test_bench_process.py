"""acs bench as processes: --workers N merges exactly, Ctrl-C keeps the partial result (exit 130)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from tests.cliutil import env_for, sigint_default_in_children, text_reply
from tests.helpers import REPO_ROOT, acs_env, run_acs

COMPLETIONS = "/v1/completions"


def test_workers_split_the_schedule_and_merge_every_request(server, tmp_path) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a", "b", "c"], delay=0.002))
    out, lines = tmp_path / "r.json", tmp_path / "r.jsonl"
    r = run_acs(["bench", "--workers", "2", "-c", "4", "-n", "30", "--json", str(out), "--save-requests", str(lines)],
                env=env_for(server), timeout=120)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["completed"] == 30 and data["client"]["workers"] == 2 and data["total_output_tokens"] == 90
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert sorted(rec["index"] for rec in records) == list(range(30))
    assert {rec["worker"] for rec in records} == {0, 1}
    assert len(server.requests) == 30


def test_open_loop_across_workers_keeps_the_schedule(server, tmp_path) -> None:
    server.route("POST", COMPLETIONS, text_reply(["a", "b"]))
    out = tmp_path / "r.json"
    r = run_acs(["bench", "--workers", "2", "--rate", "40", "--arrival", "constant", "-n", "40", "--json", str(out)],
                env=env_for(server), timeout=120)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["completed"] == 40 and 0.9 < data["duration"] < 2.5
    assert abs(data["achieved_send_rate"] - 40) < 2


def test_ctrl_c_summarises_and_writes_the_partial_result_then_exits_130(server, tmp_path) -> None:
    server.route("POST", COMPLETIONS, text_reply([f"t{i}" for i in range(20)], delay=0.05))
    out, lines = tmp_path / "r.json", tmp_path / "r.jsonl"
    env = acs_env({**env_for(server)}, tmp_path)
    with sigint_default_in_children():
        proc = subprocess.Popen([sys.executable, "-m", "acs_cli", "bench", "-c", "4", "-n", "1000", "--json", str(out), "--save-requests", str(lines)],
                                env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert server.wait_for_requests(8, 30)  # a few requests done, four in flight
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert b"Traceback" not in stderr
    data = json.loads(out.read_text())
    assert data["completed"] >= 4 and data["interrupted"] == 4 and data["failed"] == 0
    assert b"requests completed / failed / interrupted:" in stdout
    assert len(lines.read_text().splitlines()) == data["completed"] + 4
