"""A response body to records: what a 200 body holds (sniffing), pumping its reads through the
parser into a sink, and the one mapping of httpx's failures to acs's errors.

Used by `acs complete` (text, JSON and --raw) and `acs doctor`; `acs replay` pumps a file.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from acs_cli.completion_state import CompletionState
from acs_cli.errors import AcsError, ConnectError, IncompleteStream, ProtocolError, TimedOut
from acs_cli.records import Delta, Reasoning, Record, ToolCallDelta
from acs_cli.sse import SSEParser
from acs_cli.text import shorten

if TYPE_CHECKING:
    from acs_cli.outcome import Timeline
    from acs_cli.sinks import Sink

ERROR_BODY_LIMIT = 64 * 1024  # an error page is read this far and no further
DOCUMENT_LIMIT = 32 * 1024 * 1024  # a whole JSON answer (a completion, a model list)


def sniff_body(media: str, first: bytes) -> str:
    """What a 200 body holds, from its media type and first bytes: json, sse or other."""
    if media == "application/json" or media.endswith("+json"):
        return "json"
    head = first.lstrip(b"\xef\xbb\xbf \t\r\n")[:6]
    if head.startswith(b"{"):
        return "json"
    if not head or head.startswith((b"data", b":", b"event", b"id", b"retry")):
        return "sse"
    return "other"


def media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    """The first read put back in front of the rest."""
    if first:
        yield first
    yield from rest


def read_bounded(chunks: Iterable[bytes], limit: int, timeout: float | None = None) -> tuple[bytes, bool]:
    """The body up to `limit` bytes, and whether there was more (the rest is not read). With a
    `timeout`, the whole body must arrive within it (a body trickled byte by byte cannot hold acs)."""
    parts: list[bytes] = []
    size = 0
    deadline = time.perf_counter() + timeout if timeout else None
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(parts)[:limit], True
        if deadline is not None and time.perf_counter() > deadline:
            raise TimedOut(
                f"the server's JSON answer did not arrive whole within {timeout:g} s", "raise --timeout or ACS_TIMEOUT if the server is just slow"
            )
    return b"".join(parts), False


def parse_document(body: bytes, state: CompletionState) -> list[Record]:
    """A whole JSON body (a 200 answer that is not a stream) into records."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        what = "neither an event stream nor JSON"
        if isinstance(exc, RecursionError) or "digits" in str(exc):
            what = "JSON acs cannot read (nested too deeply, or a number too long)"
        state.failure = ProtocolError(
            f"the server answered 200 with a body that is {what}: {shorten(body[:200].decode('utf-8', 'replace'))}",
            "check that the base URL points at an OpenAI-compatible server",
        )
        return []
    return state.feed_document(payload)


def pump(chunks: Iterable[bytes], state: CompletionState, sink: Sink, timeline: Timeline, timeout: float | None = None) -> None:
    """Bytes to events to records to the sink, one network read (or capture frame) at a time:
    one parse, one write, at most one clock read per read, never per token.

    With a `timeout`, reads that bring nothing for the completion (keep-alive comments, pings,
    a frame trickling in byte by byte) do not hold acs past it: the socket's own timeout starts
    again with every read, so the data deadline is kept here.
    """
    parser = SSEParser()
    clock = time.perf_counter
    span = timeout or 0.0
    deadline = clock() + span if span else None
    try:
        for chunk in chunks:
            events = parser.feed(chunk)
            records = state.feed(events) if events else None
            if not records:
                if deadline is not None and clock() > deadline:
                    if state.verdict(cut=True) is None:
                        break  # every choice finished: the completion is whole, [DONE] or not
                    raise silence(state, span, "the text so far is kept", stalled=True)
                if state.stopped:
                    break
                continue
            if deadline is not None:
                deadline = clock() + span
            note_output(records, timeline, clock)
            sink.write(records)
            if state.stopped:
                break
    finally:
        parser.close()
        timeline.last_byte = clock()


