"""HTTP with httpx: timeouts, retries before the first byte, status checks, error bodies to typed errors."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from acs_cli import __version__, netrules
from acs_cli.errors import ConfigError, ConnectError, HTTPStatusError, ProtocolError, TimedOut
from acs_cli.netrules import CONNECT_TIMEOUT
from acs_cli.settings import ResolvedSettings
from acs_cli.transport import DecodingTransport, FastTransport, MalformedResponseError

ERROR_BODY_LIMIT = 64 * 1024  # an error page is read this far and no further


class Api:
    """One configured client for one server; use as a context manager."""

    def __init__(
        self,
        settings: ResolvedSettings,
        *,
        retries: int = 2,
        warn: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = settings.api_base
        self.timeout = settings.timeout
        self.retries = max(0, retries)
        self.has_key = settings.api_key is not None
        self._sleep = sleep
        headers = {
            "User-Agent": f"acs/{__version__}",
            # like curl: no compression, so --raw shows the bytes the server framed
            "Accept-Encoding": "identity",
        }
        if settings.api_key is not None:
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
            host = urlsplit(self.base).hostname or ""
            if warn and self.base.startswith("http://") and not netrules.is_loopback(host):
                warn(f"warning: ACS_API_KEY is sent over plain http:// to {host}; anyone on the path can read it")
        # httpx drops the Authorization header on a redirect to another origin
        if transport is None:
            transport = _transport_for(self.base)
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=CONNECT_TIMEOUT),
            follow_redirects=True,
            transport=transport,
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def open_completion(self, body: dict[str, Any], *, accept_errors: bool = False, path: str = "completions") -> httpx.Response:
        """POST the request (to `path` under the base URL: `chat/completions` for chat) and
        return the streaming response once a 2xx status arrived.

        Connection failures and 429/502/503/504 are retried with backoff, honouring Retry-After,
        but only here, before any byte of the body was read: a retry later would repeat output.
        """
        try:
            content = json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:  # a lone surrogate (a model id a server sent as "\ud800"): \u escapes
            content = json.dumps(body).encode()
        request = self.client.build_request(
            "POST",
            self.url(path),
            content=content,
            headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
        )
        return self._send(request, model=body.get("model"), accept_errors=accept_errors)

    def get_json(self, path: str) -> Any:
        request = self.client.build_request("GET", self.url(path), headers={"Accept": "application/json"})
        response = self._send(request)
        try:
            raw = _read_bounded(response, 32 * 1024 * 1024)
        finally:
            response.close()
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            raise ProtocolError(
                f"GET {self.url(path)} did not answer JSON: {raw[:120].decode('utf-8', 'replace')!r}",
                "check that ACS_API_BASE points at an OpenAI-compatible server (it usually ends in /v1)",
            ) from None

    def list_models(self) -> list[dict[str, Any]]:
        payload = self.get_json("models")
        data = payload.get("data") if isinstance(payload, dict) else payload
        if not isinstance(data, list):
            raise ProtocolError(
                f"GET {self.url('models')} answered without a model list",
                "check that ACS_API_BASE points at an OpenAI-compatible server",
            )
        return [m for m in data if isinstance(m, dict)]

    def pick_model(self) -> str:
        """The model to use when none was given: the server's only one."""
        ids = [str(m.get("id")) for m in self.list_models() if m.get("id")]
        if len(ids) == 1:
            return ids[0]
        if not ids:
            raise ConfigError(
                f"no model given and the server at {self.base} lists none",
                "pass --model NAME or set ACS_MODEL",
            )
        shown = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
        raise ConfigError(
            f"no model given and the server serves {len(ids)}: {shown}",
            "pick one with --model NAME or ACS_MODEL",
        )

    def _send(self, request: httpx.Request, model: Any = None, accept_errors: bool = False) -> httpx.Response:
        """Send with retries; a non-2xx answer raises, or with accept_errors is returned unread."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise self._timeout(exc, request, attempt) from None
            except MalformedResponseError as exc:  # the server answered, wrongly: a retry would not help
                raise ProtocolError(
                    f"malformed HTTP response from {_origin(request.url)}: {exc}",
                    "the server (or a proxy in front of it) does not speak HTTP/1.1 correctly; check the port in ACS_API_BASE",
                ) from None
            except (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
                if attempt <= self.retries:
                    self._sleep(netrules.backoff(attempt))
                    continue
                raise self._connect_error(exc, request, attempt) from None
            except httpx.TooManyRedirects:
                raise ConnectError(
                    f"too many redirects from {request.url}", "check ACS_API_BASE; the server redirects in a loop"
                ) from None
            except httpx.TransportError as exc:
                raise self._connect_error(exc, request, attempt) from None
            if 200 <= response.status_code < 300:
                return response
            retry = netrules.retryable_status(response.status_code) and attempt <= self.retries
            if accept_errors and not retry:
                return response
            try:
                body = _read_bounded(response, ERROR_BODY_LIMIT)
            except httpx.HTTPError:
                body = b""
            finally:
                response.close()
            error = http_error(response, body, base=self.base, model=model, has_key=self.has_key)
            if retry:
                wait = netrules.retry_after(response.headers.get("retry-after"))
                self._sleep(netrules.backoff(attempt) if wait is None else wait)
                continue
            if attempt > 1:
                error.message += f" (after {attempt} attempts)"
            raise error

    def _timeout(self, exc: httpx.TimeoutException, request: httpx.Request, attempt: int) -> TimedOut:
        target = _origin(request.url)
        if isinstance(exc, httpx.ConnectTimeout):
            return TimedOut(
                f"connecting to {target} timed out after {CONNECT_TIMEOUT:g} s",
                "check that the server is up and reachable from here (firewall, VPN, the port in ACS_API_BASE)",
            )
        return TimedOut(
            f"no response from {target} within {self.timeout:g} s (waiting for the first byte)",
            "the server may be busy or queueing; raise --timeout or ACS_TIMEOUT",
        )

    def _connect_error(self, exc: Exception, request: httpx.Request, attempt: int) -> ConnectError:
        target = _origin(request.url)
        reason = _reason(exc)
        tries = f" after {attempt} attempts" if attempt > 1 else ""
        if "CERTIFICATE" in reason.upper() or "SSL" in reason.upper():
            return ConnectError(
                f"TLS failed with {target}{tries}: {reason}",
                "check the server's certificate; SSL_CERT_FILE can point at a custom CA bundle",
            )
        if isinstance(exc, httpx.ConnectError):
            hint = "start the server, or point ACS_API_BASE (or --base-url) at one"
            if "Name or service not known" in reason or "nodename nor servname" in reason or "resolution" in reason:
                hint = "check the host name in ACS_API_BASE"
            return ConnectError(f"cannot connect to {request.url}{tries}: {reason}", hint)
        return ConnectError(
            f"the connection to {target} failed before a response{tries}: {reason}",
            "the server or a proxy closed the connection; check the server's log and retry",
        )


def _transport_for(base: str) -> httpx.BaseTransport:
    """acs's own transport, or with a proxy from the environment (HTTP_PROXY, HTTPS_PROXY,
    ALL_PROXY, NO_PROXY) httpx's, with the same content decoding; an unusable proxy is a
    configuration error."""
    proxy = netrules.proxy_url(base)
    if proxy is None:
        return FastTransport()
    netrules.check_proxy(proxy)
    try:
        inner = httpx.HTTPTransport(proxy=proxy, verify=netrules.ssl_context())
    except (ImportError, ValueError) as exc:
        raise ConfigError(
            f"cannot use the proxy {netrules.shown_proxy(proxy)}: {exc}", "fix HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, or bypass it with NO_PROXY"
        ) from None
    return DecodingTransport(inner)


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    match = re.search(r"\[Errno -?\d+\] ([^\]'\"]+)", text)
    if match:
        return match.group(1).strip()
    return text.strip().rstrip(".")


def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_raw():
        parts.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(parts)[:limit]


def error_fields(body: bytes) -> tuple[str | None, dict[str, Any]]:
    """The message and fields of an error body in any shape servers send (WIRE.md §8.1)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        payload = None
    err: Any = payload
    if isinstance(payload, dict) and "error" in payload:
        err = payload["error"]
    if isinstance(err, dict):
        message = err.get("message") or err.get("detail")
        fields = {k: err.get(k) for k in ("type", "code", "param")}
        return (str(message) if message else None), fields
    if isinstance(err, str) and err:
        return err, {}
    text = body.decode("utf-8", "replace")
    if "<" in text and ">" in text:  # an HTML error page: its title or heading says enough
        match = re.search(r"<(?:title|h1)[^>]*>(.*?)</", text, re.IGNORECASE | re.DOTALL)
        text = match.group(1) if match else re.sub(r"<[^>]+>", " ", text)
    text = " ".join(text.split())
    return (text[:300] if text else None), {}


