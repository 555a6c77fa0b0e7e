"""Load the wire conformance scenarios in tests/fixtures/wire_scenarios.json.

The file is a JSON list; one object per scenario:

  id               "S01".."S54": the cases of a conformance suite written against what vLLM,
                   api.openai.com and proxies send, numbered by subject (content and semantics
                   S01-S19, HTTP and in-band errors S20-S32, event-stream framing and transport
                   S33-S54), or "Xnn": written here from the rules (X04..X53 fill the numbers
                   that suite keeps back, X55.. are extra cases)
  name, title      the scenario's short name and one-line description
  origin           "wire" (bytes and Expect copied from that suite) or "derived" (written from
                   the framing, chunk, error and client rules)
  status, reason   HTTP status code and reason phrase
  headers          [[name, value], ...] exactly as sent, WITHOUT transfer-encoding/content-length
                   (the server derives those from "end")
  segments_b64     one entry per HTTP chunk / TCP write, in order (see segments_encoding)
  segments_encoding
                   "base64" (each entry is base64 of the bytes) or "gzip+base64" (each entry is
                   base64 of the gzip-compressed bytes; used for the 1 MB scenario S54)
  one_byte_chunks  true: send every byte of every segment as its own chunk (S36)
  end              "chunked" (chunked body and its 0\\r\\n\\r\\n terminator; that suite's server then
                   closes, tests/sse_server.py keeps the connection open for reuse, which a client
                   cannot tell apart), "length" (content-length framing), "abort" (socket closed
                   without the chunked terminator)
  expect           the Expect prose (verbatim for "wire" scenarios)
  outcome          what a correct client ends with, by the reference client algorithm
                   (written down and implemented in tests/oracle.py):
      kind         "ok" | "incomplete" | "stream_error" | "http_error" | "protocol_error"
      texts        {"<index>": text delivered for that choice} (partial text for failures)
      finish       {"<index>": finish_reason or null}
      stop_reason  {"<index>": stop_reason (int, str) or null}
      usage        {"prompt_tokens", "completion_tokens", "total_tokens"} or null (the last
                   non-null usage seen; extra keys such as prompt_tokens_details are dropped)
      http_status  (http_error only) the status code
      message_contains  (http_error, stream_error, protocol_error) a substring the user must
                   see; for http_error the status code must be shown as well
      error_type, error_code, retry_after   (optional) details of the error when it has them
      texts_encoding  "gzip+base64" when texts values are compressed (S54); load_scenarios()
                   decodes them so callers always see plain strings

Use load_scenarios() / get_scenario(): they decode everything, adding "segments" (list[bytes])
and turning compressed texts back into str.
"""

from __future__ import annotations

import base64
import copy
import functools
import gzip
import json
from pathlib import Path
from typing import Any

FIXTURE_PATH = Path(__file__).parent / "fixtures" / "wire_scenarios.json"


@functools.lru_cache(maxsize=1)
def _raw() -> list[dict[str, Any]]:
    with open(FIXTURE_PATH, encoding="utf-8") as f:
        return json.load(f)


def _decode_one(encoding: str, value: str) -> bytes:
    data = base64.b64decode(value)
    if encoding == "gzip+base64":
        return gzip.decompress(data)
    if encoding != "base64":
        raise ValueError(f"unknown encoding {encoding!r}")
    return data


def scenario_segments(sc: dict[str, Any]) -> list[bytes]:
    """The raw body segments of a scenario (already decoded ones are returned as they are)."""
    if "segments" in sc:
        return list(sc["segments"])
    enc = sc.get("segments_encoding", "base64")
    return [_decode_one(enc, s) for s in sc["segments_b64"]]


def scenario_body(sc: dict[str, Any]) -> bytes:
    return b"".join(scenario_segments(sc))


def _decode(sc: dict[str, Any]) -> dict[str, Any]:
    sc = copy.deepcopy(sc)
    sc["segments"] = scenario_segments(sc)
    out = sc["outcome"]
    enc = out.pop("texts_encoding", None)
    if enc:
        out["texts"] = {k: _decode_one(enc, v).decode("utf-8") for k, v in out["texts"].items()}
    return sc


def load_scenarios() -> list[dict[str, Any]]:
    """All scenarios, decoded (fresh copies each call)."""
    return [_decode(sc) for sc in _raw()]


def get_scenario(scenario_id: str) -> dict[str, Any]:
    for sc in _raw():
        if sc["id"] == scenario_id or sc["name"] == scenario_id:
            return _decode(sc)
    raise KeyError(scenario_id)


def scenario_ids() -> list[str]:
    return [sc["id"] for sc in _raw()]
