"""--ray: the workers as Ray tasks give the same merged result. The test starts a local Ray
instance through `--ray local` (ray.init() with a CPU per worker and an 80 MB object store; Ray
stops it when the run ends). Skipped when Ray is not installed (CI installs the `ray` extra)."""

from __future__ import annotations

import json

import pytest

from tests.cliutil import env_for, text_reply
from tests.helpers import run_acs_process

pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")


def test_ray_workers_merge_every_request(server, tmp_path) -> None:
    server.route("POST", "/v1/completions", text_reply(["a", "b", "c"], delay=0.002))
    out, lines = tmp_path / "r.json", tmp_path / "r.jsonl"
    r = run_acs_process(["bench", "--ray", "local", "--workers", "2", "-c", "4", "-n", "24", "--json", str(out), "--save-requests", str(lines)],
                        env={**env_for(server), "RAY_USAGE_STATS_ENABLED": "0"}, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["completed"] == 24 and data["failed"] == 0 and data["client"]["workers"] == 2
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert sorted(rec["index"] for rec in records) == list(range(24)) and {rec["worker"] for rec in records} == {0, 1}
    assert len([q for q in server.requests if q.path == "/v1/completions"]) == 24

