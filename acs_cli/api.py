"""HTTP with httpx: timeouts, retries before the first byte (said through `on_retry`), status
checks, error bodies to typed errors. What a transport failure means is acs_cli.body's mapping."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

from acs_cli import __version__, netrules
from acs_cli.body import BODY, DOCUMENT_LIMIT, ERROR_BODY_LIMIT, HEAD, Where, http_failure, read_bounded
from acs_cli.errors import ConfigError, HTTPStatusError, ProtocolError
from acs_cli.netrules import CONNECT_TIMEOUT
from acs_cli.request import encode_body
from acs_cli.settings import ResolvedSettings
from acs_cli.transport import DecodingTransport, FastTransport


class Retry(NamedTuple):
    """One retry about to happen, as the client tells its caller (the spinner says it)."""

    reason: str  # what failed: "connection refused", "HTTP 503 Service Unavailable"
    attempt: int  # the attempt about to be made: 2 for the first retry
    attempts: int  # all the attempts allowed: --retries + 1
    wait: float  # seconds before it

    def __str__(self) -> str:
        return f"{self.reason}, retrying ({self.attempt}/{self.attempts}) in {self.wait:.1f} s…"


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
        on_retry: Callable[[Retry], None] | None = None,
    ) -> None:
        self.base = settings.api_base
        self.timeout = settings.timeout
        self.retries = max(0, retries)
        self.has_key = settings.api_key is not None
        self.key_from = key_origin(settings.sources)
        self._sleep = sleep
        self._on_retry = on_retry
        headers = {
            "User-Agent": f"acs/{__version__}",
            # like curl: no compression, so --raw shows the bytes the server framed
            "Accept-Encoding": "identity",
        }
        if settings.api_key is not None:
            headers.update(key_header(settings))
            host = urlsplit(self.base).hostname or ""
            if warn and self.base.startswith("http://") and not netrules.is_loopback(host):
                warn(f"warning: the key from {self.key_from} is sent over plain http:// to {host}; anyone on the path can read it")
        proxy = netrules.proxy_url(self.base) if transport is None else None
        self.proxy = netrules.shown_proxy(proxy) if proxy else None  # named when it is what failed
        # httpx drops the Authorization header on a redirect to another origin
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=CONNECT_TIMEOUT),
            follow_redirects=True,
            transport=transport or _transport_for(proxy),
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
        request = self.client.build_request(
            "POST",
            self.url(path),
            content=encode_body(body),
            headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
        )
        return self._send(request, model=body.get("model"), accept_errors=accept_errors)

    def get_json(self, path: str) -> Any:
        request = self.client.build_request("GET", self.url(path), headers={"Accept": "application/json"})
        response = self._send(request)
        try:
            raw, more = read_bounded(response.iter_raw(), DOCUMENT_LIMIT, self.timeout)
        except httpx.HTTPError as exc:  # cut or stalled mid-body: an acs error, never a traceback
            error = http_failure(exc, BODY, Where(str(request.url), self.timeout, proxy=self.proxy, kept="nothing was shown")).error
            assert error is not None  # without a stream state no body is whole before its end
            raise error from None
        finally:
            response.close()
        if more:
            raise ProtocolError(
                f"GET {self.url(path)} answered with a JSON body over {DOCUMENT_LIMIT >> 20} MiB",
                "check that ACS_BASE_URL points at an OpenAI-compatible server (it usually ends in /v1)",
            )
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            raise ProtocolError(
                f"GET {self.url(path)} did not answer JSON: {raw[:120].decode('utf-8', 'replace')!r}",
                "check that ACS_BASE_URL points at an OpenAI-compatible server (it usually ends in /v1)",
            ) from None

    def list_models(self) -> list[dict[str, Any]]:
        payload = self.get_json("models")
        data = payload.get("data") if isinstance(payload, dict) else payload
        if not isinstance(data, list):
            raise ProtocolError(
                f"GET {self.url('models')} answered without a model list",
                "check that ACS_BASE_URL points at an OpenAI-compatible server",
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

    def status_error(self, response: httpx.Response, body: bytes, model: Any = None) -> HTTPStatusError:
        """A non-2xx answer to one of this client's requests as acs's error."""
        return http_error(response, body, base=self.base, model=model, has_key=self.has_key, key_from=self.key_from, proxy=self.proxy)

    def _send(self, request: httpx.Request, model: Any = None, accept_errors: bool = False) -> httpx.Response:
        """Send with retries; a non-2xx answer raises, or with accept_errors is returned unread."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.client.send(request, stream=True)
            except httpx.HTTPError as exc:
                failure = http_failure(exc, HEAD, Where(str(request.url), self.timeout, attempt, self.proxy))
                if failure.retry and attempt <= self.retries:
                    self._pause(attempt, failure.reason, None)
                    continue
                assert failure.error is not None  # before the head there is always one
                raise failure.error from None
            if 200 <= response.status_code < 300:
                return response
            retry = netrules.retryable_status(response.status_code) and attempt <= self.retries
            if accept_errors and not retry:
                return response
            try:
                body, _ = read_bounded(response.iter_raw(), ERROR_BODY_LIMIT)
            except httpx.HTTPError:
                body = b""
            finally:
                response.close()
            error = self.status_error(response, body, model)
            if retry:
                self._pause(attempt, f"HTTP {response.status_code} {response.reason_phrase}".rstrip(), response.headers.get("retry-after"))
                continue
            if attempt > 1:
                error.message += f" (after {attempt} attempts)"
            raise error

    def _pause(self, attempt: int, reason: str, retry_after: str | None) -> None:
        """Wait before the next attempt (Retry-After, else the backoff), having said so."""
        wait = netrules.retry_after(retry_after)
        if wait is None:
            wait = netrules.backoff(attempt)
        if self._on_retry is not None:
            said = reason[:1].lower() + reason[1:] if reason[1:2].islower() else reason  # "connection refused", "HTTP 503"
            self._on_retry(Retry(said, attempt + 1, self.retries + 1, wait))
        self._sleep(wait)


