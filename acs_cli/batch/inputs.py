"""The input of `acs batch`, read streamed (twice: a validating pass, then the run) and never held.

Three formats, one request per line (blank lines are skipped everywhere):

- `batch`: OpenAI Batch API lines `{"custom_id", "method": "POST", "url": "/v1/completions", "body"}`;
- `prompts`: `{"prompt": ..., "custom_id"?: ..., <request fields>...}`;
- `text`: each line is a prompt (`-e` turns \\n, \\t and \\\\ into the characters).

A line without a custom_id (prompts, text) is `line-N`, N its line number in the file: the
fingerprint (SHA-256 of the input's bytes) is what lets a resumed run trust those ids. `auto`
picks the format from the first non-blank line. stdin (`-`) is spooled to a temporary file by the
first pass, so the second reads it again without holding it in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from acs_cli.batch.ids import IdSet, count_lines
from acs_cli.batch.kinds import CHAT, COMPLETIONS, KINDS, RequestKind
from acs_cli.errors import UsageError
from acs_cli.request import decode_escapes

FORMATS = ("auto", "batch", "prompts", "text")
LINE_LIMIT = 16 << 20  # one request line; a longer one is a problem, never buffered whole
PROBLEMS_KEPT = 50  # problems listed; the rest are counted
_BATCH_KEYS = ("custom_id", "method", "url", "body")


@dataclass(slots=True)
class Request:
    number: int  # the line number in the input (1-based)
    custom_id: str
    kind: RequestKind
    fields: dict[str, Any]  # the line's own request fields, over the defaults


@dataclass(slots=True)
class Problem:
    number: int
    message: str


@dataclass
class Scan:
    """What the validating pass found."""

    format: str
    requests: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    fingerprint: str = ""
    size: int = 0
    prompt_tokens: int = 0  # estimated (characters / 4, or the token ids given)
    completion_tokens: int = 0  # the most the requests may generate (max_tokens x choices)
    without_model: int = 0  # requests that leave the model to the endpoint
    ids: IdSet = field(default_factory=IdSet)

    def problem(self, number: int, message: str) -> Problem | None:
        self.problem_count += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(Problem(number, message))
            return self.problems[-1]
        return None


class Source:
    """The input file, or stdin spooled to a temporary file by the first pass."""

    def __init__(self, path: str, stdin: IO[bytes] | None = None) -> None:
        self.path = path
        self.stdin = stdin
        self._spool: IO[bytes] | None = None

    @property
    def name(self) -> str:
        return "stdin" if self.path == "-" else self.path

    def lines_hint(self) -> int:
        """The number of lines, when the input is a file (to size the id table once)."""
        return 0 if self.path == "-" else count_lines(self.path)

    def first_pass(self) -> Iterator[tuple[int, bytes | None]]:
        if self.path != "-":
            with self._open() as f:
                yield from numbered_lines(f)
            return
        if self.stdin is None:
            raise UsageError("no input on stdin", "give a file, or pipe the requests into `acs batch -`")
        self._spool = tempfile.TemporaryFile(prefix="acs-batch-stdin-")
        spool = self._spool
        for number, raw in numbered_lines(self.stdin):
            spool.write((raw if raw is not None else b"") + b"\n")
            yield number, raw

    def second_pass(self) -> Iterator[tuple[int, bytes | None]]:
        if self._spool is not None:
            self._spool.seek(0)
            yield from numbered_lines(self._spool)
            return
        with self._open() as f:
            yield from numbered_lines(f)

    def _open(self) -> IO[bytes]:
        try:
            return open(self.path, "rb")
        except FileNotFoundError:
            raise UsageError(f"no such input file: {self.path}", "give the path of a JSONL or text file, or - for stdin") from None
        except IsADirectoryError:
            raise UsageError(f"the input {self.path} is a directory", "give the path of a JSONL or text file") from None
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror or exc}", "check the path and its permissions") from None

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None


class Hashing:
    """The input's fingerprint: SHA-256 of its lines as acs reads them (each ended by \\n), and their size."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0


