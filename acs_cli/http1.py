"""HTTP/1.1 as pure functions and state machines (RFC 9112, validated as h11 does): no I/O.

The sync transport (acs_cli/transport.py) and the asyncio engine (acs_cli/engine.py) both feed
the bytes they read into these, so a rule about the wire is written once:

- `encode_request` builds a request head (a header value that could smuggle a line is refused);
- `HeadParser` takes response bytes as they come and returns the final `Head`, skipping interim
  1xx answers, with the head's size and the number of interim answers bounded;
- `body_decoder(head)` is a `ChunkedDecoder`, `LengthDecoder` or `CloseDecoder`: `feed(data)`
  returns the payload that one read carried, as ONE block (the cost is per read, not per chunk);
- acs_cli.codings undoes a Content-Encoding for the callers that want the text, not the wire.

Every protocol violation raises `MalformedResponse`; a body cut short raises `IncompleteBody`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024  # status line and headers of one answer; more is refused, never buffered
MAX_INTERIM = 16  # 1xx answers skipped before the real one; a server sending them forever is cut off
MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions
MAX_TRAILERS = 16 * 1024  # the trailer section after the last chunk


class MalformedResponse(Exception):
    """The server's bytes break HTTP/1.1: a protocol error, never worth a retry."""


class IncompleteBody(Exception):
    """The connection closed before the body's framing said it was complete."""


class InvalidRequestHeader(ValueError):
    """A request header that cannot be sent as it is (the message never shows the value)."""


# --------------------------------------------------------------------------- grammar (RFC 9110/9112)

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
# h11's field value: visible characters and obs-text separated by spaces or tabs; no NUL, CR, LF
_HEADER_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*")
# the reason may be empty or missing (servers leave it out); h11 accepts both
_STATUS_LINE = re.compile(rb"HTTP/(1\.[0-9]) ([0-9]{3})(?: ([^\x00\n\r\x0b\x0c]*))?")
_HEAD_END = re.compile(rb"\n\r?\n")
_OBS_FOLD = re.compile(rb"[ \t]+")
_TOKEN_RE = re.compile(_TOKEN)
_CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[^\r\n]*)?[ \t]*")
_HEX = b"0123456789abcdefABCDEF"


# --------------------------------------------------------------------------- requests


def encode_request(method: str, target: bytes, headers: Iterable[tuple[bytes, bytes]], body: bytes = b"") -> bytes:
    """The bytes of one request; a name that is not a token or a value with CR, LF or NUL is refused."""
    lines = [method.encode("ascii") + b" " + target + b" HTTP/1.1"]
    for name, value in headers:
        if not _TOKEN_RE.fullmatch(name):
            raise InvalidRequestHeader(f"the header name {name[:40].decode('latin-1')!r} is not a token")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            # a line break would smuggle another header in; the value itself is never shown
            raise InvalidRequestHeader(f"the {name.decode('latin-1')} header contains a line break or NUL")
        lines.append(name + b": " + value)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# --------------------------------------------------------------------------- response heads