def key_header(settings: ResolvedSettings) -> dict[str, str]:
    """The header that carries the key, if there is one: every client (this one, and the engine's
    for acs bench and acs batch) sends it the same way."""
    key = settings.api_key
    return {} if key is None else {"Authorization": f"Bearer {key.get_secret_value()}"}


def key_origin(sources: Mapping[str, str]) -> str:
    """Where the key came from, for a message: `OPENAI_API_KEY`, `profile dev of the config
    file`, `api_key_command in the config file`."""
    label = sources.get("api_key") or "env ACS_API_KEY"
    label, _, via = label.partition(" (")  # "profile dev (api_key_command)": a file or a command
    if label.startswith("env "):
        return label[4:]
    where = "the config file" if label == "file defaults" else f"{label} of the config file" if label.startswith("profile ") else label
    return f"{via.rstrip(')')} in {where}" if via else where


def _transport_for(proxy: str | None) -> httpx.BaseTransport:
    """acs's own transport, or with a proxy from the environment (HTTP_PROXY, HTTPS_PROXY,
    ALL_PROXY, NO_PROXY) httpx's, with the same content decoding; an unusable proxy is a
    configuration error."""
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


def error_fields(body: bytes) -> tuple[str | None, dict[str, Any]]:
    """The message and fields of an error body in any shape servers send: `{"error": {...}}`
    (vLLM 0.10.1 and later, OpenAI), a flat `{"object": "error", "message": ...}` (older vLLM),
    `{"error": "Unauthorized"}` (vLLM's --api-key), or not JSON at all (an HTML page, text)."""
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
    response: httpx.Response,
    body: bytes,
    *,
    base: str,
    model: Any = None,
    has_key: bool = False,
    key_from: str = "ACS_API_KEY",
    proxy: str | None = None,
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
        key_from=key_from,
        proxy=proxy,
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
    key_from: str = "ACS_API_KEY",
    proxy: str | None = None,
) -> HTTPStatusError:
    """A non-2xx answer as acs's typed error: the server's message from its error body and a hint
    saying what the status means here. Used by the sync client and the engine alike. `key_from`
    says where the key came from, `proxy` (as shown) the proxy from the environment, if any."""
    message, fields = error_fields(body)
    head = f"HTTP {status}{' ' + phrase if phrase else ''} from {url}"
    text = f"{head}: {message}" if message else head
    about_model = fields.get("param") == "model" or (message is not None and "model" in message.lower())
    context = _Asked(base, _endpoint(url, base), model, about_model, key_from if has_key else None, proxy, urlsplit(url).hostname or "")
    return HTTPStatusError(
        status,
        text,
        _FIXED_HINTS.get(status) or _status_hint(status, context),
        error_type=fields.get("type") if isinstance(fields.get("type"), str) else None,
        code=fields.get("code"),
        retry_after=retry_after,
    )


