"""The one httpx-to-acs error mapping (acs_cli.body.http_failure) and the status hints
(acs_cli.api.status_error), table by table.

The exceptions are built here, chained as the transports chain them (httpx's error raised while
handling the socket's or OpenSSL's), so the mapping is checked on its own; tests/test_api_cli.py
checks the same rules through acs against raw-socket servers.
"""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest

from acs_cli import netrules
from acs_cli.api import key_origin, status_error
from acs_cli.body import BODY, HEAD, Where, http_failure
from acs_cli.completion_state import CompletionState
from acs_cli.transport import MalformedResponseError

URL = "https://api.example.test/v1/completions"
PROXY = "http://proxy.example.test:3128"


def raised_during(outer: BaseException, inner: BaseException) -> BaseException:
    """`outer` raised while `inner` was being handled (its __context__), as the transport does."""
    try:
        try:
            raise inner
        except BaseException:
            raise outer from None  # `from None` hides the cause from a traceback, not from __context__
    except BaseException as exc:
        return exc


def ssl_error(reason: str, text: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] {text} (_ssl.c:1006)")
    exc.reason = reason  # type: ignore[misc]
    exc.library = "SSL"  # type: ignore[misc]
    return exc


def cert_error() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006)")
    exc.reason = "CERTIFICATE_VERIFY_FAILED"  # type: ignore[misc]
    exc.verify_message = "self-signed certificate"  # type: ignore[misc]
    return exc


def connect_error(inner: BaseException) -> BaseException:
    return raised_during(httpx.ConnectError(str(inner)), inner)


REFUSED = connect_error(ConnectionRefusedError(111, "Connection refused"))
NO_NAME = connect_error(socket.gaierror(-2, "Name or service not known"))
PLAIN_HTTP = connect_error(ssl_error("WRONG_VERSION_NUMBER", "wrong version number"))
PLAIN_HTTP_NEW_OPENSSL = connect_error(ssl_error("RECORD_LAYER_FAILURE", "record layer failure"))
UNTRUSTED = connect_error(cert_error())
TLS_EOF = connect_error(ssl_error("UNEXPECTED_EOF_WHILE_READING", "EOF occurred in violation of protocol"))


# --------------------------------------------------------------------------- before the head

