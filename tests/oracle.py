"""A test oracle: the reference client algorithm, applied to a whole captured response.

The algorithm: a status outside 2xx is an HTTP error whose message is the body's `error.message`
(or `error` itself when it is a string, or the flat body's `message`, else the body's text); a 2xx
body that is not an event stream is one whole completion when it is JSON with `choices`, else a
protocol error. In an event stream, `[DONE]` ends it; a frame with a non-empty `error` (or a flat
`"object": "error"`, or an `event: error`) is a stream error; JSON that does not parse is a
protocol error; usage is the last non-null `usage`; text goes to its choice by `index`, and a
choice's frames after its `finish_reason` are ignored. Without `[DONE]` the stream is cut unless
every choice seen has finished.

It is deliberately simple (whole body at once, no I/O) so that it is easy to check by eye; the
real client parses incrementally. Given status, headers, body bytes and whether the connection
dropped before the body was complete, `expected_outcome` returns a dict in the shape of a
scenario's "outcome" (see tests/scenarios.py). Tests use it to keep the hand-written fixture
outcomes honest, and it can serve as the expected value in property tests (e.g. random
re-chunking of a stream must not change the outcome).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

_LINE_END = re.compile(rb"\r\n|\r|\n")
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def sse_events(body: bytes) -> list[tuple[str, str]]:
    """(event type, data) pairs per WHATWG: one leading BOM stripped, lines split on CR/LF/CRLF
    only, UTF-8 with replacement, comments ignored, dispatch on a blank line only when the data
    buffer is non-empty, an unterminated event at EOF discarded."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    lines = _LINE_END.split(body)[:-1]  # the last piece has no line ending: discarded at EOF
    events: list[tuple[str, str]] = []
    data: list[str] = []
    etype = ""
    for raw in lines:
        line = raw.decode("utf-8", "replace")
        if line == "":
            if data:
                events.append((etype or "message", "\n".join(data)))
            data, etype = [], ""
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            etype = value
        # id / retry / unknown fields: ignored for completions
    return events


def _usage(u: Any) -> dict[str, Any] | None:
    if not isinstance(u, dict):
        return None
    return {k: u.get(k) for k in _USAGE_KEYS}


def _error_message(err: Any, fallback: str) -> str:
    if isinstance(err, dict):
        msg = err.get("message")
        return str(msg) if msg else fallback
    return str(err) if err else fallback


def _error_fields(err: Any) -> dict[str, Any]:
    if isinstance(err, dict):
        return {"error_type": err.get("type"), "error_code": err.get("code")}
    return {}


class _State:
    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.finish: dict[str, Any] = {}
        self.stop_reason: dict[str, Any] = {}
        self.usage: dict[str, Any] | None = None

    def choice(self, c: dict[str, Any]) -> None:
        k = str(c["index"])
        if k not in self.texts:
            self.texts[k] = ""
            self.finish[k] = None
            self.stop_reason[k] = None
        if self.finish[k] is not None:
            return  # duplicate terminal frames after a finish are ignored
        self.texts[k] += c.get("text") or ""
        if c.get("finish_reason") is not None:
            self.finish[k] = c["finish_reason"]
            self.stop_reason[k] = c.get("stop_reason")

    def outcome(self, kind: str, **extra: Any) -> dict[str, Any]:
        out = {
            "kind": kind,
            "texts": dict(self.texts),
            "finish": dict(self.finish),
            "stop_reason": dict(self.stop_reason),
            "usage": self.usage,
        }
        out.update(extra)
        return out


def expected_outcome(
    status: int,
    headers: Iterable[tuple[str, str]] | dict[str, str],
    body: bytes,
    dropped: bool = False,
    reason: str = "",
) -> dict[str, Any]:
    """The outcome a correct client reaches (see tests/scenarios.py for the shape).

    ``dropped`` = the connection closed before the body was complete (no chunked terminator).
    """
    hdrs = {k.lower(): v for k, v in (headers.items() if isinstance(headers, dict) else headers)}
    st = _State()
    if not 200 <= status < 300:
        text = body[:2000].decode("utf-8", "replace")
        try:
            j = json.loads(body)
        except ValueError:
            j = None
        err = j["error"] if isinstance(j, dict) and "error" in j else j
        message = _error_message(err, text) if err is not None else text
        extra = {"http_status": status, "message": message, **_error_fields(err)}
        if "retry-after" in hdrs:
            extra["retry_after"] = hdrs["retry-after"]
        return st.outcome("http_error", **extra)

    media = hdrs.get("content-type", "").split(";")[0].strip().lower()
    if media != "text/event-stream":
        try:
            j = json.loads(body)
        except ValueError:
            j = None
        if isinstance(j, dict) and isinstance(j.get("choices"), list):
            for c in j["choices"]:
                st.choice(c)
            st.usage = _usage(j.get("usage"))
            return st.outcome("ok")
        return st.outcome("protocol_error", message=f"unexpected content-type {media!r}")

    done = False
    for etype, data in sse_events(body):
        if etype not in ("message", "error"):
            continue
        if data.strip() == "":
            continue
        if etype == "message" and data.startswith("[DONE]"):
            done = True
            break
        try:
            j = json.loads(data)
        except ValueError:
            if etype == "error":
                return st.outcome("stream_error", message=data)
            return st.outcome("protocol_error", message=f"invalid JSON in event: {data}")
        if etype == "error":
            err = j["error"] if isinstance(j, dict) and j.get("error") else j
            return st.outcome("stream_error", message=_error_message(err, data), **_error_fields(err))
        if j is None:
            continue  # llama-server's `data: null` between prompts
        if not isinstance(j, dict):
            return st.outcome("protocol_error", message=f"unexpected event data: {data}")
        if j.get("error"):
            err = j["error"]
            return st.outcome("stream_error", message=_error_message(err, data), **_error_fields(err))
        if j.get("object") == "error":
            return st.outcome("stream_error", message=_error_message(j, data), **_error_fields(j))
        if j.get("usage"):
            st.usage = _usage(j["usage"])
        for c in j.get("choices") or []:
            st.choice(c)

    # EOF or a dropped connection without [DONE] is a truncation unless every seen choice
    # finished (so `dropped` alone does not decide it); finish_reason "abort" is a failure too.
    all_finished = all(v is not None for v in st.finish.values())
    if not done and not all_finished:
        return st.outcome("incomplete")
    if any(v == "abort" for v in st.finish.values()):
        return st.outcome("incomplete")
    return st.outcome("ok")


def matches(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Differences between a fixture outcome and an oracle outcome (empty list = agree)."""
    problems = []
    for key in ("kind", "texts", "finish", "usage", "http_status"):
        if key in expected and expected[key] != actual.get(key):
            problems.append(f"{key}: fixture {expected[key]!r} != oracle {actual.get(key)!r}")
    if "stop_reason" in expected and expected["stop_reason"] != actual.get("stop_reason"):
        problems.append(f"stop_reason: fixture {expected['stop_reason']!r} != oracle {actual.get('stop_reason')!r}")
    for key in ("error_type", "error_code", "retry_after"):
        if key in expected and expected[key] != actual.get(key):
            problems.append(f"{key}: fixture {expected[key]!r} != oracle {actual.get(key)!r}")
    needle = expected.get("message_contains")
    if needle is not None:
        shown = f"{actual.get('http_status', '')} {actual.get('message', '')}"
        if needle not in shown:
            problems.append(f"message_contains {needle!r} not in oracle message {shown!r}")
    return problems
