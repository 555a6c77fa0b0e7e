"""The engine's own event loop (acs_cli/loop.py) itself: direct readers and the fallback to
asyncio's transports. These run on EngineLoop only (tests/test_engine.py runs the engine's
requests on both loops)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import pytest

from acs_cli import loop as engine_loop
from acs_cli.engine import Engine, RequestRecord
from tests.test_engine import StreamServer, TextConsumer, _idle_connection, streams  # noqa: F401 (a fixture)


def test_a_reader_that_raises_is_reported_and_the_loop_goes_on() -> None:
    """A direct reader's exception goes to the loop's exception handler, like a Handle's."""
    seen: list[BaseException] = []

    async def go() -> bytes:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, engine_loop.EngineLoop) and loop.direct
        loop.set_exception_handler(lambda _, context: seen.append(context["exception"]))
        bad_r, bad_w = socket.socketpair()
        good_r, good_w = socket.socketpair()
        got = loop.create_future()

        def bad() -> None:
            bad_r.recv(10)
            raise RuntimeError("reader broke")

        loop.add_direct_reader(bad_r.fileno(), bad)
        loop.add_direct_reader(good_r.fileno(), lambda: got.done() or got.set_result(good_r.recv(10)))
        bad_w.send(b"x")
        good_w.send(b"y")
        try:
            return await asyncio.wait_for(got, 5)
        finally:
            loop.remove_reader(bad_r.fileno())
            loop.remove_reader(good_r.fileno())
            for s in (bad_r, bad_w, good_r, good_w):
                s.close()

    assert engine_loop.run(go()) == b"y"
    assert [str(e) for e in seen] == ["reader broke"]


def test_without_the_loop_internals_the_engine_uses_asyncio_transports(streams: StreamServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a Python whose selector loop lacks what EngineLoop takes over, nothing breaks."""
    monkeypatch.setattr(engine_loop, "_LOOP_INTERNALS", (*engine_loop._LOOP_INTERNALS, "_not_in_this_python"))

    async def go() -> tuple[RequestRecord, object, bool]:
        async with Engine(streams.base_url, proxy=None) as engine:
            record = await engine.request("POST", "completions", json.dumps({"stream": 0, "frames": 3}).encode(), TextConsumer())
            conn = await _idle_connection(engine)
            loop = asyncio.get_running_loop()
            return record, conn.transport, isinstance(loop, engine_loop.EngineLoop) and loop.direct

    record, transport, direct = engine_loop.run(go())
    assert record.error is None and not direct
    assert not isinstance(transport, engine_loop.SocketTransport)


def test_a_reader_that_replaces_another_socket_of_its_batch_keeps_the_new_one() -> None:
    """Reader A closes socket B, whose event is in the same batch, and opens C under B's number:
    B's stale event must not unregister C."""

    async def go() -> bytes:
        loop = asyncio.get_running_loop()
        a_r, a_w = socket.socketpair()
        b_r, b_w = socket.socketpair()
        got = loop.create_future()
        made: list[socket.socket] = []

        def on_a() -> None:
            a_r.recv(10)
            if made:
                return
            loop.remove_reader(b_r.fileno())
            b_r.close()
            c_r, c_w = socket.socketpair()
            made.extend((c_r, c_w))
            loop.add_direct_reader(c_r.fileno(), lambda: got.done() or got.set_result(c_r.recv(10)))
            c_w.send(b"c")

        loop.add_direct_reader(a_r.fileno(), on_a)
        loop.add_direct_reader(b_r.fileno(), lambda: b_r.recv(10))
        a_w.send(b"a")
        b_w.send(b"b")
        time.sleep(0.05)  # both ready in the same wait
        try:
            return await asyncio.wait_for(got, 2)
        finally:
            for s in (a_r, a_w, b_w, *made):
                with contextlib.suppress(OSError, ValueError):
                    loop.remove_reader(s.fileno())
                s.close()

    assert engine_loop.run(go()) == b"c"
