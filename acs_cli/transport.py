"""A lean HTTP/1.1 transport for httpx, built for long event streams, with a keep-alive pool.

Why: httpx's default stack (httpcore + h11) turns every HTTP chunk into several Python-level
events, about 6 µs per chunk; with vLLM sending one chunk per token that caps a client near
46k frames/s here, and it costs ~0.1 s of imports at start-up. This transport feeds each socket
read to acs_cli.http1's decoders, which hand over all the chunks of one read as one block, so the
cost is per read, not per token. Everything else stays httpx's: the Client, URLs, redirects (and
dropping Authorization across origins), timeout configuration and the exception types, which this
transport raises as httpx's would. A malformed response raises `MalformedResponseError`, an
httpx.RemoteProtocolError that callers can tell apart from a dropped connection.

Connections are kept per origin and reused for the next request when a body was read to its
framed end and the server did not say `Connection: close`; a pooled connection that turns out
closed before any byte of the answer is replaced once by a fresh one.
"""

from __future__ import annotations

import functools
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import httpx

from acs_cli import codings, http1, netrules

RECV_SIZE = 256 * 1024
MAX_IDLE_PER_ORIGIN = 4
SEND_SLICE = 64 * 1024  # a larger request body is sent in slices, watching for an early answer

Origin = tuple[str, str, int]


class MalformedResponseError(httpx.RemoteProtocolError):
    """The server's bytes break HTTP/1.1 (a bad head, framing or encoding): a protocol error."""


class _Stale(Exception):
    """A pooled connection failed before any byte of the answer: the request may go again."""

    def __init__(self, error: httpx.TransportError) -> None:
        super().__init__(str(error))
        self.error = error


class FastTransport(httpx.BaseTransport):
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._idle: dict[Origin, list[socket.socket]] = {}
        self._lock = threading.Lock()
        self.connections_opened = 0  # for tests and the curious: how many TCP connections so far

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        https = url.scheme == "https"
        origin = (url.scheme, url.host, url.port or (443 if https else 80))
        try:
            payload = http1.encode_request(request.method, url.raw_path, request.headers.raw, request.read())
        except http1.InvalidRequestHeader as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from None
        sock = self._checkout(origin)
        if sock is not None:
            try:
                return self._exchange(sock, origin, request, payload, reused=True)
            except _Stale:
                pass  # the server had closed the idle connection: once more on a fresh one
        sock = self._connect(request, origin, timeouts.get("connect"))
        try:
            return self._exchange(sock, origin, request, payload, reused=False)
        except _Stale as stale:
            raise stale.error from None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for socks in idle.values():
            for sock in socks:
                _close(sock)

    # ------------------------------------------------------------------ connections

    def _checkout(self, origin: Origin) -> socket.socket | None:
        while True:
            with self._lock:
                socks = self._idle.get(origin)
                if not socks:
                    return None
                sock = socks.pop()
            if _usable(sock):
                return sock
            _close(sock)

    def _checkin(self, origin: Origin, sock: socket.socket) -> None:
        with self._lock:
            socks = self._idle.setdefault(origin, [])
            if len(socks) < MAX_IDLE_PER_ORIGIN:
                socks.append(sock)
                return
        _close(sock)

    def _connect(self, request: httpx.Request, origin: Origin, timeout: float | None) -> socket.socket:
        scheme, host, port = origin
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "timed out", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        self.connections_opened += 1
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme != "https":
            return sock
        try:
            context = self._ssl_context or netrules.ssl_context()  # netrules builds one per CA setting
            return context.wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            sock.close()
            raise httpx.ConnectTimeout(str(exc) or "TLS handshake timed out", request=request) from None
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise httpx.ConnectError(str(exc), request=request) from None

    # ------------------------------------------------------------------ one exchange

    def _exchange(self, sock: socket.socket, origin: Origin, request: httpx.Request, payload: bytes, reused: bool) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        try:
            complete = _send(sock, request, payload, timeouts.get("write"))
            send_error = None
        except httpx.WriteError as exc:
            # the server may have answered (401, 413) before it stopped reading: look for it
            complete, send_error = False, exc
        except BaseException:
            sock.close()
            raise
        try:
            head, rest = _read_head(sock, request, timeouts.get("read"), send_error, reused)
        except BaseException:
            sock.close()
            raise
        reusable = complete and head.keep_alive and "close" not in request.headers.get("connection", "").lower()
        release = functools.partial(self._checkin, origin) if reusable else None
        body = Body(sock, request, head, rest, timeouts.get("read"), release)
        return httpx.Response(
            head.status,
            headers=head.headers,
            stream=body,
            extensions={"http_version": head.version, "reason_phrase": head.reason, "acs.body": body},
        )


def _usable(sock: socket.socket) -> bool:
    """An idle connection is usable when nothing is waiting on it: a readable idle socket has
    been closed by the server (EOF) or holds bytes nobody asked for."""
    try:
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _send(sock: socket.socket, request: httpx.Request, payload: bytes, timeout: float | None) -> bool:
    """Send the request; False when the server answered before all of it was sent (the answer
    is then read, and the connection not reused)."""
    sock.settimeout(timeout)
    try:
        if len(payload) <= SEND_SLICE:
            sock.sendall(payload)
            return True
        view = memoryview(payload)
        sent = 0
        while sent < len(view):
            readable, writable, _ = select.select([sock], [sock], [], timeout)
            if readable:
                return False
            if not writable:
                raise TimeoutError("timed out")
            sent += sock.send(view[sent : sent + SEND_SLICE])
        return True
    except TimeoutError as exc:
        raise httpx.WriteTimeout(str(exc) or "timed out", request=request) from None
    except OSError as exc:
        raise httpx.WriteError(str(exc), request=request) from None