@dataclass(slots=True)
class Head:
    """A final response head with what its headers mean for the body and the connection."""

    status: int
    reason: bytes
    version: bytes  # b"HTTP/1.1"
    headers: list[tuple[bytes, bytes]]  # as received: name case and order kept, values trimmed
    framing: str = "close"  # "chunked", "length" or "close"
    length: int = 0  # with framing "length"
    keep_alive: bool = False  # the connection may carry another request after this body
    content_codings: list[bytes] = field(default_factory=list)  # lower case, in the order applied

    def get(self, name: bytes) -> bytes | None:
        """The first value of a header (name in lower case)."""
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class HeadParser:
    """Response bytes in, the final `Head` out; `rest` then holds the bytes after it (the body's).

    The head ends at the first empty line whatever mix of CRLF and bare LF it uses (RFC 9112 section 2.2
    lets a recipient take LF alone as a line end), so a bare-LF head followed by a CRLF body is not
    read into the body. Interim 1xx answers are skipped (at most MAX_INTERIM); 101 is refused,
    since acs never asks to switch protocols.
    """

    __slots__ = ("_buf", "_search", "interim", "method", "received", "rest")

    def __init__(self, method: str = "GET") -> None:
        self.method = method.upper()
        self.received = 0  # bytes fed so far: 0 means the server never answered
        self.interim = 0
        self.rest = b""
        self._buf = b""
        self._search = 0

    def feed(self, data: bytes) -> Head | None:
        self.received += len(data)
        self._buf += data
        while True:
            buf = self._buf
            if buf and not (buf.startswith(b"HTTP/") or b"HTTP/".startswith(buf[:5])):
                raise MalformedResponse(f"the response does not start with a status line: {bytes(buf[:40])!r}")
            match = _HEAD_END.search(buf, self._search)
            if match is None:
                if len(buf) > MAX_HEAD:
                    raise MalformedResponse(f"the response head exceeds {MAX_HEAD // 1024} KiB")
                self._search = max(0, len(buf) - 2)
                return None
            end = match.end()
            if end > MAX_HEAD:
                raise MalformedResponse(f"the response head exceeds {MAX_HEAD // 1024} KiB")
            head = parse_head(buf[:end], self.method)
            self._buf, self._search = buf[end:], 0
            if head is not None:
                self.rest, self._buf = self._buf, b""
                return head
            self.interim += 1
            if self.interim > MAX_INTERIM:
                raise MalformedResponse(f"more than {MAX_INTERIM} interim (1xx) responses")


def parse_head(block: bytes, method: str = "GET") -> Head | None:
    """One head (through its empty line) into a `Head`; None for an interim 1xx answer."""
    lines = [line[:-1] if line.endswith(b"\r") else line for line in block.split(b"\n")]
    del lines[-2:]  # the empty line and what follows the last LF
    match = _STATUS_LINE.fullmatch(lines[0]) if lines else None
    if match is None:
        raise MalformedResponse(f"malformed status line {bytes(lines[0][:80]) if lines else b''!r}")
    status = int(match.group(2))
    if status < 100:
        raise MalformedResponse(f"malformed status line {bytes(lines[0][:80])!r}")
    if status == 101:
        raise MalformedResponse("the server switched protocols (101), which acs never asks for")
    head = Head(status, match.group(3) or b"", b"HTTP/" + match.group(1), _header_fields(lines[1:]))
    if status < 200:
        return None
    _frame(head, method)
    return head


