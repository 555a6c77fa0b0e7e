"""`acs doctor`: check the configured server step by step and print a checklist.

The checks run in order, each building on the ones before it:

    base URL       the settings load and the base URL parses (a key over plain http:// warns)
    DNS            getaddrinfo of the host (of the proxy when one from the environment is used)
    TCP connect    a connection to each resolved address in turn until one answers
    TLS            https only: handshake, certificate subject, issuer and days to expiry, with the
                   same CA rules as acs_cli.transport (SSL_CERT_FILE / SSL_CERT_DIR, else certifi)
    auth           GET /models answers (401/403: the key is refused or missing)
    model          the configured model is served, or exactly one is served when none is configured
    completion     a short streamed completion is accepted: 200 and text/event-stream
    stream         the body parses as an event stream of completion frames (no error frame, not cut)
    finish reason  every choice finished
    [DONE]         the stream ended with data: [DONE]
    usage          a usage chunk arrived
    first token    the time from sending the request to the first text
    buffering      whether the text frames arrived spread over time or all at once at the end

A check is pass, warn, fail or skip (it depends on one that failed, or does not apply). The exit
status is 0 when no check failed (warnings are allowed), else the status of the first failed
check, with the meaning it has for `acs complete` (acs_cli.errors.ExitStatus).
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from acs_cli.body import parse_document, prepend, sniff_body
from acs_cli.completion_state import CompletionState
from acs_cli.errors import AcsError, ConfigError, ExitStatus, IncompleteStream
from acs_cli.records import Delta, Record
from acs_cli.secrets import redact
from acs_cli.terminal import Terminal
from acs_cli.text import make_visible, shorten

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
MARKS = {PASS: "✓", WARN: "⚠", FAIL: "✗", SKIP: "–"}
_COLOURS = {PASS: "\x1b[32m", WARN: "\x1b[33m", FAIL: "\x1b[1;31m", SKIP: "\x1b[2m"}

NAMES = (
    "base URL",
    "DNS",
    "TCP connect",
    "TLS",
    "auth",
    "model",
    "completion",
    "stream",
    "finish reason",
    "[DONE]",
    "usage",
    "first token",
    "buffering",
)

PROBE_PROMPT = "Hello"
EXPIRY_WARN_DAYS = 14
# buffering: judged only on at least this many text frames, arriving over at least this long
MIN_FRAMES = 4
MIN_SECONDS = 0.25
CLUMP_FRACTION = 0.05  # text frames spread over less than this share of the time to the last one
BUFFER_HINT = (
    "turn response buffering off for this location: nginx `proxy_buffering off;` (or have the "
    "upstream send the header `X-Accel-Buffering: no`); for other proxies, load balancers and CDNs "
    "disable response buffering or compression for text/event-stream"
)


@dataclass
class DoctorOptions:
    base_url: str | None = None
    model: str | None = None
    timeout: str | None = None
    max_tokens: int = 16
    as_json: bool = False
    profile: str | None = None


@dataclass
class Check:
    name: str
    status: str
    detail: str
    hint: str | None = None
    seconds: float | None = None
    exit_status: int | None = None  # the status a failed check exits with

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "hint": self.hint,
            "seconds": None if self.seconds is None else round(self.seconds, 6),
        }


@dataclass
class Probe:
    """What the probe completion's stream looked like, with a time (since the request) per read."""

    status: int = 0
    media: str = ""
    headers: dict[str, str] | None = None
    head_seconds: float = 0.0
    document: bool = False  # a 200 JSON completion instead of an event stream
    reads: int = 0
    text_reads: int = 0
    frames: int = 0
    text_times: list[float] | None = None
    texts: dict[int, list[str]] | None = None  # each choice's text, for the preview
    last_time: float = 0.0
    cut: str | None = None  # why the connection ended early
    timed_out: bool = False