# (exception, proxy, exit status, retried, words in the message, words in the hint, words in neither)
HEAD_TABLE = [
    (REFUSED, None, 4, True, ["cannot connect", URL, "Connection refused"], ["start the server", "ACS_BASE_URL"], ["proxy"]),
    (httpx.ConnectError("[Errno 111] Connection refused"), None, 4, True, ["Connection refused"], ["ACS_BASE_URL"], []),
    (NO_NAME, None, 4, False, ["cannot resolve", "api.example.test"], ["host name", "ACS_BASE_URL"], ["refused"]),
    (httpx.ConnectError("[Errno -2] Name or service not known"), None, 4, False, ["cannot resolve"], ["host name"], []),
    (PLAIN_HTTP, None, 4, False, ["does not speak TLS", "wrong version number"], ["plain http", "use http://"], ["certificate"]),
    (PLAIN_HTTP_NEW_OPENSSL, None, 4, False, ["does not speak TLS"], ["use http://"], ["certificate"]),
    (httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"), None, 4, False, ["wrong version number"], ["use http://"], ["certificate"]),
    (UNTRUSTED, None, 4, False, ["certificate is not trusted", "self-signed certificate"], ["certificate", "SSL_CERT_FILE"], ["plain http"]),
    (TLS_EOF, None, 4, False, ["TLS handshake", "EOF occurred"], ["speaks TLS", "http://"], ["certificate"]),
    (httpx.ConnectTimeout("timed out"), None, 5, False, ["connecting to", "timed out"], ["reachable"], []),
    (httpx.ReadTimeout("timed out"), None, 5, False, ["first byte"], ["--timeout"], []),
    (httpx.WriteTimeout("timed out"), None, 5, False, ["first byte"], ["--timeout"], []),
    (MalformedResponseError("status line is not HTTP/1.x"), None, 11, False, ["malformed HTTP response", "status line"], ["HTTP/1.1", "ACS_BASE_URL"], []),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), None, 4, True, ["before a response", "Server disconnected"], ["closed"], []),
    (raised_during(httpx.ReadError("[Errno 104] Connection reset by peer"), ConnectionResetError(104, "Connection reset by peer")), None, 4, True, ["Connection reset by peer"], ["closed"], []),
    (httpx.WriteError("[Errno 32] Broken pipe"), None, 4, True, ["Broken pipe"], ["closed"], []),
    (httpx.TooManyRedirects("Exceeded maximum allowed redirects."), None, 4, False, ["too many redirects"], ["ACS_BASE_URL"], []),
    (httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'"), None, 4, False, ["unsupported protocol"], ["retry"], []),
    # through a proxy from the environment: what failed is the proxy, and the hint says how to bypass it
    (REFUSED, PROXY, 4, True, ["cannot connect to the proxy", PROXY, "Connection refused"], ["NO_PROXY=api.example.test", "HTTPS_PROXY"], []),
    (NO_NAME, PROXY, 4, False, ["cannot resolve the proxy", PROXY], ["NO_PROXY=api.example.test"], []),
    (httpx.ProxyError("407 Proxy Authentication Required"), PROXY, 4, False, ["the proxy", PROXY, "407"], ["credentials", "NO_PROXY=api.example.test"], []),
    (httpx.ProxyError("502 Bad Gateway"), PROXY, 4, False, [PROXY, "502"], ["could not reach the server", "NO_PROXY"], ["credentials"]),
    (httpx.ConnectTimeout("timed out"), PROXY, 5, False, ["through the proxy", PROXY], ["NO_PROXY"], []),
    (httpx.ReadError("[Errno 104] Connection reset by peer"), PROXY, 4, True, ["before a response"], [PROXY], []),
    (PLAIN_HTTP, PROXY, 4, False, ["does not speak TLS"], ["use http://"], ["NO_PROXY"]),  # TLS is with the server, through the tunnel
]


@pytest.mark.parametrize("exc, proxy, status, retried, said, hinted, absent", HEAD_TABLE)
def test_failures_before_the_head(exc: Exception, proxy: str | None, status: int, retried: bool, said: list[str], hinted: list[str], absent: list[str]) -> None:
    failure = http_failure(exc, HEAD, Where(URL, 7.0, 1, proxy))
    error = failure.error
    assert error is not None
    assert int(error.status) == status, error.message
    assert failure.retry is retried
    for words in said:
        assert words in error.message, (words, error.message)
    assert error.hint
    for words in hinted:
        assert words in error.hint, (words, error.hint)
    for words in absent:
        assert words.lower() not in (error.message + " " + error.hint).lower(), (words, error.message, error.hint)
    assert "ACS_API_BASE" not in error.hint
    assert failure.reason and "\n" not in failure.reason


def test_the_attempts_are_counted_in_the_message() -> None:
    error = http_failure(REFUSED, HEAD, Where(URL, 7.0, 3)).error
    assert error is not None and "after 3 attempts" in error.message
    error = http_failure(REFUSED, HEAD, Where(URL, 7.0, 1)).error
    assert error is not None and "attempts" not in error.message


def test_the_origin_named_never_holds_credentials() -> None:
    where = Where("https://user:pa55word@api.example.test:8443/v1/completions")
    assert where.origin == "https://api.example.test:8443"
    error = http_failure(PLAIN_HTTP, HEAD, where).error
    assert error is not None and "pa55word" not in error.message


def test_the_reason_for_a_retry_notice_is_the_error_beneath() -> None:
    assert http_failure(REFUSED, HEAD, Where(URL)).reason == "Connection refused"
    assert http_failure(UNTRUSTED, HEAD, Where(URL)).reason == "certificate verify failed: self-signed certificate"
    assert http_failure(PLAIN_HTTP, HEAD, Where(URL)).reason == "wrong version number"


# --------------------------------------------------------------------------- reading the body


def started() -> CompletionState:
    """A completion whose one choice has text and no finish reason yet."""
    state = CompletionState(1)
    state.feed([("message", '{"choices":[{"index":0,"text":"Hello"}]}')])
    return state


