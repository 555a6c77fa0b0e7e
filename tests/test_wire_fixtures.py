"""The wire scenarios fixture is well formed, is served byte-exactly, and its outcomes follow the
reference client algorithm (tests/oracle.py)."""

from __future__ import annotations

import httpx
import pytest

from tests.oracle import expected_outcome, matches
from tests.scenarios import get_scenario, load_scenarios, scenario_body, scenario_ids
from tests.sse_server import Reply, ScriptedServer

KINDS = {"ok", "incomplete", "stream_error", "http_error", "protocol_error"}
ENDS = {"chunked", "length", "abort"}
HELD_BACK = ["04", "05", "13", "16", "17", "28", "35", "41", "45", "47", "50", "53"]
IDS = scenario_ids()


def test_fixture_loads_and_is_well_formed() -> None:
    scenarios = load_scenarios()
    ids = [sc["id"] for sc in scenarios]
    assert len(ids) == len(set(ids))
    assert len({sc["name"] for sc in scenarios}) == len(ids)
    assert sum(sc["origin"] == "wire" for sc in scenarios) == 42
    for n in HELD_BACK:
        assert f"X{n}" in ids and f"S{n}" not in ids
    assert len(scenarios) >= 60
    for sc in scenarios:
        sid = sc["id"]
        assert sc["origin"] == ("wire" if sid.startswith("S") else "derived"), sid
        assert isinstance(sc["status"], int) and sc["reason"], sid
        assert sc["end"] in ENDS, sid
        assert sc["segments_encoding"] in ("base64", "gzip+base64"), sid
        assert all(isinstance(s, bytes) for s in sc["segments"]), sid
        assert len(sc["segments"]) == len(sc["segments_b64"]), sid
        for k, v in sc["headers"]:
            assert k == k.lower() and k not in ("transfer-encoding", "content-length"), sid
        assert sc["expect"] and sc["title"], sid
        out = sc["outcome"]
        assert out["kind"] in KINDS, sid
        assert set(out["texts"]) == set(out["finish"]) == set(out["stop_reason"]), sid
        assert all(isinstance(t, str) for t in out["texts"].values()), sid
        assert out["usage"] is None or set(out["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}, sid
        if out["kind"] == "http_error":
            assert out["http_status"] == sc["status"] >= 400, sid
        else:
            assert "http_status" not in out and sc["status"] == 200, sid
        if out["kind"] in ("http_error", "stream_error", "protocol_error"):
            assert isinstance(out["message_contains"], str), sid
        if sc["end"] == "abort":
            assert out["kind"] == "incomplete", sid


def test_large_scenario_is_decoded() -> None:
    sc = get_scenario("S54")
    assert sc["segments_encoding"] == "gzip+base64"
    assert len(sc["segments"][0]) > 1_000_000
    assert sc["outcome"]["texts"]["0"] == "x" * 1_000_000
    assert get_scenario("large_event_1MB")["id"] == "S54"


def test_one_byte_flag() -> None:
    assert [sc["id"] for sc in load_scenarios() if sc["one_byte_chunks"]] == ["S36"]


@pytest.mark.parametrize("sid", IDS)
def test_outcome_follows_the_reference_algorithm(sid: str) -> None:
    sc = get_scenario(sid)
    oracle = expected_outcome(sc["status"], sc["headers"], scenario_body(sc), dropped=sc["end"] == "abort")
    assert matches(sc["outcome"], oracle) == []


@pytest.mark.parametrize("sid", IDS)
def test_scenario_is_served_byte_exactly(server: ScriptedServer, sid: str) -> None:
    sc = get_scenario(sid)
    server.route("POST", "/v1/completions", Reply.from_scenario(sc))
    want = scenario_body(sc)
    got: list[bytes] = []
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", server.base_url + "/completions", json={"stream": True}) as r:
            assert r.status_code == sc["status"]
            assert r.reason_phrase == sc["reason"]
            for k, v in sc["headers"]:
                assert r.headers.get(k) == v
            if sc["end"] == "abort":
                with pytest.raises(httpx.RemoteProtocolError):
                    for chunk in r.iter_raw():
                        got.append(chunk)
            else:
                got.extend(r.iter_raw())
    assert b"".join(got) == want
    sent = [s for s in sc["segments"] if s]
    expected_writes = sum(len(s) for s in sent) if sc["one_byte_chunks"] else len(sent)
    assert len(server.segment_times) == expected_writes
    if sc["end"] == "length":
        assert r.headers["content-length"] == str(len(want))
    else:
        assert r.headers["transfer-encoding"] == "chunked"
