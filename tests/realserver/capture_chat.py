"""Capture both real servers' `/v1/chat/completions` answers into tests/fixtures/realserver/.

    python tests/realserver/capture_chat.py        # needs the build of tests/realserver/build.py

For each server (the tiny model, as the `realserver` fixture starts it) and each case below, one
request with `curl -N --raw`: `headers.txt` (status line and headers as sent), `body.chunked-raw`
(the body with its HTTP/1.1 chunk framing), `body.sse` (the same body de-chunked, so both are the
one response), `request.json`, `meta.txt`. tests/test_realserver_chat_findings.py serves them
again from the loopback server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.realserver import build
from tests.realserver.captures import CAPTURES, dechunk
from tests.realserver.servers import KINDS, MODEL_ALIAS, start_server, stop_server

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello"}]
BASE = {"model": MODEL_ALIAS, "messages": MESSAGES, "max_tokens": 12, "temperature": 0, "seed": 42}
CASES = {
    "30-chat-stream-usage": {**BASE, "stream": True, "stream_options": {"include_usage": True}},
    "31-chat-stream-no-usage": {**BASE, "stream": True},
    "32-chat-non-stream": {**BASE, "stream": False},
}


def capture(origin: str, request: dict, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    (into / "request.json").write_text(json.dumps(request, separators=(",", ":")) + "\n")
    meta = subprocess.run(
        ["curl", "-N", "-s", "--raw", "-D", str(into / "headers.txt"), "-o", str(into / "body.chunked-raw"),
         "-w", "http_code=%{http_code}\ncontent_type=%{content_type}\nsize_download=%{size_download}\n",
         "-H", "Content-Type: application/json", "--data-binary", f"@{into / 'request.json'}", f"{origin}/v1/chat/completions"],
        check=True, capture_output=True, timeout=120,
    ).stdout
    (into / "meta.txt").write_bytes(meta)
    raw = (into / "body.chunked-raw").read_bytes()
    if b"transfer-encoding: chunked" in (into / "headers.txt").read_bytes().lower():
        chunks, _ = dechunk(raw)
        (into / "body.sse").write_bytes(b"".join(chunks))
    else:
        (into / "body.sse").write_bytes(raw)
        (into / "body.chunked-raw").unlink()


def main() -> None:
    model = build.paths().model("tiny")
    with tempfile.TemporaryDirectory() as logs:
        for kind in KINDS:
            srv = start_server(kind, model, MODEL_ALIAS, 512, Path(logs))
            try:
                for case, request in CASES.items():
                    capture(srv.origin, request, CAPTURES / kind / case)
                    print(f"{kind}/{case}", file=sys.stderr)
            finally:
                stop_server(srv)


if __name__ == "__main__":
    main()
