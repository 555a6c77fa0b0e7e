"""Byte-exact responses captured from the real servers, served again by the loopback server.

tests/fixtures/realserver/<server>/<case>/ holds what `curl -N -D headers.txt -o body.sse` saved
for one request to llama.cpp's llama-server or llama-cpp-python (both 0.3.36 era, a tiny random
llama model): `request.json` (what was sent), `headers.txt` (status line and headers as sent),
`body.sse` (the de-chunked body, byte-exact), `meta.txt`, and for some cases `body.chunked-raw`
(the body with its HTTP/1.1 chunk framing, so the chunk boundaries are known too; in the
01-* cases it is the answer to the same request sent once more, so its ids and timings differ
from body.sse; a missing zero-size last chunk means the server closed the connection early).

`capture_reply` turns a case into a `Reply` for tests/sse_server.ScriptedServer: same status,
reason and headers (less the framing header, which the server derives), and the body as the
real server sent it: one segment per HTTP chunk when the boundaries are known, otherwise one per
event (both servers send one chunk per event).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.sse_server import Reply

CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "realserver"


@dataclass
class Capture:
    server: str
    case: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    chunks: list[bytes] | None
    request: Any
    terminated: bool = True  # False: the server closed the connection without the last chunk

    @property
    def header_map(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers}

    def events(self) -> list[bytes]:
        """The body split after every blank line (``\\n\\n``), the separators kept."""
        parts = self.body.split(b"\n\n")
        out = [p + b"\n\n" for p in parts[:-1]]
        if parts[-1]:
            out.append(parts[-1])
        return out

    def data_objects(self) -> list[Any]:
        """The JSON value of every `data:` line that is not [DONE], in order."""
        out = []
        for line in self.body.split(b"\n"):
            if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]":
                out.append(json.loads(line[6:]))
        return out

    def texts_by_index(self) -> dict[int, str]:
        texts: dict[int, str] = {}
        for obj in self.data_objects():
            if not isinstance(obj, dict):
                continue
            for ch in obj.get("choices") or []:
                texts[ch["index"]] = texts.get(ch["index"], "") + (ch.get("text") or "")
        return texts


def dechunk(raw: bytes) -> tuple[list[bytes], bool]:
    """The chunks of an HTTP/1.1 chunked body (without the terminating zero-size chunk), and
    whether that terminator came (it does not when the server closed the connection early)."""
    chunks = []
    pos = 0
    while pos < len(raw):
        eol = raw.index(b"\r\n", pos)
        size = int(raw[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            return chunks, True
        chunks.append(raw[pos : pos + size])
        assert raw[pos + size : pos + size + 2] == b"\r\n", "malformed chunk framing"
        pos += size + 2
    return chunks, False


def load_capture(server: str, case: str) -> Capture:
    d = CAPTURES / server / case
    head = (d / "headers.txt").read_bytes().decode("latin-1").split("\r\n")
    _version, status, reason = (head[0].split(" ", 2) + [""])[:3]
    headers = []
    for line in head[1:]:
        if not line:
            break
        k, v = line.split(":", 1)
        headers.append((k, v.strip()))
    body = (d / "body.sse").read_bytes()
    chunks = None
    terminated = True
    if (d / "body.chunked-raw").exists():
        chunks, terminated = dechunk((d / "body.chunked-raw").read_bytes())
    req_path = d / "request.json"
    request = req_path.read_bytes() if req_path.exists() else None
    if request is not None:
        try:
            request = json.loads(request)
        except ValueError:
            pass  # a deliberately malformed request
    return Capture(server, case, int(status), reason, headers, body, chunks, request, terminated)


def capture_reply(cap: Capture, *, chunked_raw: bool = False, **kw: Any) -> Reply:
    """A Reply that puts `cap` back on the wire: chunked when the server chunked it (one segment
    per event of body.sse, or with ``chunked_raw`` the chunks of body.chunked-raw exactly), else
    framed by content-length."""
    framing = cap.header_map
    headers = [(k, v) for k, v in cap.headers if k.lower() not in ("transfer-encoding", "content-length")]
    if chunked_raw:
        assert cap.chunks is not None, f"{cap.server}/{cap.case} has no body.chunked-raw"
    if "chunked" in framing.get("transfer-encoding", "").lower():
        segments = cap.chunks if chunked_raw else cap.events()
        end = "chunked" if cap.terminated else "abort"
    else:
        segments = [cap.body]
        end = "length"
    args: dict[str, Any] = dict(status=cap.status, reason=cap.reason, headers=headers, segments=segments, end=end)
    args.update(kw)
    return Reply(**args)