def numbered_lines(f: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, the line without its end) for each line; None for a line over LINE_LIMIT."""
    number = 0
    readline = f.readline
    while True:
        raw = readline(LINE_LIMIT + 1)
        if not raw:
            return
        number += 1
        if len(raw) > LINE_LIMIT and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # the rest of the long line, a piece at a time
                raw = readline(LINE_LIMIT)
            yield number, None
            continue
        yield number, raw.rstrip(b"\n").removesuffix(b"\r")


def sniff_format(path: str, first: bytes | None) -> str:
    """The format of an input from its name and first non-blank line."""
    if path.endswith(".txt"):
        return "text"
    line = (first or b"").strip()
    if not line.startswith(b"{"):
        return "text"
    try:
        obj = json.loads(line)
    except ValueError:
        # malformed JSON still means a JSONL file: the validation says what is wrong with the line
        return "batch" if b'"body"' in line and b'"url"' in line else "prompts"
    if isinstance(obj, dict) and any(key in obj for key in ("url", "body", "method")):
        return "batch"
    return "prompts"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_decode = json.JSONDecoder(parse_constant=_no_constant).decode  # one decoder: json.loads with options builds one a call


def parse_line(raw: bytes | None, number: int, fmt: str, escapes: bool = False) -> Request | list[str] | None:
    """One line: a Request, the list of what is wrong with it, or None for a blank line."""
    if raw is None:
        return [f"the line is longer than {LINE_LIMIT >> 20} MiB"]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"not valid UTF-8 (byte {exc.start + 1})"]
    if not text.strip():
        return None
    if fmt == "text":
        prompt = decode_escapes(text) if escapes else text
        return Request(number, f"line-{number}", COMPLETIONS, {"prompt": prompt})
    try:
        obj = _decode(text)
    except RecursionError:
        return ["the JSON is nested too deeply"]
    except ValueError as exc:
        where = f" (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        return [f"malformed JSON: {getattr(exc, 'msg', str(exc))}{where}"]
    if not isinstance(obj, dict):
        return ["not a JSON object"]
    if fmt == "batch":
        return _batch_line(obj, number)
    return _prompt_line(obj, number)


def _batch_line(obj: dict[str, Any], number: int) -> Request | list[str]:
    problems: list[str] = []
    custom_id = obj.get("custom_id")
    if custom_id is None:
        problems.append("missing custom_id")
    elif not isinstance(custom_id, str) or not custom_id:
        problems.append("custom_id is not a non-empty string")
    method = obj.get("method", "POST")
    if method != "POST":
        problems.append(f"method {str(method)[:40]!r} is not POST")
    url = obj.get("url")
    kind = KINDS.get(url) if isinstance(url, str) else None
    if url is None:
        problems.append('missing url ("/v1/completions" or "/v1/chat/completions")')
    elif kind is None:
        problems.append(f"unknown url {str(url)[:80]!r}: acs batch sends {' and '.join(KINDS)}" if isinstance(url, str) else "url is not a string")
    body = obj.get("body")
    if not isinstance(body, dict):
        problems.append("missing body" if body is None else "body is not a JSON object")
    elif kind is not None:
        problems += check_fields(body, kind)
    extra = sorted(set(obj) - set(_BATCH_KEYS))
    if extra:
        problems.append(f"unknown key {extra[0][:40]!r} (a batch line has custom_id, method, url and body)")
    if problems or kind is None or not isinstance(body, dict) or not isinstance(custom_id, str):
        return problems
    return Request(number, custom_id, kind, body)


def _prompt_line(obj: dict[str, Any], number: int) -> Request | list[str]:
    kind = CHAT if "messages" in obj and "prompt" not in obj else COMPLETIONS
    if "body" in obj or "url" in obj:
        return ["this looks like an OpenAI batch line (url, body) in a prompts file: use --format batch"]
    problems = []
    custom_id = obj.get("custom_id", f"line-{number}")
    if not isinstance(custom_id, str) or not custom_id:
        problems.append("custom_id is not a non-empty string")
    fields = {k: v for k, v in obj.items() if k != "custom_id"}
    problems += check_fields(fields, kind)
    return problems or Request(number, custom_id, kind, fields)


def check_fields(fields: dict[str, Any], kind: RequestKind) -> list[str]:
    """What is wrong with a line's request fields (light checks: the server judges the rest)."""
    problems = []
    if "stream" in fields and fields["stream"] is not False:
        problems.append("stream is set in the body: acs batch streams every request itself; remove it")
    problems += kind.check(fields)
    for name, low in (("max_tokens", 0), ("n", 1)):
        value = fields.get(name)
        if value is not None and (type(value) is not int or value < low):
            problems.append(f"{name} is not a whole number of at least {low}")
    model = fields.get("model")
    if model is not None and not isinstance(model, str):
        problems.append("model is not a string")
    return problems