REJECTED = "the server rejected the request: check the flags and --param values you passed"
# what a status means when it means the same whatever was asked; the others are _status_hint's
_FIXED_HINTS = {
    400: REJECTED,
    408: "the server gave up waiting for the request: retry, and check the network (or a proxy) between acs and the server",
    413: "the request is too large for the server (or a proxy in front of it): shorten the prompt",
    415: "the server does not take a JSON body there: check that ACS_BASE_URL points at an OpenAI-compatible API",
    422: REJECTED,
    429: "the server is rate limiting: wait and retry, or raise --retries",
    500: "the server failed: check its log, and retry later",
    503: "the server is unavailable (overloaded, starting, or down for maintenance): retry later, or raise --retries",
    505: "the server does not speak HTTP/1.1, which acs sends: check that ACS_BASE_URL names its HTTP port",
    511: "the network wants a sign-in first (a captive portal): sign in with a browser, then retry",
}


class _Asked(NamedTuple):
    base: str
    endpoint: str  # the path below the base URL: /completions, /models
    model: Any
    about_model: bool  # the error body names the model
    key_from: str | None  # where the key sent came from; None: no key was sent
    proxy: str | None
    host: str


def _status_hint(status: int, asked: _Asked) -> str:
    """The hint for a status whose meaning depends on what was asked, or through what."""
    if status in (401, 403):
        if asked.key_from is None:
            return "the server wants a key: set ACS_API_KEY"
        allowed = "" if status == 401 else ", and that it allows this request"
        return f"the server refused the key from {asked.key_from}: check it is the key this server expects{allowed}"
    if status in (404, 410):
        if asked.about_model:
            return f"the model {asked.model!r} is not served there: `acs models` lists the models; pick one with --model"
        if not asked.base.rstrip("/").endswith("/v1"):
            return f"check ACS_BASE_URL: OpenAI-compatible servers usually live under /v1 (try {asked.base.rstrip('/')}/v1)"
        return f"check ACS_BASE_URL: the server has no {asked.endpoint} endpoint there"
    if status == 405:
        return f"the server does not take this method at {asked.endpoint}: check that ACS_BASE_URL points at the API (it usually ends in /v1)"
    if status == 407:
        if asked.proxy is None:
            return "a proxy between acs and the server wants credentials: ask whoever runs it"
        return f"the proxy {asked.proxy} (from the environment) wants credentials: put them in its URL (http://user:password@host:port), or bypass it with NO_PROXY={asked.host}"
    if status == 501:
        return _not_implemented(asked.endpoint)
    if status in (502, 504):
        what = "got no valid answer from" if status == 502 else "timed out waiting for"
        if asked.proxy is not None:
            return f"the proxy {asked.proxy} (from the environment) {what} the server: check that the server is up, or bypass the proxy with NO_PROXY={asked.host}"
        return f"a gateway or proxy in front of the server {what} it: check that the server is up, and retry later"
    if 300 <= status < 400:
        return "the server redirects; point ACS_BASE_URL at the URL it names"
    if status >= 500:
        return "the server failed: check its log, and retry later"
    return REJECTED


def _not_implemented(endpoint: str) -> str:
    """501: the server does not support the request (retrying will not change that)."""
    if endpoint == "/models":
        return "the server does not list its models: name one with --model or ACS_MODEL"
    if endpoint == "/chat/completions":
        return "the server does not support chat completions there: try `acs complete` (POST /completions)"
    return f"the server does not support {endpoint} there: try `acs chat` (POST /chat/completions), and check the flags you passed"


def _endpoint(url: str, base: str) -> str:
    """The request's path below the base URL: /completions, /chat/completions, /models."""
    path = urlsplit(url).path
    below = urlsplit(base).path.rstrip("/")
    return path[len(below) :] if below and path.startswith(below) else path