class Report:
    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.base_url = ""
        self.secret: str | None = None  # the key's value, only to keep it out of every output

    def add(
        self,
        name: str,
        status: str,
        detail: str,
        hint: str | None = None,
        seconds: float | None = None,
        exit_status: int | ExitStatus | None = None,
    ) -> Check:
        check = Check(name, status, detail, hint, seconds, int(exit_status) if exit_status is not None else None)
        if status == FAIL and check.exit_status is None:
            check.exit_status = int(ExitStatus.ERROR)
        self.checks.append(check)
        return check

    def fail(self, name: str, exc: AcsError, seconds: float | None = None) -> Check:
        return self.add(name, FAIL, exc.message, exc.hint, seconds, exc.status)

    def skip_rest(self, reason: str) -> None:
        done = {c.name for c in self.checks}
        for name in NAMES:
            if name not in done:
                self.add(name, SKIP, f"skipped: {reason}")

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    @property
    def exit_status(self) -> int:
        for check in self.checks:
            if check.status == FAIL:
                return int(check.exit_status or ExitStatus.ERROR)
        return int(ExitStatus.OK)


# ---------------------------------------------------------------------------------------- entry


def doctor(opts: DoctorOptions, term: Terminal) -> int:
    report = diagnose(opts)
    if opts.as_json:
        payload = {
            "ok": report.ok,
            "base_url": _safe(report.base_url),
            "exit_status": report.exit_status,
            "checks": [_clean(c, report.secret).as_dict() for c in report.checks],
        }
        term.write_out(json.dumps(payload, indent=2, ensure_ascii=False).encode() + b"\n")
    else:
        term.write_out(render(report, term.stdout_colour).encode("utf-8", "replace"))  # the checklist goes to stdout
    return report.exit_status


def diagnose(opts: DoctorOptions, clock: Callable[[], float] = time.monotonic) -> Report:
    report = Report()
    settings = _check_settings(opts, report)
    if settings is None:
        report.skip_rest("the settings are invalid")
        return report
    parts = urlsplit(settings.api_base)
    https = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    proxy = _proxy_for(settings.api_base)

    if proxy is not None:
        target_host, target_port = proxy
        where = f"the proxy {_hostport(target_host, target_port)}"
    else:
        target_host, target_port, where = host, port, None

    infos = _check_dns(report, target_host, target_port, where)
    if infos is None:
        report.skip_rest("DNS failed")
        return report
    sock = _check_tcp(report, infos, target_host, target_port, where)
    if sock is None:
        report.skip_rest("TCP connect failed")
        return report
    try:
        if not https:
            report.add("TLS", SKIP, "skipped: plain http://, no TLS")
        elif proxy is not None:
            report.add("TLS", SKIP, "skipped: through a proxy the handshake happens inside its tunnel; the HTTP checks below cover it")
        elif not _check_tls(report, sock, host):
            report.skip_rest("TLS failed")
            return report
    finally:
        try:
            sock.close()
        except OSError:
            pass

    from acs_cli.api import Api

    with Api(settings, retries=0, warn=lambda text: None) as api:
        models = _check_auth(report, api, settings.api_key is not None)
        if models is None:
            report.skip_rest("GET /models failed")
            return report
        model = _check_model(report, models, settings.model, settings.api_base)
        if model is None:
            report.skip_rest("no model to probe")
            return report
        _probe(report, api, model, opts.max_tokens, settings.timeout, clock)
    return report


# ---------------------------------------------------------------------------------------- steps