def note_output(records: list[Record], timeline: Timeline, clock: Callable[[], float]) -> None:
    """Count the (frame, choice) pieces of one read that carried generated output (the token
    estimate without usage) and note when the first came: text, and for chat reasoning and tool
    calls too (`first_text`), with the first reasoning and the first answer text apart."""
    texts = others = 0
    for r in records:
        kind = type(r)
        if kind is Delta:
            if r.text:  # type: ignore[union-attr]
                texts += 1
        elif kind is Reasoning:
            others += 1
            if timeline.first_reasoning is None:
                timeline.first_reasoning = clock()
        elif kind is ToolCallDelta:
            others += 1
    if texts or others:
        timeline.text_frames += texts + others
        if timeline.first_text is None or (texts and timeline.first_answer is None):
            now = clock()
            if timeline.first_text is None:
                timeline.first_text = now
            if texts and timeline.first_answer is None:
                timeline.first_answer = now


def silence(state: CompletionState | None, timeout: float, kept: str, stalled: bool = False) -> TimedOut:
    """--timeout passed without data: nothing at all arrived (the socket timed out), or only
    keep-alive comments, pings and unfinished frames did (`stalled`)."""
    phase = ""
    if state is not None:
        phase = " (between two frames)" if state.choices else " (waiting for the first token)"
    if not stalled:
        return TimedOut(f"no data from the server for {timeout:g} s{phase}", f"{kept}; raise --timeout or ACS_TIMEOUT if the server is just slow")
    return TimedOut(
        f"no completion data from the server for {timeout:g} s{phase}, only keep-alive pings or a frame that never ended",
        f"{kept}; a server that only pings is treated as stuck: raise --timeout or ACS_TIMEOUT if it is just slow",
    )


def feed_document(body: bytes, state: CompletionState, sink: Sink, timeline: Timeline) -> None:
    records = parse_document(body, state)
    timeline.last_byte = time.perf_counter()
    note_output(records, timeline, lambda: timeline.last_byte or 0.0)
    if state.failure is None:
        sink.write(records)


def read_completion(response: object, state: CompletionState, sink: Sink, timeline: Timeline, timeout: float) -> AcsError | None:
    """Feed a 200 response's body through the parser into the sink; the verdict (None: whole)."""
    import httpx

    assert isinstance(response, httpx.Response)
    media = media_type(response.headers.get("content-type", ""))
    chunks = response.iter_raw()
    try:
        if media != "text/event-stream":
            first = next(chunks, b"")
            kind = sniff_body(media, first)
            if kind == "json":
                body, more = read_bounded(prepend(first, chunks), DOCUMENT_LIMIT, timeout)
                if more:
                    return ProtocolError(
                        f"the server answered 200 with a JSON body over {DOCUMENT_LIMIT // (1024 * 1024)} MiB", "check the server; acs reads a whole JSON answer up to that size"
                    )
                feed_document(body, state, sink, timeline)
                return state.verdict()
            if kind == "other":
                return ProtocolError(
                    f"the server answered 200 with {media or 'no content type'}, not an event stream: {shorten(first[:200].decode('utf-8', 'replace'))}",
                    "check that the base URL points at an OpenAI-compatible server, not a web page or a proxy login",
                )
            chunks = prepend(first, chunks)
        pump(chunks, state, sink, timeline, timeout)
    except AcsError as exc:  # an event too large for the parser
        return exc
    except httpx.HTTPError as exc:
        return body_error(exc, state, timeout)
    return state.verdict()


# --------------------------------------------------------------------------- httpx to acs
# The one mapping of httpx's failures to acs's errors, for the API client (before the head),
# the body readers (complete, --raw, doctor's probe) and the retry decision. A failure is read
# in one of two phases: before the response head (connecting, TLS, sending, waiting: a retry
# repeats nothing) or while reading a body (never retried: output may have been shown).

HEAD = "head"
BODY = "body"


class Failure(NamedTuple):
    """What one httpx failure means: acs's error (None: the completion was whole anyway),
    whether trying again could help, and the reason in a few words (for a retry notice)."""

    error: AcsError | None
    retry: bool
    reason: str