def _header_fields(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Header lines into (name, value) pairs; obs-fold continuation lines are joined with a space,
    as RFC 9112 section 5.2 tells a user agent (and h11) to do."""
    unfolded: list[bytes] = []
    for line in lines:
        fold = _OBS_FOLD.match(line)
        if fold:
            if not unfolded:
                raise MalformedResponse("a continuation line before any header")
            unfolded[-1] += b" " + line[fold.end() :]
        else:
            unfolded.append(line)
    fields = []
    for line in unfolded:
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            raise MalformedResponse(f"malformed header line {bytes(line[:80])!r}")
        fields.append((match.group(1), match.group(2)))
    return fields


def _frame(head: Head, method: str) -> None:
    """How the body is delimited and whether the connection can be reused (RFC 9112 section 6.3, h11's
    rules: Content-Length digits only and consistent; Transfer-Encoding exactly `chunked`, which
    wins over a Content-Length, though such a connection is not reused)."""
    lengths: set[bytes] = set()
    codings: list[bytes] = []
    transfer: list[bytes] = []
    close = False
    for name, value in head.headers:
        key = name.lower()
        if key == b"content-length":
            lengths.update(part.strip() for part in value.split(b","))
        elif key == b"transfer-encoding":
            transfer.append(value.lower())
        elif key == b"connection":
            close = close or b"close" in (part.strip().lower() for part in value.split(b","))
        elif key == b"content-encoding":
            codings += content_codings(value)
    if len(lengths) > 1:
        raise MalformedResponse(f"conflicting Content-Length values {sorted(lengths)[:4]!r}")
    length = lengths.pop() if lengths else None
    if length is not None and not (length.isdigit() and len(length) <= 18):
        raise MalformedResponse(f"malformed Content-Length {bytes(length[:40])!r}")
    if len(transfer) > 1:
        raise MalformedResponse("more than one Transfer-Encoding header")
    if transfer and transfer[0] != b"chunked":
        raise MalformedResponse(f"unsupported Transfer-Encoding {bytes(transfer[0][:40])!r} (only chunked is)")
    head.content_codings = codings
    head.keep_alive = head.version == b"HTTP/1.1" and not close
    if method == "HEAD" or head.status in (204, 304) or (method == "CONNECT" and head.status < 300):
        head.framing, head.length = "length", 0
    elif transfer:
        head.framing = "chunked"
        if length is not None:  # a smuggling shape: read it as chunked, then drop the connection
            head.keep_alive = False
    elif length is not None:
        head.framing, head.length = "length", int(length)
    else:
        head.framing, head.keep_alive = "close", False


def content_codings(value: bytes) -> list[bytes]:
    """The codings a Content-Encoding value lists, lower case, `identity` left out."""
    return [c for c in (part.strip().lower() for part in value.split(b",")) if c and c != b"identity"]


# --------------------------------------------------------------------------- body framing


class BodyDecoder:
    """A body's framing as a state machine: `feed(data)` returns the payload of one read (b"" when
    it held only framing), `done` turns True at the framed end and `leftover` keeps what followed."""

    done: bool = False
    leftover: bytes = b""

    def feed(self, data: bytes) -> bytes:
        raise NotImplementedError

    def eof(self) -> None:
        """The connection closed: fine for a close-delimited body, a cut one otherwise."""
        if not self.done:
            raise IncompleteBody("peer closed connection without sending complete message body")


class LengthDecoder(BodyDecoder):
    __slots__ = ("done", "leftover", "remaining")

    def __init__(self, length: int) -> None:
        self.remaining = length
        self.done = length == 0
        self.leftover = b""

    def feed(self, data: bytes) -> bytes:
        if self.done:
            self.leftover += data
            return b""
        if len(data) < self.remaining:
            self.remaining -= len(data)
            return data
        out, self.leftover = data[: self.remaining], data[self.remaining :]
        self.remaining, self.done = 0, True
        return out


class CloseDecoder(BodyDecoder):
    __slots__ = ("done", "leftover")

    def __init__(self) -> None:
        self.done = False
        self.leftover = b""

    def feed(self, data: bytes) -> bytes:
        return data

    def eof(self) -> None:
        self.done = True


_SIZE, _DATA, _CRLF, _TRAILER = range(4)


class ChunkedDecoder(BodyDecoder):
    """Chunked framing, all the chunks one read holds decoded in one pass into one block.

    Size lines: 1 to 16 hex digits, optional whitespace and extensions (ignored), then LF with an
    optional CR; chunk data must be followed by CRLF (or LF); trailers are bounded and validated
    as header lines. Anything else is `MalformedResponse`.
    """

    __slots__ = ("_buf", "_remaining", "_state", "_trailers", "done", "leftover")

    def __init__(self) -> None:
        self.done = False
        self.leftover = b""
        self._buf = b""
        self._state = _SIZE
        self._remaining = 0
        self._trailers = 0

    def eof(self) -> None:
        if not self.done:
            raise IncompleteBody(
                "peer closed connection without sending complete message body (incomplete chunked read)"
            )

    # A state machine over the read: its per-chunk states (size line, data, CRLF) stay in this one
    # function, as splitting them costs a call per chunk on the hot path (vLLM sends one chunk per
    # token); the trailers, read once per body, are a method of their own.
    def feed(self, data: bytes) -> bytes:
        if self.done:
            self.leftover += data
            return b""
        if self._state == _SIZE and not self._buf:
            # the common read, exactly one whole chunk (`SIZE CRLF data CRLF`): what the loop gives
            nl = data.find(b"\r\n", 0, 18)
            if nl > 0:
                line = data[:nl]
                if not line.translate(None, _HEX):
                    size = int(line, 16)
                    if size and len(data) == nl + size + 4 and data.endswith(b"\r\n"):
                        return data[nl + 2 : -2]
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        pos, n = 0, len(buf)
        state, remaining = self._state, self._remaining
        while pos < n:
            if state == _DATA:
                take = remaining if remaining < n - pos else n - pos
                out.append(buf[pos : pos + take])
                pos += take
                remaining -= take
                if remaining:
                    break
                state = _CRLF
            elif state == _SIZE:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if n - pos > MAX_CHUNK_LINE:
                        raise MalformedResponse("a chunk-size line longer than 4 KiB")
                    break
                line = buf[pos : nl - 1] if nl > pos and buf[nl - 1] == 13 else buf[pos:nl]
                if 0 < len(line) <= 16 and not line.translate(None, _HEX):
                    remaining = int(line, 16)
                else:
                    remaining = _chunk_size(line)
                pos = nl + 1
                end = pos + remaining
                if remaining and end + 1 < n and buf[end] == 13 and buf[end + 1] == 10:
                    out.append(buf[pos:end])  # the whole chunk and its CRLF are here: one step
                    pos = end + 2
                    continue
                state = _DATA if remaining else _TRAILER
            elif state == _CRLF:
                if buf[pos] == 10:
                    pos += 1
                elif buf[pos] == 13 and pos + 1 < n and buf[pos + 1] == 10:
                    pos += 2
                elif buf[pos] == 13 and pos + 1 == n:
                    break  # the LF is in the next read
                else:
                    raise MalformedResponse(f"chunk data not followed by CRLF: {bytes(buf[pos : pos + 8])!r}")
                state = _SIZE
            else:
                after = self._trailer_line(buf, pos)
                if after == pos:
                    break  # the line's end is in the next read
                pos = after
        self._buf = buf[pos:] if pos < n else b""
        self._state, self._remaining = state, remaining
        if not out:
            return b""
        return out[0] if len(out) == 1 else b"".join(out)

    def _trailer_line(self, buf: bytes, pos: int) -> int:
        """One trailer line at `pos` (the empty one ends the body): the position after it, or `pos`
        when its end is not in this read yet."""
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if self._trailers + len(buf) - pos > MAX_TRAILERS:
                raise MalformedResponse(f"chunk trailers exceed {MAX_TRAILERS // 1024} KiB")
            return pos
        line = buf[pos : nl - 1] if nl > pos and buf[nl - 1] == 13 else buf[pos:nl]
        self._trailers += nl + 1 - pos
        if not line:
            self.done, self.leftover = True, buf[nl + 1 :]
            return len(buf)
        if self._trailers > MAX_TRAILERS:
            raise MalformedResponse(f"chunk trailers exceed {MAX_TRAILERS // 1024} KiB")
        if not _HEADER_LINE.fullmatch(line):
            raise MalformedResponse(f"malformed chunk trailer {bytes(line[:80])!r}")
        return nl + 1


def _chunk_size(line: bytes) -> int:
    match = _CHUNK_SIZE_LINE.fullmatch(line)
    if match is None:
        raise MalformedResponse(f"malformed chunk size {bytes(line[:20])!r}")
    return int(match.group(1), 16)


def body_decoder(head: Head) -> BodyDecoder:
    """The framing decoder the head asks for."""
    if head.framing == "chunked":
        return ChunkedDecoder()
    if head.framing == "length":
        return LengthDecoder(head.length)
    return CloseDecoder()