def _read_head(
    sock: socket.socket, request: httpx.Request, timeout: float | None, send_error: httpx.WriteError | None, reused: bool
) -> tuple[http1.Head, bytes]:
    """The final head and the bytes after it. The whole wait is bounded by the read timeout, not
    each read: a head trickled byte by byte or endless 100 Continue answers cannot stretch it."""
    parser = http1.HeadParser(request.method)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise httpx.ReadTimeout("timed out waiting for the response head", request=request)
            sock.settimeout(left)
        try:
            data = sock.recv(RECV_SIZE)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from None
        except OSError as exc:
            error: httpx.TransportError = send_error or httpx.ReadError(str(exc), request=request)
            if reused and not parser.received:
                raise _Stale(error) from None
            raise error from None
        if not data:
            if reused and not parser.received:
                raise _Stale(send_error or httpx.RemoteProtocolError("idle connection closed", request=request))
            if send_error is not None and not parser.received:
                raise send_error
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        try:
            head = parser.feed(data)
        except http1.MalformedResponse as exc:
            raise MalformedResponseError(str(exc), request=request) from None
        if head is not None:
            return head, parser.rest


class Body(httpx.SyncByteStream):
    """The response body: de-framed, and content-decoded unless `decode` was turned off (the wire
    bytes, for --raw). Each socket read yields at most one block."""

    def __init__(
        self, sock: socket.socket, request: httpx.Request, head: http1.Head, rest: bytes, timeout: float | None, release: Callable[[socket.socket], None] | None
    ) -> None:
        self._sock: socket.socket | None = sock
        self._request = request
        self._head = head
        self._rest = rest
        self._timeout = timeout
        self._release = release
        self.decode = True
        self.codings = head.content_codings

    def __iter__(self) -> Iterator[bytes]:
        if self._sock is None:
            return
        try:
            decoder = codings.content_decoder(self._head) if self.decode else None
            yield from self._payload() if decoder is None else decoder.decoded(self._payload())
        except http1.MalformedResponse as exc:
            raise MalformedResponseError(str(exc), request=self._request) from None
        except http1.IncompleteBody as exc:
            raise httpx.RemoteProtocolError(str(exc), request=self._request) from None

    def _payload(self) -> Iterator[bytes]:
        """The de-framed payload, one block per read. The read timeout bounds the gap between two
        reads that carry payload: reads of framing alone (a trickled chunk-size line) do not
        restart it."""
        framing = http1.body_decoder(self._head)
        sock = self._sock
        assert sock is not None
        sock.settimeout(self._timeout)
        short = False
        mark = time.monotonic()
        data = self._rest
        self._rest = b""
        while not framing.done:
            if data:
                payload = framing.feed(data)
                if payload:
                    yield payload
                    if short:
                        sock.settimeout(self._timeout)
                        short = False
                    mark = time.monotonic() if self._timeout is not None else 0.0
                elif self._timeout is not None and not framing.done:
                    left = mark + self._timeout - time.monotonic()
                    if left <= 0:
                        raise httpx.ReadTimeout("timed out", request=self._request)
                    sock.settimeout(left)
                    short = True
                if framing.done:
                    break
            try:
                data = sock.recv(RECV_SIZE)
            except TimeoutError as exc:
                raise httpx.ReadTimeout(str(exc) or "timed out", request=self._request) from None
            except OSError as exc:
                raise httpx.ReadError(str(exc), request=self._request) from None
            if not data:
                framing.eof()
                break
        self._finish(framing)

    def _finish(self, framing: http1.BodyDecoder) -> None:
        """The body reached its framed end: the connection goes back to the pool when it can."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._release is not None and framing.done and not framing.leftover and not isinstance(framing, http1.CloseDecoder):
            self._release(sock)
        else:
            _close(sock)

    def close(self) -> None:
        if self._sock is not None:  # closed before its end: the server stops generating
            sock, self._sock = self._sock, None
            _close(sock)


class DecodingTransport(httpx.BaseTransport):
    """Another httpx transport (the proxy path) with the same content decoding as FastTransport:
    a compressed body is decoded for the parser; `wire_bytes` still gets the bytes as received."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        names = [c for v in response.headers.get_list("content-encoding") for c in http1.content_codings(v.encode("latin-1"))]
        if names:
            head = http1.Head(response.status_code, b"", b"HTTP/1.1", [], content_codings=names)
            stream = _DecodedStream(response.stream, head, request)  # type: ignore[arg-type]
            response.stream = stream
            response.extensions = {**response.extensions, "acs.body": stream}
        return response

    def close(self) -> None:
        self._inner.close()


class _DecodedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, head: http1.Head, request: httpx.Request) -> None:
        self._inner = inner
        self._head = head
        self._request = request
        self.decode = True
        self.codings = head.content_codings

    def __iter__(self) -> Iterator[bytes]:
        if not self.decode:
            yield from self._inner
            return
        try:
            yield from codings.ContentDecoder(self._head.content_codings).decoded(self._inner)
        except http1.MalformedResponse as exc:
            raise MalformedResponseError(str(exc), request=self._request) from None

    def close(self) -> None:
        self._inner.close()


def wire_bytes(response: httpx.Response) -> Iterator[bytes]:
    """The body as the server framed it, before any content decoding (what `curl -N` prints)."""
    body = response.extensions.get("acs.body")
    if body is not None:
        body.decode = False
    return response.iter_raw()


def content_encoded(response: httpx.Response) -> bool:
    """Whether the server compressed the body (so --raw can say that it shows it compressed)."""
    return bool(getattr(response.extensions.get("acs.body"), "codings", None))
