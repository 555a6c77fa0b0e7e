"""A lean HTTP/1.1 transport for httpx, built for long event streams.

httpx's default stack (httpcore + h11) turns every HTTP chunk into several Python-level events;
with vLLM sending one chunk per token that caps a client near 46k frames/s here. This transport
decodes all the chunks that one socket read holds in one pass and hands them over as one block,
so the cost is per read, not per token. Everything else stays httpx's: the Client, URLs,
redirects (and dropping Authorization across origins), timeouts configuration, proxies from the
environment (those go through httpx's own transport), and the exception types, which this
transport raises exactly as httpx's would.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator

import httpx

RECV_SIZE = 256 * 1024
MAX_HEAD = 64 * 1024  # status line and headers; a larger head is refused, never buffered without bound
MAX_CHUNK_LINE = 4096


class FastTransport(httpx.BaseTransport):
    def __init__(self) -> None:
        self._ssl_context: ssl.SSLContext | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        https = url.scheme == "https"
        host = url.host
        port = url.port or (443 if https else 80)
        sock = self._connect(request, host, port, https, timeouts.get("connect"))
        try:
            self._send_request(sock, request, timeouts.get("write"))
            sock.settimeout(timeouts.get("read"))
            status, reason, version, headers, rest = _read_head(sock, request)
        except BaseException:
            sock.close()
            raise
        body = _Body(sock, request, rest, _framing(request.method, status, headers))
        return httpx.Response(
            status,
            headers=headers,
            stream=body,
            extensions={"http_version": version, "reason_phrase": reason},
        )

    def _connect(self, request: httpx.Request, host: str, port: int, https: bool, timeout: float | None) -> socket.socket:
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "timed out", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not https:
            return sock
        try:
            return self._context().wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            sock.close()
            raise httpx.ConnectTimeout(str(exc) or "TLS handshake timed out", request=request) from None
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise httpx.ConnectError(str(exc), request=request) from None

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            cafile = os.environ.get("SSL_CERT_FILE") or None
            capath = os.environ.get("SSL_CERT_DIR") or None
            if cafile is None and capath is None:
                try:
                    import certifi

                    cafile = certifi.where()
                except ImportError:
                    pass
            self._ssl_context = ssl.create_default_context(cafile=cafile, capath=capath)
        return self._ssl_context

    @staticmethod
    def _send_request(sock: socket.socket, request: httpx.Request, timeout: float | None) -> None:
        sock.settimeout(timeout)
        target = request.url.raw_path
        lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
        for name, value in request.headers.raw:
            if b"\r" in value or b"\n" in value or b"\0" in value:
                # a line break would smuggle another header in; the value itself is never shown
                raise httpx.LocalProtocolError(f"the {name.decode('latin-1')} header contains a line break", request=request)
            lines.append(name + b": " + value)
        payload = b"\r\n".join(lines) + b"\r\n\r\n" + request.read()
        try:
            sock.sendall(payload)
        except TimeoutError as exc:
            raise httpx.WriteTimeout(str(exc) or "timed out", request=request) from None
        except OSError as exc:
            raise httpx.WriteError(str(exc), request=request) from None


def _recv(sock: socket.socket, request: httpx.Request) -> bytes:
    try:
        return sock.recv(RECV_SIZE)
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from None
    except OSError as exc:
        raise httpx.ReadError(str(exc), request=request) from None


def _read_head(sock: socket.socket, request: httpx.Request) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]], bytes]:
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        sep = 4
        if end < 0:
            end = buf.find(b"\n\n")
            sep = 2
        if end >= 0:
            head, rest = buf[:end], buf[end + sep :]
            status, reason, version, headers = _parse_head(head, request)
            if 100 <= status < 200 and status != 101:
                buf = rest  # an interim answer (100 Continue): the real one follows
                continue
            return status, reason, version, headers, rest
        if len(buf) > MAX_HEAD:
            raise httpx.RemoteProtocolError("the response headers exceed 64 KiB", request=request)
        data = _recv(sock, request)
        if not data:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        buf += data


def _parse_head(head: bytes, request: httpx.Request) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"malformed status line {lines[0][:80]!r}", request=request)
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if colon and name and name == name.strip():
            headers.append((name, value.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else b"", parts[0], headers


def _framing(method: str, status: int, headers: list[tuple[bytes, bytes]]) -> str | int:
    if method == "HEAD" or status in (204, 304):
        return 0
    length = None
    for name, value in headers:
        lower = name.lower()
        if lower == b"transfer-encoding" and b"chunked" in value.lower():
            return "chunked"
        if lower == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
    return length if length is not None and length >= 0 else "close"


_SIZE, _DATA, _CRLF, _TRAILER = range(4)


def _chunk_size(line: bytes, request: httpx.Request) -> int:
    field = line.split(b";", 1)[0].strip()  # chunk extensions are allowed and ignored
    try:
        size = int(field, 16)
    except ValueError:
        size = -1
    if size < 0:
        raise httpx.RemoteProtocolError(f"malformed chunk size {field[:20]!r}", request=request)
    return size


class _Body(httpx.SyncByteStream):
    def __init__(self, sock: socket.socket, request: httpx.Request, rest: bytes, framing: str | int) -> None:
        self._sock: socket.socket | None = sock
        self._request = request
        self._rest = rest
        self._framing = framing

    def __iter__(self) -> Iterator[bytes]:
        if self._sock is None:
            return
        if self._framing == "chunked":
            yield from self._chunked()
        elif self._framing == "close":
            yield from self._until_close()
        else:
            yield from self._length(int(self._framing))
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            try:
                sock.close()
            except OSError:
                pass

    def _read(self) -> bytes:
        assert self._sock is not None
        return _recv(self._sock, self._request)

    def _until_close(self) -> Iterator[bytes]:
        if self._rest:
            yield self._rest
        while data := self._read():
            yield data

    def _length(self, length: int) -> Iterator[bytes]:
        data = self._rest[:length]
        while True:
            if data:
                yield data
                length -= len(data)
            if length <= 0:
                return
            data = self._read()
            if not data:
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body", request=self._request
                )
            data = data[:length]

    def _chunked(self) -> Iterator[bytes]:
        """Decode chunked framing; every socket read yields at most one block of payload."""
        buf = self._rest
        state = _SIZE
        remaining = 0
        while True:
            out: list[bytes] = []
            pos = 0
            n = len(buf)
            done = False
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
                            raise httpx.RemoteProtocolError("malformed chunk size line", request=self._request)
                        break
                    try:
                        remaining = int(buf[pos:nl], 16)  # int() ignores the CR and spaces
                    except ValueError:
                        remaining = _chunk_size(buf[pos:nl], self._request)
                    if remaining < 0:
                        remaining = _chunk_size(b"-", self._request)
                    pos = nl + 1
                    state = _DATA if remaining else _TRAILER
                elif state == _CRLF:
                    if buf[pos : pos + 2] == b"\r\n":
                        pos += 2
                    elif buf[pos : pos + 1] == b"\n":
                        pos += 1
                    elif n - pos < 2 and buf[pos : pos + 1] == b"\r":
                        break  # the LF is in the next read
                    else:
                        raise httpx.RemoteProtocolError("chunk data not followed by CRLF", request=self._request)
                    state = _SIZE
                else:  # trailer lines, then the blank line that ends the body
                    nl = buf.find(b"\n", pos)
                    if nl < 0:
                        break
                    line = buf[pos:nl]
                    pos = nl + 1
                    if line in (b"", b"\r"):
                        done = True
                        break
            if out:
                yield out[0] if len(out) == 1 else b"".join(out)
            if done:
                return
            buf = buf[pos:]
            data = self._read()
            if not data:
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body (incomplete chunked read)",
                    request=self._request,
                )
            buf = buf + data if buf else data