def finished() -> CompletionState:
    state = started()
    state.feed([("message", '{"choices":[{"index":0,"text":"!","finish_reason":"stop"}]}')])
    return state


BODY_TABLE = [
    # (exception, state, exit status or None for whole, words in the message, words in the hint)
    (MalformedResponseError("chunk size line is not hexadecimal: b'zz'"), started, 11, ["malformed HTTP framing mid-stream", "hexadecimal"], ["text so far is kept"]),
    (MalformedResponseError("chunk size line is not hexadecimal: b'zz'"), None, 11, ["mid-body"], ["bytes received are on stdout"]),
    (MalformedResponseError("invalid gzip data"), started, 11, ["gzip"], ["HTTP/1.1"]),
    (httpx.RemoteProtocolError("peer closed connection without sending complete message body"), started, 10, ["incomplete stream", "mid-stream"], ["text so far is kept"]),
    (httpx.RemoteProtocolError("peer closed connection without sending complete message body"), None, 10, ["mid-body"], ["bytes received"]),
    (httpx.ReadError("[Errno 104] Connection reset by peer"), started, 10, ["incomplete stream"], ["retry"]),
    (httpx.ReadTimeout("timed out"), started, 5, ["no data from the server for 7 s", "between two frames"], ["--timeout"]),
    (httpx.ReadTimeout("timed out"), None, 5, ["no data"], ["bytes received"]),
    (httpx.DecodingError("bad"), started, 4, ["reading the response failed"], ["retry"]),
    # after every choice finished the completion is whole, whatever broke after it
    (MalformedResponseError("chunk size line is not hexadecimal"), finished, None, [], []),
    (httpx.RemoteProtocolError("peer closed connection"), finished, None, [], []),
    (httpx.ReadTimeout("timed out"), finished, None, [], []),
]


@pytest.mark.parametrize("exc, state, status, said, hinted", BODY_TABLE)
def test_failures_while_reading_the_body(exc: Exception, state, status: int | None, said: list[str], hinted: list[str]) -> None:
    failure = http_failure(exc, BODY, Where(URL, 7.0, state=state() if state else None))
    assert failure.retry is False  # output may have been shown: never retried
    if status is None:
        assert failure.error is None
        return
    error = failure.error
    assert error is not None and int(error.status) == status, error
    for words in said:
        assert words in error.message, (words, error.message)
    for words in hinted:
        assert error.hint and words in error.hint, (words, error.hint)


def test_a_malformed_framing_is_a_protocol_error_not_a_cut() -> None:
    """MalformedResponseError is an httpx.RemoteProtocolError (a closed connection's class): its
    row comes first."""
    assert issubclass(MalformedResponseError, httpx.RemoteProtocolError)
    error = http_failure(MalformedResponseError("bad chunk"), BODY, Where(URL, 7.0, state=started())).error
    assert error is not None and error.kind == "protocol" and "incomplete" not in error.message


# --------------------------------------------------------------------------- what failed, by cause


@pytest.mark.parametrize(
    "exc, dns, tls",
    [
        (NO_NAME, True, None),
        (REFUSED, False, None),
        (PLAIN_HTTP, False, netrules.PLAIN_HTTP),
        (UNTRUSTED, False, netrules.CERTIFICATE),
        (TLS_EOF, False, netrules.OTHER_TLS),
        (ssl_error("WRONG_VERSION_NUMBER", "wrong version number"), False, netrules.PLAIN_HTTP),  # doctor's: the ssl error itself
        (cert_error(), False, netrules.CERTIFICATE),
        (httpx.ConnectError("[Errno 8] nodename nor servname provided, or not known"), True, None),
    ],
)
def test_dns_and_tls_failures_are_told_by_their_cause(exc: BaseException, dns: bool, tls: str | None) -> None:
    assert netrules.dns_failure(exc) is dns
    assert netrules.tls_problem(exc) == tls


# --------------------------------------------------------------------------- status hints

