"""Crash safety: `acs batch` killed with SIGKILL at random moments of a 5,000-line batch, and
resumed each time. At the end every custom_id is in the output exactly once with its own text,
every line parses, and no request that had finished (its line written) was ever sent again."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.batch_server import answer_text, read_results, serve
from tests.helpers import acs_env

LINES = 5000
KILLS = 5


def start(tmp_path: Path, base_url: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "acs_cli", "batch", "in.jsonl", "-o", "out.jsonl", "--base-url", base_url, "-m", "m", "-c", "16"]
    return subprocess.Popen(args, cwd=tmp_path, env=acs_env(home=tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def done_prompts(path: Path, prompts: dict[str, str]) -> set[str]:
    """The prompts whose results are in the output (whole lines only: a cut last line is not done)."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    return {prompts[json.loads(line)["custom_id"]] for line in whole.splitlines()}


def test_sigkill_at_random_moments_then_resume(tmp_path: Path) -> None:
    rng = random.Random(1234)
    prompts = {f"c{i}": f"crash prompt {i} " + "x" * rng.choice((0, 10, 100, 3000, 20000)) for i in range(LINES)}
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"custom_id": cid, "prompt": p}) + "\n" for cid, p in prompts.items()))
    log = tmp_path / "requests.log"
    server, route = serve(log=log)
    kills = 0
    sent_before = 0
    finished: set[str] = set()
    try:
        while True:
            proc = start(tmp_path, server.base_url)
            if kills < KILLS:
                time.sleep(rng.uniform(0.4, 1.6))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
            out, err = proc.communicate(timeout=120)
            requested = [json.loads(line) for line in log.read_text().splitlines()]
            again = finished & set(requested[sent_before:])
            assert not again, f"{len(again)} finished requests were sent again, e.g. {next(iter(again))[:40]!r}"
            sent_before = len(requested)
            finished = done_prompts(tmp_path / "out.jsonl", prompts)
            if proc.returncode != -signal.SIGKILL:
                assert proc.returncode == 0, err.decode()
                break
    finally:
        server.close()
        route.close()
    assert kills == KILLS
    results = read_results(tmp_path / "out.jsonl")  # every line parses
    ids = [r["custom_id"] for r in results]
    assert len(ids) == len(set(ids)) == LINES
    for r in results:
        assert r["response"]["status_code"] == 200 and r["error"] is None
        assert r["response"]["body"]["choices"][0]["text"] == answer_text(prompts[r["custom_id"]])
    assert route.requests.total() < LINES + KILLS * 16 + 1  # at most the requests in flight at each kill were sent twice