def _check_settings(opts: DoctorOptions, report: Report) -> Any:
    from acs_cli.settings import DEFAULT_API_BASE, load_settings

    raw_base = opts.base_url or _env("ACS_API_BASE") or DEFAULT_API_BASE
    report.base_url = raw_base
    try:
        settings = load_settings(api_base=opts.base_url, model=opts.model, timeout=opts.timeout, profile=opts.profile)
    except ConfigError as exc:
        about_base = "ACS_API_BASE" in exc.message or "--base-url" in exc.message
        report.fail("base URL" if about_base else "settings", exc)
        return None
    report.base_url = settings.api_base
    if settings.api_key is not None:
        report.secret = settings.api_key.get_secret_value()
    parts = urlsplit(settings.api_base)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    source = (getattr(settings, "sources", None) or {}).get("api_key", "env")
    if settings.api_key is None:
        key = "no key (ACS_API_KEY unset)"
    elif source == "env":
        key = "key from ACS_API_KEY (not shown)"
    else:
        key = f"key from {source} (not shown)"
    model = f"model {settings.model}" if settings.model else "no model configured"
    detail = f"{_safe(settings.api_base)}: {parts.scheme}, host {parts.hostname}, port {port}; {model}; {key}; timeout {settings.timeout:g} s"
    host = parts.hostname or ""
    if settings.api_key is not None and not https and not _loopback(host):
        report.add(
            "base URL",
            WARN,
            f"{detail}; the key goes over plain http:// to {host}, anyone on the path can read it",
            "use https:// for a server that is not on this machine",
        )
    else:
        report.add("base URL", PASS, detail)
    return settings


def _check_dns(report: Report, host: str, port: int, where: str | None) -> list[tuple[Any, ...]] | None:
    start = time.monotonic()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        took = time.monotonic() - start
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        subject = f" ({where})" if where else ""
        report.add(
            "DNS",
            FAIL,
            f"cannot resolve {host}{subject}: {reason} (after {_ms(took)})",
            "check the host name in ACS_API_BASE (or --base-url)" if where is None else "check the proxy's host name in HTTP(S)_PROXY / ALL_PROXY",
            took,
            ExitStatus.CONNECT,
        )
        return None
    took = time.monotonic() - start
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    subject = f"{host}" + (f" ({where})" if where else "")
    report.add("DNS", PASS, f"{subject} resolved to {', '.join(addresses[:6])} in {_ms(took)}", seconds=took)
    return infos


def _check_tcp(report: Report, infos: list[tuple[Any, ...]], host: str, port: int, where: str | None) -> socket.socket | None:
    from acs_cli.api import CONNECT_TIMEOUT

    failures: list[tuple[str, str]] = []  # (address, what happened)
    timed_out = False
    start = time.monotonic()
    for family, kind, proto, _name, address in infos:
        shown = _hostport(str(address[0]), int(address[1]))
        sock = socket.socket(family, kind, proto)
        sock.settimeout(CONNECT_TIMEOUT)
        began = time.monotonic()
        try:
            sock.connect(address)
        except TimeoutError:
            sock.close()
            timed_out = True
            failures.append((shown, f"timed out after {CONNECT_TIMEOUT:g} s"))
            continue
        except OSError as exc:
            sock.close()
            failures.append((shown, str(exc.strerror or exc)))
            continue
        took = time.monotonic() - began
        tried = f" (after {_tried(failures)})" if failures else ""
        via = f" ({where})" if where else ""
        report.add("TCP connect", PASS, f"connected to {shown}{via} in {_ms(took)}{tried}", seconds=took)
        return sock
    took = time.monotonic() - start
    via = f" ({where})" if where else ""
    if len({address for address, _ in failures}) == 1:
        reasons = "; ".join(dict.fromkeys(reason for _, reason in failures))  # one address: no need to name it again
        target = failures[0][0]
    else:
        reasons = _tried(failures) or "no address"
        target = _hostport(host, port)
    if timed_out and all("timed out" in reason for _, reason in failures):
        report.add(
            "TCP connect",
            FAIL,
            f"connecting to {target}{via} timed out: {reasons}",
            "check that the server is up and reachable from here (firewall, VPN, the port in ACS_API_BASE)",
            took,
            ExitStatus.TIMEOUT,
        )
    else:
        report.add(
            "TCP connect",
            FAIL,
            f"cannot connect to {target}{via}: {reasons}",
            "start the server, or point ACS_API_BASE (or --base-url) at one" if where is None else "check the proxy in HTTP(S)_PROXY / ALL_PROXY, or bypass it with NO_PROXY",
            took,
            ExitStatus.CONNECT,
        )
    return None