# (status, exit status, words in the hint, words not in it)
STATUS_TABLE = [
    (400, 7, ["flags", "--param"], ["retry"]),
    (401, 6, ["ACS_API_KEY"], ["retry"]),
    (403, 6, ["ACS_API_KEY"], ["retry"]),
    (404, 7, ["ACS_BASE_URL", "/completions"], ["retry"]),
    (405, 7, ["ACS_BASE_URL", "/completions"], ["retry", "--param"]),
    (407, 7, ["proxy", "credentials"], ["retry"]),
    (408, 7, ["gave up waiting", "retry"], []),
    (410, 7, ["ACS_BASE_URL"], ["retry"]),
    (413, 7, ["too large", "prompt"], ["retry", "--param"]),
    (415, 7, ["JSON", "ACS_BASE_URL"], ["retry"]),
    (422, 7, ["--param"], ["retry"]),
    (429, 7, ["rate limiting", "--retries"], []),
    (500, 8, ["failed", "log", "retry later"], []),
    (501, 8, ["does not support", "acs chat"], ["retry", "log"]),
    (502, 8, ["gateway", "no valid answer", "retry later"], []),
    (503, 8, ["unavailable", "retry later"], []),
    (504, 8, ["timed out", "retry later"], []),
    (505, 8, ["HTTP/1.1", "ACS_BASE_URL"], ["retry", "log"]),
    (511, 8, ["sign in"], []),
    (599, 8, ["failed", "log"], []),
    (418, 7, ["rejected"], ["retry"]),
    (300, 7, ["redirects", "ACS_BASE_URL"], []),
]


@pytest.mark.parametrize("status, exit_status, hinted, absent", STATUS_TABLE)
def test_every_status_hint_says_what_the_status_means(status: int, exit_status: int, hinted: list[str], absent: list[str]) -> None:
    error = status_error(status, "Phrase", URL, b'{"error":{"message":"no"}}', base="https://api.example.test/v1", model="m")
    assert int(error.status) == exit_status
    assert error.hint and "ACS_API_BASE" not in error.hint
    for words in hinted:
        assert words in error.hint, (words, error.hint)
    for words in absent:
        assert words not in error.hint, (words, error.hint)


def test_501_on_chat_points_at_complete_and_on_models_at_the_model_flag() -> None:
    base = "https://api.example.test/v1"
    chat = status_error(501, "Not Implemented", f"{base}/chat/completions", b"", base=base)
    assert chat.hint and "acs complete" in chat.hint and "retry" not in chat.hint
    models = status_error(501, "Not Implemented", f"{base}/models", b"", base=base)
    assert models.hint and "--model" in models.hint


def test_a_404_on_the_model_list_names_that_endpoint() -> None:
    base = "https://api.example.test/v1"
    error = status_error(404, "Not Found", f"{base}/models", b"", base=base)
    assert error.hint and "/models" in error.hint and "/completions" not in error.hint


def test_the_key_refused_is_named_by_where_it_came_from() -> None:
    for status in (401, 403):
        error = status_error(status, "", URL, b"", base="https://api.example.test/v1", has_key=True, key_from="OPENAI_API_KEY")
        assert error.hint and "the key from OPENAI_API_KEY" in error.hint and "ACS_API_KEY" not in error.hint


def test_407_and_gateway_errors_through_a_proxy_name_it() -> None:
    base = "https://api.example.test/v1"
    for status in (407, 502, 504):
        error = status_error(status, "", URL, b"", base=base, proxy=PROXY)
        assert error.hint and PROXY in error.hint and "NO_PROXY=api.example.test" in error.hint, error.hint


@pytest.mark.parametrize(
    "label, shown",
    [
        ("env ACS_API_KEY", "ACS_API_KEY"),
        ("env OPENAI_API_KEY", "OPENAI_API_KEY"),
        ("env ACS_API_KEY_COMMAND (api_key_command)", "ACS_API_KEY_COMMAND"),
        ("profile dev", "profile dev of the config file"),
        ("file defaults", "the config file"),
        ("profile dev (api_key_command)", "api_key_command in profile dev of the config file"),
        ("file defaults (api_key_file)", "api_key_file in the config file"),
    ],
)
def test_where_the_key_came_from(label: str, shown: str) -> None:
    assert key_origin({"api_key": label}) == shown
    assert key_origin({}) == "ACS_API_KEY"
