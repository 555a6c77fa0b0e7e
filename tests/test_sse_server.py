"""The scripted loopback server does what the other tests rely on."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from tests.sse_server import DONE, RecordedRequest, Reply, ScriptedServer, usage_frame, vllm_frame

COMPLETIONS = "/v1/completions"


def raw_exchange(server: ScriptedServer, request: bytes, read_until_close: bool = True) -> bytes:
    """Send raw request bytes and return everything the server writes until it closes."""
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(request)
        out = b""
        while True:
            data = s.recv(65536)
            if not data:
                return out
            out += data


def test_wire_bytes_are_exact_with_chunk_framing(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=[b"hello", b"data: x\n\n"], keep_alive=False))
    out = raw_exchange(
        server, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    )
    assert out == (
        b"HTTP/1.1 200 OK\r\n"
        b"content-type: text/event-stream; charset=utf-8\r\n"
        b"transfer-encoding: chunked\r\n"
        b"connection: close\r\n"
        b"\r\n"
        b"5\r\nhello\r\n"
        b"9\r\ndata: x\n\n\r\n"
        b"0\r\n\r\n"
    )


def test_abort_closes_without_terminator_on_the_wire(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=[b"abc"], end="abort"))
    out = raw_exchange(server, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert out.endswith(b"\r\n\r\n3\r\nabc\r\n")


def test_paced_reply_keeps_chunk_boundaries(server: ScriptedServer) -> None:
    frames = [vllm_frame(" It"), vllm_frame(" was"), vllm_frame(" the", finish_reason="length"), DONE]
    server.route("POST", COMPLETIONS, Reply(segments=frames, delay=0.05))
    with httpx.Client() as client:
        with client.stream("POST", server.base_url + "/completions", json={"stream": True}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert r.headers["transfer-encoding"] == "chunked"
            chunks = list(r.iter_raw())
    assert chunks == frames
    times = [t for _, t in server.segment_times]
    assert len(times) == len(frames)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= 0.045 for g in gaps), gaps


def test_first_delay_holds_back_the_status_line(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse([{"a": 1}], first_delay=0.3))
    t0 = time.monotonic()
    with httpx.Client() as client:
        with client.stream("POST", server.base_url + "/completions", json={}) as r:
            elapsed = time.monotonic() - t0
            assert r.read() == b'data: {"a":1}\n\n' + DONE
    assert elapsed >= 0.28


def test_abort_end_raises_remote_protocol_error_after_the_data(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=[vllm_frame(" It")], end="abort"))
    got: list[bytes] = []
    with httpx.Client() as client:
        with client.stream("POST", server.base_url + "/completions", json={}) as r:
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in r.iter_raw():
                    got.append(chunk)
    assert b"".join(got) == vllm_frame(" It")


def test_length_end_uses_content_length(server: ScriptedServer) -> None:
    body = {"error": {"message": "The model `gpt-4` does not exist.", "type": "NotFoundError", "param": "model", "code": 404}}
    server.route("POST", COMPLETIONS, Reply.json(404, body))
    r = httpx.post(server.base_url + "/completions", json={})
    assert r.status_code == 404
    assert r.reason_phrase == "Not Found"
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)
    assert "transfer-encoding" not in r.headers
    assert r.json() == body


def test_close_end_has_no_framing_header(server: ScriptedServer) -> None:
    server.route("GET", "/v1/models", Reply(segments=[b"part1 ", b"part2"], end="close", headers=[("content-type", "text/plain")]))
    r = httpx.get(server.base_url + "/models")
    assert r.content == b"part1 part2"
    assert "content-length" not in r.headers and "transfer-encoding" not in r.headers


def test_requests_are_recorded(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame(" x", finish_reason="length")]))
    body = {"model": "m", "prompt": "Hi", "stream": True}
    r = httpx.post(server.base_url + "/completions?x=1", json=body, headers={"Authorization": "Bearer k", "X-Thing": "Y"})
    assert r.status_code == 200
    assert len(server.requests) == 1
    req = server.requests[0]
    assert isinstance(req, RecordedRequest)
    assert (req.method, req.path, req.target) == ("POST", COMPLETIONS, "/v1/completions?x=1")
    assert req.headers["authorization"] == "Bearer k"
    assert req.headers["x-thing"] == "Y"
    assert req.headers["content-type"] == "application/json"
    assert req.json() == body
    assert req.index == 0


def test_large_request_body_is_read_before_answering(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.json(400, {"error": {"message": "too long"}}))
    prompt = "word " * 400_000  # ~2 MB
    r = httpx.post(server.base_url + "/completions", json={"prompt": prompt})
    assert r.status_code == 400
    assert server.requests[0].json()["prompt"] == prompt


def test_chunked_request_body_is_read(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.json(200, {"ok": True}))

    def gen():
        yield b'{"a":'
        yield b"1}"

    r = httpx.post(server.base_url + "/completions", content=gen())
    assert r.json() == {"ok": True}
    assert server.requests[0].json() == {"a": 1}


def test_list_replies_are_used_in_turn_and_the_last_repeats(server: ScriptedServer) -> None:
    server.route(
        "POST",
        COMPLETIONS,
        [Reply.json(503, {"error": "busy"}), Reply.json(429, {"error": "slow down"}), Reply.sse(["[DONE]"], done=False)],
    )
    with httpx.Client() as client:
        statuses = [client.post(server.base_url + "/completions", json={}).status_code for _ in range(5)]
    assert statuses == [503, 429, 200, 200, 200]
    assert len(server.requests) == 5


def test_callable_route_sees_the_request(server: ScriptedServer) -> None:
    def echo(req: RecordedRequest) -> Reply:
        return Reply.sse([vllm_frame(req.json()["prompt"], finish_reason="stop")])

    server.route("POST", COMPLETIONS, echo)
    r = httpx.post(server.base_url + "/completions", json={"prompt": "héllo"})
    assert r.content == vllm_frame("héllo", finish_reason="stop") + DONE


def test_failing_callable_gives_500_and_is_reported() -> None:
    with ScriptedServer() as srv:
        srv.route("POST", COMPLETIONS, lambda req: 1 / 0)
        r = httpx.post(srv.base_url + "/completions", json={})
        assert r.status_code == 500
        assert "ZeroDivisionError" in r.text
        assert srv.errors and "ZeroDivisionError" in srv.errors[0]


def test_unrouted_path_answers_404_json(server: ScriptedServer) -> None:
    r = httpx.get(server.base_url + "/nothing")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == 404
    server.route("POST", COMPLETIONS, Reply.json(200, {}))
    assert httpx.get(server.base_url + "/completions").status_code == 404  # method matters
    server.route("*", "/v1/any", Reply.json(200, {"any": True}))
    assert httpx.delete(server.base_url + "/any").json() == {"any": True}


def test_keep_alive_serves_several_requests_on_one_connection(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse([vllm_frame(" a", finish_reason="length")]))
    server.route("GET", "/v1/models", Reply.json(200, {"data": [{"id": "m"}]}))
    with httpx.Client() as client:
        client.get(server.base_url + "/models")
        client.post(server.base_url + "/completions", json={})
        client.post(server.base_url + "/completions", json={})
    assert len({req.connection for req in server.requests}) == 1
    assert [r.index for r in server.requests] == [0, 1, 2]


def test_concurrent_connections_are_served_in_parallel(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply.sse(["[DONE]"], done=False, first_delay=0.4))
    results: list[int] = []

    def one() -> None:
        results.append(httpx.post(server.base_url + "/completions", json={}).status_code)

    threads = [threading.Thread(target=one) for _ in range(6)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [200] * 6
    assert time.monotonic() - t0 < 2.0  # serially it would take 2.4 s
    assert len({req.connection for req in server.requests}) == 6


def test_hang_reply_notices_the_client_disconnect(server: ScriptedServer) -> None:
    server.route("POST", COMPLETIONS, Reply(segments=[vllm_frame(" It")], end="hang"))
    with httpx.Client() as client:
        with client.stream("POST", server.base_url + "/completions", json={}) as r:
            it = r.iter_raw()  # keep a reference: a discarded generator closes the response
            assert next(it) == vllm_frame(" It")
            assert not server.wait_for_disconnect(0.2)  # still hanging, nothing more sent
            closed_at = time.monotonic()
    assert server.wait_for_disconnect(5)
    assert server.disconnects[0] >= closed_at
    assert server.disconnects[0] - closed_at < 1.0


def test_disconnect_during_a_paced_reply_is_noticed(server: ScriptedServer) -> None:
    frames = [vllm_frame(f" t{i}") for i in range(50)]
    server.route("POST", COMPLETIONS, Reply(segments=frames, delay=0.1))
    with httpx.Client() as client:
        with client.stream("POST", server.base_url + "/completions", json={}) as r:
            it = r.iter_raw()
            next(it)
            next(it)
    assert server.wait_for_disconnect(5)
    # the server stopped writing: far fewer than 50 segments went out
    time.sleep(0.3)
    assert len(server.segment_times) < 10


def test_one_byte_chunks_sends_every_byte_separately(server: ScriptedServer) -> None:
    payload = vllm_frame(" It", finish_reason="length") + DONE
    server.route("POST", COMPLETIONS, Reply(segments=[payload], one_byte_chunks=True))
    with httpx.Client() as client:
        with client.stream("POST", server.base_url + "/completions", json={}) as r:
            chunks = list(r.iter_raw())
    assert b"".join(chunks) == payload
    assert len(server.segment_times) == len(payload)
    assert len(chunks) > 1


def test_sse_constructor_wraps_payloads() -> None:
    r = Reply.sse([{"a": "é"}, "[DONE]", b": keep-alive\n\n", "data: raw\r\n\r\n"], done=False)
    assert r.segments == [b'data: {"a":"\xc3\xa9"}\n\n', b"data: [DONE]\n\n", b": keep-alive\n\n", b"data: raw\r\n\r\n"]
    assert Reply.sse([]).segments == [DONE]
    with pytest.raises(ValueError):
        Reply(headers=[("Content-Length", "3")])
    with pytest.raises(ValueError):
        Reply(end="sideways")


def test_frame_helpers_match_the_vllm_shape() -> None:
    assert vllm_frame(" It") == (
        b'data: {"id":"cmpl-ae7c4833c82a33d6","object":"text_completion","created":1767225600,'
        b'"model":"meta-llama/Llama-3.1-8B","choices":[{"index":0,"text":" It","logprobs":null,'
        b'"finish_reason":null,"stop_reason":null,"prompt_token_ids":null,"token_ids":null}],"usage":null}\n\n'
    )
    u = json.loads(usage_frame(5, 2)[6:])
    assert list(u["usage"]) == ["prompt_tokens", "total_tokens", "completion_tokens"]
    assert u["usage"]["total_tokens"] == 7 and u["choices"] == []


def test_close_stops_a_hanging_reply_promptly() -> None:
    srv = ScriptedServer()
    srv.route("POST", COMPLETIONS, Reply(segments=[b"x"], end="hang"))
    client = httpx.Client()
    with client.stream("POST", srv.base_url + "/completions", json={}) as r:
        it = r.iter_raw()
        assert next(it) == b"x"
        t0 = time.monotonic()
        srv.close()
        assert time.monotonic() - t0 < 2.0
        with pytest.raises(httpx.RemoteProtocolError):
            list(it)
    client.close()