def estimate_tokens(fields: dict[str, Any], kind: RequestKind, default_max_tokens: int) -> tuple[int, int]:
    """(prompt tokens, most completion tokens) of one request: the kind's prompt estimate, and
    max_tokens (or the default) x n x the prompts it holds."""
    tokens, prompts = kind.prompt_tokens(fields)
    max_tokens = fields.get("max_tokens", default_max_tokens)
    n = fields.get("n", 1)
    return tokens, (max_tokens if type(max_tokens) is int else default_max_tokens) * (n if type(n) is int else 1) * prompts


def scan(source: Source, fmt: str, *, escapes: bool = False, default_max_tokens: int = 256) -> Scan:
    """The validating pass: every problem with its line number, counts, estimates, fingerprint."""
    hashing = Hashing()
    lines = _hashed(source.first_pass(), hashing)
    result: Scan | None = None
    duplicates: dict[str, list[Problem]] = {}  # the listed ones, told where each id came first below
    for number, raw in lines:
        if result is None:
            if raw is not None and not raw.strip():
                continue
            result = Scan(fmt if fmt != "auto" else sniff_format(source.path, raw), ids=IdSet(source.lines_hint()))
        parsed = parse_line(raw, number, result.format, escapes)
        if parsed is None:
            continue
        if isinstance(parsed, list):
            for message in parsed:
                result.problem(number, message)
            continue
        if not result.ids.add(parsed.custom_id):
            shown = result.problem(number, f"duplicate custom_id {parsed.custom_id[:80]!r}")
            if shown is not None:
                duplicates.setdefault(parsed.custom_id, []).append(shown)
            continue
        result.requests += 1
        if "model" not in parsed.fields:
            result.without_model += 1
        prompt, most = estimate_tokens(parsed.fields, parsed.kind, default_max_tokens)
        result.prompt_tokens += prompt
        result.completion_tokens += most
    if result is None:
        result = Scan(fmt if fmt != "auto" else "text")
    result.fingerprint = hashing.sha.hexdigest()
    result.size = hashing.size
    if duplicates:
        _first_lines(source, result.format, escapes, duplicates)
    return result


def _first_lines(source: Source, fmt: str, escapes: bool, duplicates: dict[str, list[Problem]]) -> None:
    """Name the line each listed duplicate id came first on (a second pass: the id table keeps
    only hashes, and a file with duplicates is refused anyway)."""
    for request in requests(source, fmt, escapes):
        problems = duplicates.pop(request.custom_id, None)
        for problem in problems or ():
            problem.message += f" (first on line {request.number})"
        if not duplicates:
            return


def _hashed(lines: Iterator[tuple[int, bytes | None]], hashing: Hashing) -> Iterator[tuple[int, bytes | None]]:
    """The lines of the first pass, their bytes hashed as they were in the file (line ends included)."""
    for number, raw in lines:
        if raw is None:
            hashing.sha.update(b"\0overlong\0")  # an overlong line is refused anyway
        else:
            hashing.sha.update(raw)
            hashing.sha.update(b"\n")
            hashing.size += len(raw) + 1
        yield number, raw


def requests(source: Source, fmt: str, escapes: bool = False) -> Iterator[Request]:
    """The run's pass: the requests in input order (the first pass found nothing wrong)."""
    for number, raw in source.second_pass():
        parsed = parse_line(raw, number, fmt, escapes)
        if isinstance(parsed, Request):
            yield parsed


def describe(path: str) -> str:
    """The input as a fingerprint names it: its absolute path (stdin has none)."""
    return "-" if path == "-" else os.path.abspath(path)