@dataclass(frozen=True)
class Where:
    """What a message about a failure names: the request's URL, --timeout, the attempts made,
    the proxy from the environment the request went through, and, reading a body, the state
    it fed (None with --raw: the bytes received are what is kept)."""

    url: str = ""
    timeout: float = 0.0
    attempt: int = 1
    proxy: str | None = None  # as shown: scheme, host and port (netrules.shown_proxy)
    state: CompletionState | None = None
    kept: str = ""  # what the hint says is kept; "" for the default (see `kept_text`)

    @property
    def origin(self) -> str:
        """scheme://host:port, never a user:password@ part."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def tries(self) -> str:
        return f" after {self.attempt} attempts" if self.attempt > 1 else ""

    @property
    def kept_text(self) -> str:
        """The text so far (a stream), or the bytes on stdout (--raw), unless `kept` says otherwise
        (a whole JSON document, of which nothing is shown until it is read)."""
        if self.kept:
            return self.kept
        return "the text so far is kept" if self.state is not None else "the bytes received are on stdout"

    def bypass(self) -> str:
        """The hint's way around a proxy that failed."""
        return f"check the proxy in HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, or bypass it for this host with NO_PROXY={self.host}"


def http_failure(exc: Exception, phase: str, where: Where) -> Failure:
    """The meaning of an httpx failure in `phase` (HEAD or BODY): the first row of the table
    whose phase and exception type match. Reading a body, a failure after every choice finished
    leaves the completion whole (no error)."""
    from acs_cli import netrules

    said = netrules.reason(exc)
    if phase == BODY and where.state is not None and where.state.verdict(cut=True) is None:
        return Failure(None, False, said)
    for row_phase, kinds, meaning, retry in _table():
        if row_phase == phase and isinstance(exc, kinds):
            # a name that does not resolve, or TLS, is not mended by trying again
            final = netrules.dns_failure(exc) or netrules.tls_problem(exc) is not None
            return Failure(meaning(exc, said, where), retry and not final, said)
    return Failure(_other(exc, said, where), False, said)  # not an httpx failure: a bug's cousin


def body_error(exc: Exception, state: CompletionState | None, timeout: float) -> AcsError | None:
    """An httpx failure while reading a body; None when the completion was whole anyway."""
    return http_failure(exc, BODY, Where(timeout=timeout, state=state)).error


Meaning = Callable[[Exception, str, Where], AcsError]


@functools.cache
def _table() -> tuple[tuple[str, Any, Meaning, bool], ...]:
    """(phase, exception types, meaning, retried): subclasses before their bases. httpx is
    imported here, on the first failure, not when acs starts."""
    import httpx

    from acs_cli.transport import MalformedResponseError

    dropped = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
    return (
        (HEAD, MalformedResponseError, _malformed_head, False),  # the server answered, wrongly
        (HEAD, httpx.ConnectTimeout, _connect_timeout, False),
        (HEAD, httpx.TimeoutException, _no_head, False),
        (HEAD, httpx.ProxyError, _proxy_refused, False),
        (HEAD, httpx.ConnectError, _cannot_connect, True),  # refused (a DNS or TLS failure is not retried)
        (HEAD, dropped, _dropped, True),  # reset, or closed before the head
        (HEAD, httpx.TooManyRedirects, _redirect_loop, False),
        (HEAD, httpx.HTTPError, _other, False),
        (BODY, MalformedResponseError, _malformed_body, False),  # bad chunk framing or coding
        (BODY, httpx.TimeoutException, _silent, False),
        (BODY, (httpx.RemoteProtocolError, httpx.ReadError), _cut, False),
        (BODY, httpx.HTTPError, _other, False),
    )


def _malformed_head(exc: Exception, said: str, where: Where) -> AcsError:
    return ProtocolError(
        f"malformed HTTP response from {where.origin}: {said}",
        "the server (or a proxy in front of it) does not speak HTTP/1.1 correctly; check the port in ACS_BASE_URL",
    )


def _malformed_body(exc: Exception, said: str, where: Where) -> AcsError:
    what = "stream" if where.state is not None else "body"
    return ProtocolError(
        f"malformed HTTP framing mid-{what}: {shorten(said, 160)}",
        f"{where.kept_text}; the server (or a proxy in front of it) broke HTTP/1.1 framing: check the server's log",
    )