def _check_tls(report: Report, sock: socket.socket, host: str) -> bool:
    from acs_cli.api import CONNECT_TIMEOUT
    from acs_cli.transport import FastTransport

    context = FastTransport()._context()  # the very CA rules acs uses for its requests
    bundle = _ca_bundle()
    sock.settimeout(CONNECT_TIMEOUT)
    start = time.monotonic()
    try:
        tls = context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        took = time.monotonic() - start
        reason = exc.verify_message or exc.reason or str(exc)
        report.add(
            "TLS",
            FAIL,
            f"the certificate of {host} is not trusted: {reason} (CA bundle: {bundle})",
            "point SSL_CERT_FILE (or SSL_CERT_DIR) at the CA that signed the server's certificate, or fix the certificate (name, expiry, chain)",
            took,
            ExitStatus.CONNECT,
        )
        return False
    except TimeoutError:
        took = time.monotonic() - start
        report.add(
            "TLS",
            FAIL,
            f"the TLS handshake with {host} timed out after {CONNECT_TIMEOUT:g} s",
            "check that the port speaks TLS: for a plain HTTP server use http:// in ACS_API_BASE",
            took,
            ExitStatus.TIMEOUT,
        )
        return False
    except (ssl.SSLError, OSError) as exc:
        took = time.monotonic() - start
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        if reason.isupper():  # an OpenSSL reason code: WRONG_VERSION_NUMBER
            reason = reason.lower().replace("_", " ")
        report.add(
            "TLS",
            FAIL,
            f"the TLS handshake with {host} failed: {reason}",
            "check that the port speaks TLS (a plain HTTP server wants http:// in ACS_API_BASE) and the server's TLS settings",
            took,
            ExitStatus.CONNECT,
        )
        return False
    took = time.monotonic() - start
    try:
        cert = tls.getpeercert() or {}
        version = tls.version() or "TLS"
    finally:
        try:
            tls.close()
        except OSError:
            pass
    subject = _name(cert.get("subject"))
    issuer = _name(cert.get("issuer"))
    detail = f"{version} in {_ms(took)}; certificate {subject or '(no subject)'}, issued by {issuer or '(unknown)'}"
    not_after = cert.get("notAfter")
    days: int | None = None
    if not_after:
        try:
            expires = ssl.cert_time_to_seconds(str(not_after))
        except ValueError:
            expires = None
        if expires is not None:
            days = int((expires - time.time()) // 86400)
            detail += f", expires {time.strftime('%Y-%m-%d', time.gmtime(expires))} (in {days} days)"
    if days is not None and days < EXPIRY_WARN_DAYS:
        report.add("TLS", WARN, detail, f"the certificate expires in {days} days: renew it", took)
    else:
        report.add("TLS", PASS, detail, seconds=took)
    return True


def _check_auth(report: Report, api: Any, has_key: bool) -> list[dict[str, Any]] | None:
    start = time.monotonic()
    try:
        models = api.list_models()
    except AcsError as exc:
        report.fail("auth", exc, time.monotonic() - start)
        return None
    took = time.monotonic() - start
    key = "the key was accepted" if has_key else "no key sent (ACS_API_KEY unset) and none needed"
    report.add("auth", PASS, f"GET /models answered 200 in {_ms(took)}; {key}", seconds=took)
    return models


def _check_model(report: Report, models: list[dict[str, Any]], configured: str | None, base: str) -> str | None:
    ids = [str(m.get("id")) for m in models if m.get("id") is not None]
    listed = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
    if configured:
        if configured in ids:
            report.add("model", PASS, f"{configured} is served ({_plural(len(ids), 'model')})")
            return configured
        report.add(
            "model",
            FAIL,
            f"{configured} is not served; the server lists {listed or 'no models'}",
            "pick one of the listed models with --model NAME or ACS_MODEL",
            exit_status=ExitStatus.CONFIG,
        )
        return None
    if len(ids) == 1:
        report.add("model", PASS, f"no model configured; the server's only model {ids[0]} will be used")
        return ids[0]
    if not ids:
        report.add(
            "model",
            FAIL,
            f"no model configured and the server at {_safe(base)} lists none",
            "pass --model NAME or set ACS_MODEL",
            exit_status=ExitStatus.CONFIG,
        )
        return None
    report.add(
        "model",
        FAIL,
        f"no model configured and the server serves {len(ids)}: {listed}",
        "pick one with --model NAME or ACS_MODEL",
        exit_status=ExitStatus.CONFIG,
    )
    return None


# ---------------------------------------------------------------------------------------- probe


def _probe(report: Report, api: Any, model: str, max_tokens: int, timeout: float, clock: Callable[[], float]) -> None:
    import httpx

    from acs_cli.sse import SSEParser

    body = {
        "model": model,
        "prompt": PROBE_PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    probe = Probe(text_times=[], texts={})
    start = clock()
    try:
        response = api.open_completion(body)
    except AcsError as exc:
        report.fail("completion", exc, clock() - start)
        report.skip_rest("the completion request failed")
        return
    probe.head_seconds = clock() - start
    probe.status = response.status_code
    probe.headers = {k.lower(): v for k, v in response.headers.items()}
    probe.media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    stream = CompletionState()
    parser = SSEParser()
    chunks = response.iter_raw()
    first = b""
    try:
        if probe.media != "text/event-stream":
            first = next(chunks, b"")
            kind = sniff_body(probe.media, first)
            head = shorten(first[:120].decode("utf-8", "replace"), 120)
            if kind == "other":
                report.add(
                    "completion",
                    FAIL,
                    f"POST /completions answered {probe.status} with {probe.media or 'no content type'}, not an event stream: {head}",
                    "check that ACS_API_BASE points at an OpenAI-compatible server, not a web page or a proxy login",
                    probe.head_seconds,
                    ExitStatus.PROTOCOL,
                )
                report.skip_rest("the answer is not a completion")
                return
            if kind == "json":
                probe.document = True
                rest = first + b"".join(_bounded(chunks, 1 << 20))
                probe.last_time = clock() - start
                _keep_text(probe, parse_document(rest, stream))
            else:
                report.add(
                    "completion",
                    WARN,
                    f"POST /completions answered {probe.status} in {_ms(probe.head_seconds)} with {probe.media or 'no content type'}, "
                    "but the body is an event stream",
                    "have the server (or proxy) send Content-Type: text/event-stream; some proxies buffer anything else",
                    probe.head_seconds,
                )
        if not probe.document:
            _read_stream(probe, stream, parser, prepend(first, chunks), start, clock)
    except httpx.TimeoutException:
        probe.timed_out = True
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        probe.cut = shorten(str(exc) or type(exc).__name__, 120)
    finally:
        response.close()
        parser.close()

    if probe.document:
        report.add(
            "completion",
            WARN,
            f"POST /completions answered {probe.status} with {probe.media or 'JSON'} in {_ms(probe.head_seconds)}: a whole completion, not an event stream",
            "the server or a proxy ignores \"stream\": true; acs shows the text, but only at the end (check the server's or proxy's streaming settings)",
            probe.head_seconds,
        )
    elif not any(c.name == "completion" for c in report.checks):
        report.add(
            "completion",
            PASS,
            f"POST /completions answered {probe.status} text/event-stream in {_ms(probe.head_seconds)} ({model}, max_tokens {max_tokens})",
            seconds=probe.head_seconds,
        )
    _judge_stream(report, probe, stream, timeout)


def _read_stream(probe: Probe, stream: Any, parser: Any, chunks: Any, start: float, clock: Callable[[], float]) -> None:
    assert probe.text_times is not None
    for chunk in chunks:
        now = clock() - start
        if not chunk:
            continue
        probe.reads += 1
        probe.last_time = now
        had_text = False
        for event in parser.feed(chunk):
            frames = stream.frames
            records = stream.feed([event])
            if stream.frames > frames:
                probe.frames += stream.frames - frames
            if _keep_text(probe, records):
                had_text = True
                probe.text_times.append(now)
            if stream.done or stream.failure is not None:
                break
        if had_text:
            probe.text_reads += 1
        if stream.done or stream.failure is not None:
            return


def _keep_text(probe: Probe, records: list[Record]) -> bool:
    """Keep the records' text for the preview; whether any carried text."""
    assert probe.texts is not None
    had_text = False
    for r in records:
        if type(r) is Delta and r.text:
            probe.texts.setdefault(r.index, []).append(r.text)
            had_text = True
    return had_text


def _judge_stream(report: Report, probe: Probe, stream: Any, timeout: float) -> None:
    texts = probe.texts or {}
    text = "".join(texts[min(texts)]) if texts else ""
    preview = make_visible(shorten(text, 48))
    what = "a JSON completion" if probe.document else f"{_plural(probe.frames, 'frame')} in {_plural(probe.reads, 'read')} over {_secs(probe.last_time)}"
    failed = False
    if stream.failure is not None:
        exc = stream.failure
        report.add("stream", FAIL, f"{exc.message} (after {what})", exc.hint, probe.last_time, exc.status)
        failed = True
    elif probe.timed_out:
        phase = "between two frames" if probe.frames else "waiting for the first frame"
        report.add(
            "stream",
            FAIL,
            f"no data from the server for {timeout:g} s ({phase}, after {what})",
            "the server may be overloaded or stuck; raise --timeout or ACS_TIMEOUT if it is just slow",
            probe.last_time,
            ExitStatus.TIMEOUT,
        )
        failed = True
    elif probe.cut is not None and stream.verdict(cut=True) is not None:
        report.add(
            "stream",
            FAIL,
            f"the connection closed mid-stream after {what}: {probe.cut}",
            "a proxy or the server cuts the response; check the server's log and the proxy's timeouts",
            probe.last_time,
            ExitStatus.INCOMPLETE,
        )
        failed = True
    else:
        report.add("stream", PASS, f"{what}: {preview!r}" if text else f"{what}, no text", seconds=probe.last_time)
    if failed:
        report.skip_rest("the stream failed")
        return

    verdict = stream.verdict()
    finished = [c for c in stream.ordered() if c.finished]
    if isinstance(verdict, IncompleteStream) and any(c.finish_reason in ("abort", "error") for c in finished):
        report.add("finish reason", FAIL, verdict.message, verdict.hint, exit_status=ExitStatus.INCOMPLETE)
    elif finished and all(c.finished for c in stream.ordered()):
        reasons = ", ".join(dict.fromkeys(str(c.finish_reason) for c in finished))
        report.add("finish reason", PASS, f"finish: {reasons}")
    elif stream.done:
        report.add(
            "finish reason",
            WARN,
            "data: [DONE] arrived, but not every choice had a finish reason",
            "the server leaves out finish_reason; acs accepts the stream, but cannot tell a cut from a stop",
        )
    else:
        cause = "the stream ended before any completion frame arrived" if not stream.choices else "no choice had a finish reason when the body ended"
        report.add(
            "finish reason",
            FAIL,
            cause,
            "the server or a proxy cut the stream; check the server's log and any proxy's timeouts",
            exit_status=ExitStatus.INCOMPLETE,
        )

    if probe.document:
        report.add("[DONE]", SKIP, "skipped: not an event stream")
    elif stream.done:
        report.add("[DONE]", PASS, f"data: [DONE] after {_secs(probe.last_time)}", seconds=probe.last_time)
    elif verdict is None:
        report.add(
            "[DONE]",
            WARN,
            "the stream ended without data: [DONE] (every choice had its finish reason, so acs accepts it)",
            "the server or a proxy drops the last frame; acs is fine with it, other clients may wait for it",
        )
    else:
        report.add(
            "[DONE]",
            FAIL,
            "the stream ended without data: [DONE] and without a finish reason: it is incomplete",
            "the server or a proxy cut the stream; check the server's log and any proxy's timeouts",
            exit_status=ExitStatus.INCOMPLETE,
        )

    if stream.usage:
        from acs_cli.sinks.summary import usage_figures

        figures = usage_figures(stream.usage)
        report.add("usage", PASS, figures)
    else:
        report.add(
            "usage",
            WARN,
            "no usage chunk arrived: the server sends no usage; `acs` will say so",
            "vLLM and OpenAI send it for stream_options.include_usage; an older server or a proxy may drop it",
        )

    times = probe.text_times or []
    if probe.document:
        report.add("first token", PASS, f"the whole completion after {_secs(probe.last_time)} (not streamed)", seconds=probe.last_time)
    elif times:
        report.add(
            "first token",
            PASS,
            f"first text after {_secs(times[0])} (headers after {_secs(probe.head_seconds)})",
            seconds=times[0],
        )
    else:
        report.add(
            "first token",
            WARN,
            f"no text arrived ({_plural(probe.frames, 'frame')})",
            "the model generated nothing for the probe prompt; try a larger --max-tokens",
        )

    _judge_buffering(report, probe)


def _judge_buffering(report: Report, probe: Probe) -> None:
    """Frames spread over the generation, or all at once at the end: the mark of a buffering proxy.

    Buffered means: at least MIN_FRAMES text frames, the answer took at least MIN_SECONDS, the
    text frames arrived within CLUMP_FRACTION of the time from the request to the last of them,
    and in few reads (on average 4 or more frames per read, at most 2 reads for a short probe).
    A server that streams sends each frame as it is generated, so they arrive in separate reads.
    """
    if probe.document:
        report.add("buffering", SKIP, "skipped: not an event stream")
        return
    headers = probe.headers or {}
    accel = headers.get("x-accel-buffering", "").strip().lower()
    note = "; the response carries X-Accel-Buffering: no" if accel == "no" else ""
    times = probe.text_times or []
    n = len(times)
    if n < MIN_FRAMES:
        report.add("buffering", PASS, f"not enough frames to judge ({_plural(n, 'text frame')}){note}")
        return
    total = times[-1]
    spread = times[-1] - times[0]
    if total < MIN_SECONDS:
        report.add(
            "buffering",
            PASS,
            f"not enough time to judge: {_plural(n, 'text frame')} all within {_secs(total)} of the request{note}; raise --max-tokens to judge",
        )
        return
    clumped = spread <= CLUMP_FRACTION * total
    bursty = probe.text_reads <= max(2, n // 4)
    figures = f"{_plural(n, 'text frame')} in {_plural(probe.text_reads, 'read')}, spread over {_secs(spread)} of {_secs(total)}"
    if clumped and bursty:
        detail = f"frames arrive all at once: a proxy is buffering the stream ({figures}, all at the end){note}"
        hint = BUFFER_HINT
        if note:
            hint = "the header X-Accel-Buffering: no is there, yet something still buffers: a proxy that ignores it (a load balancer, a CDN, nginx with proxy_ignore_headers); " + BUFFER_HINT
        report.add("buffering", WARN, detail, hint, spread)
    elif bursty and probe.text_reads < n:
        report.add(
            "buffering",
            WARN,
            f"frames arrive in bursts: something between buffers the stream ({figures}){note}",
            BUFFER_HINT,
            spread,
        )
    else:
        report.add("buffering", PASS, f"frames arrive as they are generated ({figures}){note}", seconds=spread)


# ---------------------------------------------------------------------------------------- output


def render(report: Report, colour: bool) -> str:
    width = max(len(c.name) for c in report.checks) if report.checks else 10
    lines = [_paint(f"acs doctor · {_safe(report.base_url)}", "\x1b[1m", colour)]
    for check in report.checks:
        check = _clean(check, report.secret)
        mark = _paint(MARKS[check.status], _COLOURS[check.status], colour)
        detail = check.detail
        if check.status == SKIP:
            detail = _paint(detail, _COLOURS[SKIP], colour)
        lines.append(f"{mark} {check.name.ljust(width)}  {detail}")
        if check.hint and check.status in (WARN, FAIL):
            lines.append(" " * (width + 4) + _paint(f"hint: {check.hint}", "\x1b[33m", colour))
    counts = {s: sum(1 for c in report.checks if c.status == s) for s in (PASS, WARN, FAIL, SKIP)}
    tally = ", ".join(
        _plural(counts[s], word)
        for s, word in ((PASS, "passed"), (WARN, "warning"), (FAIL, "failed"), (SKIP, "skipped"))
        if counts[s]
    )
    if report.ok:
        summary = f"ok: {tally}"
        lines.append(_paint(summary, "\x1b[32m" if not counts[WARN] else "\x1b[33m", colour))
    else:
        first = next(c for c in report.checks if c.status == FAIL)
        lines.append(_paint(f"failed at {first.name} (exit {report.exit_status}): {tally}", "\x1b[1;31m", colour))
    return "\n".join(lines) + "\n"


def _clean(check: Check, secret: str | None = None) -> Check:
    """Server-sent text made visible, and the key's value never shown."""

    def tidy(text: str | None) -> str | None:
        if text is None:
            return None
        text = redact(text)
        if secret and len(secret.strip()) >= 4:
            text = text.replace(secret.strip(), "[ACS_API_KEY]")
        return make_visible(text)

    return Check(check.name, check.status, tidy(check.detail) or "", tidy(check.hint), check.seconds, check.exit_status)


def _paint(text: str, sgr: str, colour: bool) -> str:
    return f"{sgr}{text}\x1b[0m" if colour else text


# ---------------------------------------------------------------------------------------- helpers


def _env(name: str) -> str | None:
    for key, value in os.environ.items():
        if key.upper() == name:
            return value
    return None


def _loopback(host: str) -> bool:
    from acs_cli.api import LOOPBACK_HOSTS

    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _proxy_for(base: str) -> tuple[str, int] | None:
    """The (host, port) of the proxy from the environment that acs's requests go through, if any."""
    from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

    proxies = getproxies_environment()
    parts = urlsplit(base)
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or proxy_bypass_environment(parts.hostname or "", proxies):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    target = urlsplit(proxy)
    try:
        port = target.port or (443 if target.scheme == "https" else 80)
    except ValueError:
        port = 80
    return target.hostname or "", port


def _ca_bundle() -> str:
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile or capath:
        return ", ".join(x for x in (f"SSL_CERT_FILE={cafile}" if cafile else "", f"SSL_CERT_DIR={capath}" if capath else "") if x)
    try:
        import certifi  # noqa: F401

        return "certifi"
    except ImportError:
        return "the system's"


def _name(rdns: Any) -> str:
    """`CN=…, O=…` of a certificate subject or issuer as ssl.getpeercert gives it."""
    if not rdns:
        return ""
    fields: dict[str, str] = {}
    for rdn in rdns:
        for key, value in rdn:
            fields.setdefault(key, value)
    short = {"commonName": "CN", "organizationName": "O"}
    parts = [f"{abbr}={fields[key]}" for key, abbr in short.items() if key in fields]
    return ", ".join(parts)


def _bounded(chunks: Any, limit: int) -> Any:
    size = 0
    for chunk in chunks:
        yield chunk
        size += len(chunk)
        if size >= limit:
            return


def _tried(failures: list[tuple[str, str]]) -> str:
    return "; ".join(f"{address}: {reason}" for address, reason in failures)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _safe(url: str) -> str:
    """A URL without the user:password part."""
    parts = urlsplit(url) if "://" in url else None
    if parts is None or "@" not in parts.netloc:
        return url
    return url.replace(parts.netloc, "***@" + parts.netloc.rpartition("@")[2], 1)


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{seconds:.2f} s"


_secs = _ms


def _plural(n: int, word: str) -> str:
    if word.endswith("ed"):
        return f"{n} {word}"
    return f"{n} {word}" + ("" if n == 1 else "s")
