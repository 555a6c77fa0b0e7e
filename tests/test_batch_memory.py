"""Memory is flat: `acs batch` streams its input and writes each result as it comes, so its peak
RSS at 20,000 requests is that at 2,000 (the one per-line cost is 8-12 bytes of custom_id hash
per line, acs_cli/batch/ids.py). The 1,000,000-request figure is the bench's (tests/bench/batch_bench.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT, acs_env

SERVER = REPO_ROOT / "tests" / "bench" / "batch_server.py"


def peak_rss_mib(tmp_path: Path, base: str, lines: int) -> float:
    source = tmp_path / f"in-{lines}.jsonl"
    with source.open("w") as f:
        for i in range(lines):
            f.write(json.dumps({"custom_id": f"r{i}", "prompt": f"memory prompt {i}", "max_tokens": 2}) + "\n")
    args = [sys.executable, "-m", "acs_cli", "batch", source.name, "-o", f"out-{lines}.jsonl", "--base-url", base, "-m", "bench", "-c", "64"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=acs_env(home=tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the test runner's
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err.decode()
    assert f"{lines:,} done, 0 failed" in err.decode()
    assert sum(1 for _ in (tmp_path / f"out-{lines}.jsonl").open("rb")) == lines
    return usage.ru_maxrss / 1024


def test_peak_rss_does_not_grow_with_the_line_count(tmp_path: Path) -> None:
    server = subprocess.Popen([sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        small = peak_rss_mib(tmp_path, base, 2_000)
        large = peak_rss_mib(tmp_path, base, 20_000)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    assert large - small < 4, f"peak RSS {small:.1f} MiB at 2,000 lines, {large:.1f} MiB at 20,000"