def _connect_timeout(exc: Exception, said: str, where: Where) -> AcsError:
    from acs_cli.netrules import CONNECT_TIMEOUT

    through = f" (through the proxy {where.proxy})" if where.proxy else ""
    return TimedOut(
        f"connecting to {where.origin}{through} timed out after {CONNECT_TIMEOUT:g} s",
        where.bypass() if where.proxy else "check that the server is up and reachable from here (firewall, VPN, the port in ACS_BASE_URL)",
    )


def _no_head(exc: Exception, said: str, where: Where) -> AcsError:
    return TimedOut(
        f"no response from {where.origin} within {where.timeout:g} s (waiting for the first byte)",
        "the server may be busy or queueing; raise --timeout or ACS_TIMEOUT",
    )


def _proxy_refused(exc: Exception, said: str, where: Where) -> AcsError:
    """The proxy answered the tunnel request (CONNECT) with an error status."""
    if said.startswith("407"):
        hint = f"the proxy wants credentials: put them in its URL (http://user:password@host:port), or bypass it with NO_PROXY={where.host}"
    else:
        hint = f"the proxy could not reach the server: check the server is up, or bypass the proxy with NO_PROXY={where.host}"
    return ConnectError(f"the proxy {where.proxy} refused the connection to {where.origin}: {said}", hint)


def _cannot_connect(exc: Exception, said: str, where: Where) -> AcsError:
    from acs_cli.netrules import dns_failure, tls_problem

    tls = tls_problem(exc)
    if tls is not None:
        return _tls_failed(tls, said, where)
    if where.proxy:  # acs connects to the proxy only: what failed is the proxy
        what = "resolve" if dns_failure(exc) else "connect to"
        return ConnectError(f"cannot {what} the proxy {where.proxy} (from the environment) for {where.url}{where.tries}: {said}", where.bypass())
    if dns_failure(exc):
        return ConnectError(f"cannot resolve the host {where.host} of {where.url}: {said}", "check the host name in ACS_BASE_URL (or --base-url)")
    return ConnectError(f"cannot connect to {where.url}{where.tries}: {said}", "start the server, or point ACS_BASE_URL (or --base-url) at one")


def _tls_failed(problem: str, said: str, where: Where) -> AcsError:
    from acs_cli.netrules import CERTIFICATE, PLAIN_HTTP

    if problem == PLAIN_HTTP:
        return ConnectError(
            f"TLS failed with {where.origin}: the port does not speak TLS ({said})",
            "the server speaks plain http there: use http:// in ACS_BASE_URL (or --base-url)",
        )
    if problem == CERTIFICATE:
        return ConnectError(
            f"TLS failed with {where.origin}: its certificate is not trusted ({said})",
            "check the server's certificate (name, expiry, chain); SSL_CERT_FILE can point at the CA bundle that signed it",
        )
    return ConnectError(
        f"the TLS handshake with {where.origin} failed: {said}",
        "check that the port speaks TLS (a plain-http server wants http:// in ACS_BASE_URL) and the server's TLS settings",
    )


def _dropped(exc: Exception, said: str, where: Where) -> AcsError:
    who = f"the server or the proxy {where.proxy}" if where.proxy else "the server or a proxy"
    return ConnectError(
        f"the connection to {where.origin} failed before a response{where.tries}: {said}",
        f"{who} closed the connection; check the server's log and retry",
    )


def _redirect_loop(exc: Exception, said: str, where: Where) -> AcsError:
    return ConnectError(f"too many redirects from {where.url}", "check ACS_BASE_URL; the server redirects in a loop")


def _silent(exc: Exception, said: str, where: Where) -> AcsError:
    return silence(where.state, where.timeout, where.kept_text)


def _cut(exc: Exception, said: str, where: Where) -> AcsError:
    return IncompleteStream(
        f"incomplete stream: the connection closed mid-{'stream' if where.state is not None else 'body'} ({shorten(str(exc), 120)})",
        f"{where.kept_text}; retry, and check for a proxy or server that cuts long responses",
    )


def _other(exc: Exception, said: str, where: Where) -> AcsError:
    what = "reading the response" if where.state is not None or not where.url else f"the request to {where.origin}"
    return ConnectError(f"{what} failed: {shorten(said, 160)}", "retry; check the server's log")