def http_error(
    response: httpx.Response, body: bytes, *, base: str, model: Any = None, has_key: bool = False
) -> HTTPStatusError:
    """`status_error` for an httpx response."""
    return status_error(
        response.status_code,
        response.reason_phrase or "",
        str(response.request.url),
        body,
        retry_after=response.headers.get("retry-after"),
        base=base,
        model=model,
        has_key=has_key,
    )


def status_error(
    status: int,
    phrase: str,
    url: str,
    body: bytes,
    *,
    retry_after: str | None = None,
    base: str,
    model: Any = None,
    has_key: bool = False,
) -> HTTPStatusError:
    """A non-2xx answer as acs's typed error: the server's message from its error body and a hint
    for the usual causes. Used by the sync client and the engine alike."""
    message, fields = error_fields(body)
    head = f"HTTP {status}{' ' + phrase if phrase else ''} from {url}"
    text = f"{head}: {message}" if message else head
    if status in (401, 403):
        hint = (
            "the server refused ACS_API_KEY: check it is the key this server expects"
            if has_key
            else "the server wants a key: set ACS_API_KEY"
        )
    elif status == 404:
        about_model = fields.get("param") == "model" or (message is not None and "model" in message.lower())
        if about_model:
            hint = f"the model {model!r} is not served there: `acs models` lists the models; pick one with --model"
        elif not base.rstrip("/").endswith("/v1"):
            hint = f"check ACS_API_BASE: OpenAI-compatible servers usually live under /v1 (try {base.rstrip('/')}/v1)"
        else:
            endpoint = "/chat/completions" if url.split("?")[0].endswith("/chat/completions") else "/completions"
            hint = f"check ACS_API_BASE: the server has no {endpoint} endpoint there"
    elif status == 429:
        hint = "the server is rate limiting: wait and retry, or raise --retries"
    elif 300 <= status < 400:
        hint = "the server redirects; point ACS_API_BASE at the URL it names"
    elif status >= 500:
        hint = "the server failed: check its log, and retry later"
    else:
        hint = "the server rejected the request: check the flags and --param values you passed"
    return HTTPStatusError(
        status,
        text,
        hint,
        error_type=fields.get("type") if isinstance(fields.get("type"), str) else None,
        code=fields.get("code"),
        retry_after=retry_after,
    )
