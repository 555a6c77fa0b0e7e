"""The batch output: whole lines appended, a cut last line removed before resuming, the custom_ids
already done skipped, a changed input refused unless --force, one writer at a time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from acs_cli.batch.ids import IdSet
from acs_cli.batch.results import InOrder, ResultWriter, compact, is_failure, read_existing, result_line
from acs_cli.batch.state import Fingerprint, StateFile
from acs_cli.errors import UsageError
from tests.cliutil import ClosingListener
from tests.helpers import run_acs


def ok(cid: str) -> bytes:
    return result_line("r", cid, 200, None, {"choices": []}, None)


def failed(cid: str) -> bytes:
    return result_line("r", cid, 500, None, {"error": {}}, None)


def test_result_line_is_the_openai_schema() -> None:
    assert json.loads(result_line("batch_req_1", "a", 200, "req-1", {"x": 1}, None)) == {
        "id": "batch_req_1", "custom_id": "a", "response": {"status_code": 200, "request_id": "req-1", "body": {"x": 1}}, "error": None,
    }  # fmt: skip
    no_answer = json.loads(result_line("batch_req_2", "b", None, None, None, {"code": "connect", "message": "refused"}))
    assert no_answer["response"] is None and no_answer["error"] == {"code": "connect", "message": "refused"}
    assert result_line("i", "c\x1b", 200, None, {}, None).endswith(b"\n") and b"\x1b" not in result_line("i", "c\x1b", 200, None, {}, None)
    assert is_failure(json.loads(failed("a"))) and not is_failure(json.loads(ok("a")))
    assert is_failure({"custom_id": "a", "response": {"status_code": 200}, "error": {"code": "incomplete"}})


def test_writer_appends_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(ok("old"))
    writer = ResultWriter(str(path))
    writer.write(ok("a"))
    writer.write(failed("b"))
    writer.close()
    assert path.read_bytes() == ok("old") + ok("a") + failed("b")


def test_a_cut_last_line_is_removed_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(ok("a") + failed("b") + ok("c")[:-9])
    existing = read_existing(str(path), cut=False)
    assert path.read_bytes().endswith(ok("c")[:-9])  # peeking changes nothing
    existing = read_existing(str(path))
    assert path.read_bytes() == ok("a") + failed("b")
    assert "a" in existing.done and "b" in existing.failed and "c" not in existing.done and existing.cut > 0
    assert (existing.results, existing.failures) == (2, 1)


def test_a_broken_middle_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(ok("a") + b"garbage\n" + ok("c"))
    with pytest.raises(UsageError, match="line 2 is not a batch result"):
        read_existing(str(path))


def test_compact_drops_only_the_named_failures_atomically(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(ok("a") + failed("b") + failed("z"))
    assert compact(str(path), lambda cid: cid == "b") == 1
    assert path.read_bytes() == ok("a") + failed("z")
    assert not (tmp_path / "out.jsonl.acs-tmp").exists()


def test_in_order_buffers_only_what_waits() -> None:
    written: list[int] = []
    order = InOrder(written.append, window=4)
    order.put(1, 1)
    order.put(2, 2)
    assert written == [] and order.room(3) and not order.room(4)
    order.put(0, 0)
    assert written == [0, 1, 2] and order.waiting == {}
    order.put(5, 5)
    order.flush()
    assert written == [0, 1, 2, 5]


def test_state_file_locks_and_survives_a_cut_rewrite(tmp_path: Path) -> None:
    out = str(tmp_path / "out.jsonl")
    state = StateFile(out)
    with pytest.raises(UsageError, match="another acs batch is writing"):
        StateFile(out)
    long = Fingerprint("/in", "prompts", False, "a" * 64, 10, errors="/a/very/long/errors/path.jsonl")
    state.write(long)
    short = Fingerprint("/in", "text", False, "b" * 64, 9)
    os.pwrite(state.fd, json.dumps({"acs_batch": 1, **short.__dict__}).encode() + b"\n", 0)  # killed before the truncate
    assert state.read() == short
    state.close()
    StateFile(out).close()  # the lock went with the first


def test_idset_many_ids() -> None:
    ids = IdSet()
    for i in range(50_000):
        assert ids.add(f"id-{i}")
    assert not ids.add("id-123") and len(ids) == 50_000 and "id-49999" in ids and "id-50000" not in ids


def _resume_setup(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("a\nb\n")
    (tmp_path / "out.jsonl").write_bytes(ok("line-1"))


def test_changed_input_refused_unless_force(tmp_path: Path) -> None:
    _resume_setup(tmp_path)
    with ClosingListener() as server:
        no_record = run_acs(["batch", "in.txt", "-o", "out.jsonl", "--base-url", server.base_url, "-m", "m"], cwd=tmp_path)
        assert no_record.returncode == 2 and "no record of the input" in no_record.stderr
        StateFile(str(tmp_path / "out.jsonl")).close()
        (tmp_path / "out.jsonl.acs-batch").write_text(json.dumps({"acs_batch": 1, "input": "x", "format": "text", "escapes": False, "sha256": "0" * 64, "size": 4, "errors": None}))
        changed = run_acs(["batch", "in.txt", "-o", "out.jsonl", "--base-url", server.base_url, "-m", "m"], cwd=tmp_path)
        assert changed.returncode == 2 and "the input changed since the output was started" in changed.stderr and "--force" in changed.stderr
        assert server.accepted == 0
        forced = run_acs(["batch", "in.txt", "-o", "out.jsonl", "--base-url", server.base_url, "-m", "m", "--force", "--retries", "0"], cwd=tmp_path)
    assert forced.returncode == 14  # line-2 was sent (to a server that resets), line-1 skipped
    assert "1 skipped as already done" in forced.stderr
    record = json.loads((tmp_path / "out.jsonl.acs-batch").read_text())
    assert record["format"] == "text" and record["sha256"] != "0" * 64


def test_the_errors_file_must_stay_the_same(tmp_path: Path) -> None:
    from tests.batch_server import http_error, serve

    (tmp_path / "in.txt").write_text("a\nb\n")
    server, route = serve(lambda p, a: http_error(500) if p == "a" else None)
    try:
        first = run_acs(["batch", "in.txt", "-o", "out.jsonl", "--errors", "err.jsonl", "--base-url", server.base_url, "-m", "m"], cwd=tmp_path)
        other = run_acs(["batch", "in.txt", "-o", "out.jsonl", "--base-url", server.base_url, "-m", "m"], cwd=tmp_path)
    finally:
        server.close()
    assert first.returncode == 14 and other.returncode == 2
    assert "was started with --errors" in other.stderr and route.requests.total() == 2


def test_a_full_disk_mid_run_is_exit_12_and_keeps_what_was_written(tmp_path: Path) -> None:
    from acs_cli.batch.results import OutputFileFailed

    writer = ResultWriter(str(tmp_path / "out.jsonl"))
    writer.write(ok("a"))
    os.close(writer.fd)
    writer.fd = os.open("/dev/full", os.O_WRONLY)
    with pytest.raises(OutputFileFailed) as failed:
        writer.write(ok("b"))
    writer.close()
    assert failed.value.status == 12 and "No space left on device" in failed.value.message
    assert (tmp_path / "out.jsonl").read_bytes() == ok("a")
