"""acs bench against llama-server with 4 slots (marked `realserver`; see tests/realserver/).

Per request, acs's TPOT must agree within 5% with the `timings.predicted_per_token_ms` that
llama-server reports in its final chunk for that very request (read from the bytes on the wire
through a recording proxy, matched by the completion id), and acs's output token count must be
the server's usage.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import run_acs
from tests.realserver.proxy import RecordingProxy
from tests.realserver.servers import RunningServer, llama_server_4_slots, realserver_logs  # noqa: F401  (fixtures)

pytestmark = pytest.mark.realserver


def final_chunks(wire: bytes) -> dict[str, dict]:
    """id → the chunk that carried `timings`, from every response on a connection."""
    out = {}
    for line in re.findall(rb"^data: (\{.*\})\r?$", wire, re.M):
        try:
            chunk = json.loads(line)
        except ValueError:
            continue  # an event split by HTTP chunk framing: never the small final one in practice
        if isinstance(chunk, dict) and chunk.get("timings"):
            out[chunk["id"]] = chunk
    return out


def test_tpot_agrees_with_llama_servers_timings(llama_server_4_slots: RunningServer, tmp_path) -> None:
    srv = llama_server_4_slots
    lines = tmp_path / "r.jsonl"
    with RecordingProxy(srv.port) as proxy:
        r = run_acs(["bench", "-m", srv.model, "-c", "4", "-n", "12", "--input-tokens", "16", "--output-tokens", "64",
                     "--param", "temperature=0", "--save-requests", str(lines)],
                    env={"ACS_API_BASE": proxy.base_url}, timeout=300)
        assert r.returncode == 0, r.stderr
        assert "input tokens (server usage)" in r.stdout and "output tokens (server usage)" in r.stdout
        wire = b"".join(flow.response_bytes for flow in proxy.flows)
    finals = final_chunks(wire)
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert len(records) == 12 and all(rec["error_kind"] is None for rec in records)
    for rec in records:
        final = finals[rec["id"]]
        assert rec["output_tokens"] == final["usage"]["completion_tokens"] == 64
        assert rec["output_source"] == "usage"
        server_tpot = final["timings"]["predicted_per_token_ms"]
        assert rec["tpot_ms"] == pytest.approx(server_tpot, rel=0.05), (rec["tpot_ms"], final["timings"])
