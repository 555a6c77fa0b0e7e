"""The batch output: OpenAI's batch output schema, one line per request, written so that a killed
run never loses a finished request and never leaves a line that breaks the next run.

    {"id": "batch_req_…", "custom_id": "…",
     "response": {"status_code": 200, "request_id": "…", "body": {…the non-streaming answer…}},
     "error": null}

`response` is null and `error` is `{"code", "message"}` when a request got no HTTP answer (refused,
reset, timed out); a 4xx/5xx answer is a `response` with its status code and the server's body; a
200 whose stream broke has both (the partial answer, and the error).

Writing: the output is opened O_APPEND and every result is ONE os.write of the whole line, its
newline last, before the request counts as done. A process killed mid-write can leave only a
final line without its newline, which the next run cuts off before appending (`read_existing`).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from acs_cli.batch.ids import IdSet, count_lines
from acs_cli.errors import AcsError, ExitStatus, UsageError
from acs_cli.sinks.json import dumps

RESULT_LINE_LIMIT = 256 << 20  # a result line longer than this cannot be ours


class OutputFileFailed(AcsError):
    """Writing a result failed mid-run (a full disk, an I/O error): exit 12, as for stdout; every
    line written before stays, and the next run resumes after it."""

    status = ExitStatus.OUTPUT
    kind = "output"


class ResultIds:
    """Unique result ids: a random prefix per run and a counter."""

    def __init__(self) -> None:
        self.prefix = "batch_req_" + secrets.token_hex(6)
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"{self.prefix}{self.count:08x}"


def result_line(rid: str, custom_id: str, status: int | None, request_id: str | None, body: Any, error: dict[str, Any] | None) -> bytes:
    """One line of the output, newline included."""
    response = None if status is None else {"status_code": status, "request_id": request_id, "body": body}
    return dumps({"id": rid, "custom_id": custom_id, "response": response, "error": error}) + b"\n"


def is_failure(result: dict[str, Any]) -> bool:
    """A result is a success when it has no error and a 2xx response."""
    if result.get("error") is not None:
        return True
    response = result.get("response")
    status = response.get("status_code") if isinstance(response, dict) else None
    return not (type(status) is int and 200 <= status < 300)


def open_append(path: str) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}", "check the path and its permissions, or choose another -o / --errors") from None


class ResultWriter:
    """Appends whole result lines to a file: one os.write per line on an O_APPEND descriptor."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = open_append(path)
        self.lines = 0

    def write(self, line: bytes) -> None:
        view = memoryview(line)
        try:
            while view:  # a regular file takes the whole line at once; a short write is finished here
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            raise OutputFileFailed(f"cannot write {self.path}: {exc.strerror or exc}", "free some space, then run the same command again to resume") from None
        self.lines += 1

    def close(self) -> None:
        if self.fd < 0:
            return
        try:
            os.fsync(self.fd)  # what the kernel holds already survives acs; this is for the machine
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1


@dataclass
class Existing:
    """What earlier runs wrote: the custom_ids done (success) and failed."""

    done: IdSet = field(default_factory=IdSet)
    failed: IdSet = field(default_factory=IdSet)
    results: int = 0
    failures: int = 0
    cut: int = 0  # bytes of a partial final line removed
    ours: IdSet | None = None  # the input's custom_ids, to count the results that are this input's
    ours_done: int = 0
    ours_failed: int = 0


def read_existing(path: str, into: Existing | None = None, cut: bool = True) -> Existing:
    """Read an output (or --errors file) streamed; a final line without its newline (a write a
    kill interrupted) is cut off the file (`cut`, else only ignored); any other line that is not
    a result is refused."""
    existing = into if into is not None else Existing()
    if not existing.results and os.path.exists(path):  # size the tables once for what is there
        lines = count_lines(path)
        existing.done, existing.failed = IdSet(lines), IdSet(lines // 8)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return existing
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}", "check the path and its permissions") from None
    with f:
        offset = 0
        for number, line in enumerate(_lines(f), 1):
            if not line.endswith(b"\n"):
                if len(line) >= RESULT_LINE_LIMIT:  # not a cut write: a line too long to be ours
                    raise UsageError(f"{path} line {number} is longer than {RESULT_LINE_LIMIT >> 20} MiB", "give a new -o")
                if cut:
                    os.truncate(path, offset)  # the next run appends after the last whole line
                existing.cut = len(line)
                break
            offset += len(line)
            _take(existing, line, number, path)
    return existing


def _lines(f: Any) -> Iterator[bytes]:
    while True:
        line = f.readline(RESULT_LINE_LIMIT)
        if not line:
            return
        yield line


def _take(existing: Existing, line: bytes, number: int, path: str) -> None:
    if not line.strip():
        return
    try:
        result = json.loads(line)
        custom_id = result["custom_id"]
        if not isinstance(custom_id, str):
            raise TypeError
    except (ValueError, TypeError, KeyError, RecursionError):
        raise UsageError(
            f"{path} line {number} is not a batch result, so acs cannot tell what is done",
            "acs only appends whole lines: give a new -o, or remove that line if the file was edited",
        ) from None
    existing.results += 1
    ours = existing.ours is None or custom_id in existing.ours
    if is_failure(result):
        existing.failures += 1
        if existing.failed.add(custom_id) and ours and custom_id not in existing.done:
            existing.ours_failed += 1
    elif existing.done.add(custom_id) and ours:
        existing.ours_done += 1
        if custom_id in existing.failed:  # a success after a failure (another run's --errors file)
            existing.ours_failed -= 1


def compact(path: str, drop: Callable[[str], bool]) -> int:
    """Rewrite a result file without the failures whose custom_id `drop` names (--retry-failed):
    into a temporary file beside it, synced, then renamed over it, so a kill leaves either file
    whole. Returns how many lines were dropped."""
    if not os.path.exists(path):
        return 0
    tmp = f"{path}.acs-tmp"
    dropped = 0
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        for line in _lines(src):
            try:
                result = json.loads(line)
            except ValueError:
                result = None
            if isinstance(result, dict) and is_failure(result) and drop(str(result.get("custom_id"))):
                dropped += 1
                continue
            dst.write(line)
        dst.flush()
        os.fsync(dst.fileno())
    if dropped:
        os.replace(tmp, path)
    else:
        os.unlink(tmp)
    return dropped


class InOrder:
    """--ordered: results written in input order. A result that finishes before an earlier one
    waits here; `window` bounds how far ahead the runner may send, and so this buffer."""

    def __init__(self, write: Callable[[Any], None], window: int) -> None:
        self.write = write
        self.window = window
        self.next = 0
        self.waiting: dict[int, Any] = {}

    def room(self, seq: int) -> bool:
        return seq - self.next < self.window

    def put(self, seq: int, item: Any) -> None:
        self.waiting[seq] = item
        while self.next in self.waiting:
            self.write(self.waiting.pop(self.next))
            self.next += 1

    def flush(self) -> None:
        """Interrupted: whatever finished is written, in input order, gaps and all."""
        for seq in sorted(self.waiting):
            self.write(self.waiting.pop(seq))
