"""Pure judgements: what the probe completion's answer (a `Probe`, which a test can build by hand),
a certificate and a model list mean, as checks. No I/O, no clock: every time is in the record.

The probe checks, in order: completion (the answer's status and body kind), stream (it parsed,
was not cut or silent, and ended within the probe's limits), finish reason, [DONE], usage, first
token and buffering. A failed completion or stream skips the checks after it; a probe stopped at
its own limit (a server that ignores max_tokens) cannot judge the end of the stream (finish
reason, [DONE], usage) but still judges its pace.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from acs_cli.completion_state import ChoiceState
from acs_cli.errors import AcsError, ExitStatus, IncompleteStream, TimedOut
from acs_cli.secrets import mask_url
from acs_cli.sinks.summary import usage_figures
from acs_cli.text import shorten

from .report import FAIL, PROBE_NAMES, Check, failed, failed_with, ms, passed, plural, skip_all, skipped, warned

EXPIRY_WARN_DAYS = 14
PREVIEW_CHARS = 48  # of the first choice's text, in the stream check's detail
# buffering: judged only on at least this many text frames, arriving over at least this long
MIN_FRAMES = 4
MIN_SECONDS = 0.25
CLUMP_FRACTION = 0.05  # text frames spread over at most this share of the time to the last one
BUFFER_HINT = (
    "turn response buffering off for this location: nginx `proxy_buffering off;` (or have the "
    "upstream send the header `X-Accel-Buffering: no`); for other proxies, load balancers and CDNs "
    "disable response buffering or compression for text/event-stream"
)
CUT_HINT = "the server or a proxy cut the stream; check the server's log and any proxy's timeouts"
MAX_TOKENS_HINT = "the server (or a proxy that rewrites the request) ignores max_tokens; `acs complete` reads until the server stops: check the server's length limits"

# why the probe stopped reading before the stream ended (Probe.limit)
FRAMES, BYTES, SECONDS = "frames", "bytes", "seconds"


@dataclass
class Probe:
    """What the probe's answer looked like: all the judgements read. Times are seconds since the
    request was sent; `text_times` holds, per frame that carried text, its read's arrival."""

    path: str = "completions"
    model: str = "m"
    max_tokens: int = 16
    request_error: AcsError | None = None  # no 2xx answer: HTTP error, connect failure, timeout
    status: int = 200
    media: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    head_seconds: float = 0.0
    kind: str = "sse"  # what the body holds: sse, json (a whole completion) or other
    first_bytes: str = ""  # the start of a body that is not a completion
    reads: int = 0
    body_bytes: int = 0
    frames: int = 0
    text_times: list[float] = field(default_factory=list)
    text_reads: int = 0  # reads that brought text
    preview: str = ""  # the start of the first choice's text
    last_time: float = 0.0
    read_error: AcsError | None = None  # reading the body failed: silence past --timeout, a cut
    failure: AcsError | None = None  # the stream's own failure: an error frame, a frame not JSON
    verdict: AcsError | None = None  # the parser state's verdict once the body ended
    done: bool = False
    choices: list[ChoiceState] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    limit: str | None = None  # FRAMES, BYTES or SECONDS: the probe stopped reading there
    limit_value: float = 0.0  # the limit it reached (frames, bytes or seconds)
    role_only: bool | None = None  # chat: whether the first frame held only the role (None: not chat)


# ---------------------------------------------------------------------------------------- probe


def judge_probe(p: Probe) -> list[Check]:
    """Every probe check, in order, with the ones that cannot be judged skipped."""
    completion = judge_completion(p)
    if completion.status == FAIL:
        reason = "the answer is not a completion" if p.request_error is None else "the completion request failed"
        return [completion, *skip_all(PROBE_NAMES[1:], reason)]
    stream = judge_stream(p)
    if stream.status == FAIL:
        return [completion, stream, *skip_all(PROBE_NAMES[2:], "the stream failed")]
    if p.limit is not None:
        end = skip_all(("finish reason", "[DONE]", "usage"), "the probe stopped reading before the end")
    else:
        end = [judge_finish(p), judge_done(p), judge_usage(p)]
    first = [judge_first_frame(p)] if p.role_only is not None else []
    return [completion, stream, *first, *end, judge_first_token(p), judge_buffering(p)]


def judge_first_frame(p: Probe) -> Check:
    """Chat only, informational: servers open the answer with a frame that carries only the role;
    acs takes it as the answer's start, never as a token (some clients count it as the first)."""
    if p.role_only:
        return passed("first frame", 'the first frame carries only the role ({"role": "assistant"}): the answer starts, no token yet')
    return passed("first frame", "the first frame already carries the answer (no role-only frame first)")


def judge_completion(p: Probe) -> Check:
    if p.request_error is not None:
        return failed_with("completion", p.request_error, p.head_seconds)
    answered = f"POST /{p.path} answered {p.status}"
    media = p.media or "no content type"
    if p.kind == "other":
        return failed(
            "completion",
            f"{answered} with {media}, not an event stream: {shorten(p.first_bytes, 120)}",
            "check that ACS_BASE_URL points at an OpenAI-compatible server, not a web page or a proxy login",
            ExitStatus.PROTOCOL,
            p.head_seconds,
        )
    if p.kind == "json":
        return warned(
            "completion",
            f"{answered} with {p.media or 'JSON'} in {ms(p.head_seconds)}: a whole completion, not an event stream",
            "the server or a proxy ignores \"stream\": true; acs shows the text, but only at the end (check the server's or proxy's streaming settings)",
            p.head_seconds,
        )
    if p.media != "text/event-stream":
        return warned(
            "completion",
            f"{answered} in {ms(p.head_seconds)} with {media}, but the body is an event stream",
            "have the server (or proxy) send Content-Type: text/event-stream; some proxies buffer anything else",
            p.head_seconds,
        )
    return passed("completion", f"{answered} text/event-stream in {ms(p.head_seconds)} ({p.model}, max_tokens {p.max_tokens})", p.head_seconds)


def received(p: Probe) -> str:
    """`12 frames in 9 reads over 1.20 s`, or `a JSON completion`."""
    if p.kind == "json":
        return "a JSON completion"
    return f"{plural(p.frames, 'frame')} in {plural(p.reads, 'read')} over {ms(p.last_time)}"


def judge_stream(p: Probe) -> Check:
    what = received(p)
    if p.failure is not None:
        return failed("stream", f"{p.failure.message} (after {what})", p.failure.hint, p.failure.status, p.last_time)
    error = p.read_error
    if error is not None:
        if isinstance(error, TimedOut):
            hint: str | None = "the server may be overloaded or stuck; raise --timeout or ACS_TIMEOUT if it is just slow"
        elif isinstance(error, IncompleteStream):
            hint = CUT_HINT
        else:
            hint = error.hint
        return failed("stream", f"{error.message}, after {what}", hint, error.status, p.last_time)
    if p.limit is not None:
        return _judge_limit(p, what)
    if not p.preview:
        return passed("stream", f"{what}, no text", p.last_time)
    return passed("stream", f'{what}: "{shorten(p.preview, PREVIEW_CHARS)}"', p.last_time)


def _judge_limit(p: Probe, what: str) -> Check:
    texts = len(p.text_times)
    if p.limit == FRAMES:
        detail = f"the server sent more than max_tokens: {plural(p.frames, 'frame')} ({texts} with text) for max_tokens {p.max_tokens}"
        hint = MAX_TOKENS_HINT
    elif p.limit == BYTES:
        detail = f"the server sent more than {int(p.limit_value) // 1024} KiB for max_tokens {p.max_tokens} ({what})"
        hint = MAX_TOKENS_HINT
    else:
        detail = f"the stream was still going after {ms(p.limit_value)} ({plural(p.frames, 'frame')}, {texts} with text)"
        hint = "the server ignores max_tokens or generates very slowly; try a smaller --max-tokens"
    return warned("stream", f"{detail}; the probe stopped reading there", hint, p.last_time)


def judge_finish(p: Probe) -> Check:
    verdict = p.verdict
    if verdict is None:
        reasons = ", ".join(dict.fromkeys(str(c.finish_reason) for c in p.choices))
        return passed("finish reason", f"finish: {reasons}")
    incomplete = ExitStatus.INCOMPLETE
    if any(c.finish_reason in ("abort", "error") for c in p.choices):
        return failed("finish reason", verdict.message, verdict.hint, incomplete)
    if not p.choices:
        return failed("finish reason", "the stream ended before any completion frame arrived", CUT_HINT, incomplete)
    if p.done:
        return failed(
            "finish reason",
            "data: [DONE] came before every choice had a finish reason: `acs complete` calls that incomplete (exit 10)",
            "the server stopped the generation early (llama-cpp-python does when another request takes its slot); check the server's log",
            incomplete,
        )
    return failed("finish reason", "no choice had a finish reason when the body ended", CUT_HINT, incomplete)


def judge_done(p: Probe) -> Check:
    if p.kind == "json":
        return skipped("[DONE]", "not an event stream")
    if p.done:
        return passed("[DONE]", f"data: [DONE] after {ms(p.last_time)}", p.last_time)
    if p.verdict is None:
        return warned(
            "[DONE]",
            "the stream ended without data: [DONE] (every choice had its finish reason, so acs accepts it)",
            "the server or a proxy drops the last frame; acs is fine with it, other clients may wait for it",
        )
    return failed(
        "[DONE]", "the stream ended without data: [DONE] and without a finish reason: it is incomplete", CUT_HINT, ExitStatus.INCOMPLETE
    )


def judge_usage(p: Probe) -> Check:
    if not p.usage:
        return warned(
            "usage",
            "no usage chunk arrived: the server sends no usage; `acs` will say so",
            "vLLM and OpenAI send it for stream_options.include_usage; an older server or a proxy may drop it",
        )
    figures = usage_figures(p.usage)
    tokens = p.usage.get("completion_tokens")
    asked = p.max_tokens * max(1, len(p.choices))
    if type(tokens) is int and tokens > asked:
        return warned("usage", f"{figures}: more completion tokens than the max_tokens {asked} asked for", MAX_TOKENS_HINT)
    return passed("usage", figures)


def judge_first_token(p: Probe) -> Check:
    if p.kind == "json":
        return passed("first token", f"the whole completion after {ms(p.last_time)} (not streamed)", p.last_time)
    if p.text_times:
        first = p.text_times[0]
        return passed("first token", f"first text after {ms(first)} (headers after {ms(p.head_seconds)})", first)
    return warned("first token", f"no text arrived ({plural(p.frames, 'frame')})", "the model generated nothing for the probe prompt; try a larger --max-tokens")


def judge_buffering(p: Probe) -> Check:
    """Frames spread over the generation, or all at once at the end: the mark of a buffering proxy.

    Buffered means: at least MIN_FRAMES text frames, the answer took at least MIN_SECONDS, the
    text frames arrived within CLUMP_FRACTION of the time from the request to the last of them,
    and in few reads (on average 4 or more frames per read, at most 2 reads for a short probe).
    A server that streams sends each frame as it is generated, so they arrive in separate reads.
    Frames in few reads but spread out are bursts: something between flushes now and then.
    """
    if p.kind == "json":
        return skipped("buffering", "not an event stream")
    note = "; the response carries X-Accel-Buffering: no" if p.headers.get("x-accel-buffering", "").strip().lower() == "no" else ""
    times = p.text_times
    n = len(times)
    if n < MIN_FRAMES:
        return passed("buffering", f"not enough frames to judge ({plural(n, 'text frame')}){note}")
    total = times[-1]
    spread = times[-1] - times[0]
    if total < MIN_SECONDS:
        return passed(
            "buffering", f"not enough time to judge: {plural(n, 'text frame')} all within {ms(total)} of the request{note}; raise --max-tokens to judge"
        )
    clumped = spread <= CLUMP_FRACTION * total
    bursty = p.text_reads <= max(2, n // 4)
    figures = f"{plural(n, 'text frame')} in {plural(p.text_reads, 'read')}, spread over {ms(spread)} of {ms(total)}"
    if clumped and bursty:
        hint = BUFFER_HINT
        if note:
            hint = "the header X-Accel-Buffering: no is there, yet something still buffers: a proxy that ignores it (a load balancer, a CDN, nginx with proxy_ignore_headers); " + hint
        return warned("buffering", f"frames arrive all at once: a proxy is buffering the stream ({figures}, all at the end){note}", hint, spread)
    if bursty and p.text_reads < n:
        return warned("buffering", f"frames arrive in bursts: something between buffers the stream ({figures}){note}", BUFFER_HINT, spread)
    return passed("buffering", f"frames arrive as they are generated ({figures}){note}", spread)


# ---------------------------------------------------------------------------------------- before the probe


def judge_model(ids: list[str], configured: str | None, base: str) -> tuple[Check, str | None]:
    """The model check from the ids GET /models listed, and the model to probe (None: none)."""
    listed = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
    if configured:
        if configured in ids:
            return passed("model", f"{configured} is served ({plural(len(ids), 'model')})"), configured
        hint = "pick one of the listed models with --model NAME or ACS_MODEL"
        return failed("model", f"{configured} is not served; the server lists {listed or 'no models'}", hint, ExitStatus.CONFIG), None
    if len(ids) == 1:
        return passed("model", f"no model configured; the server's only model {ids[0]} will be used"), ids[0]
    if not ids:
        detail = f"no model configured and the server at {mask_url(base)} lists none"
        return failed("model", detail, "pass --model NAME or set ACS_MODEL", ExitStatus.CONFIG), None
    return failed("model", f"no model configured and the server serves {len(ids)}: {listed}", "pick one with --model NAME or ACS_MODEL", ExitStatus.CONFIG), None


def judge_certificate(cert: dict[str, Any], version: str, seconds: float, now: float) -> Check:
    """The TLS check from the peer certificate (as ssl.getpeercert gives it) at time `now`."""
    detail = f"{version} in {ms(seconds)}; certificate {_name(cert.get('subject')) or '(no subject)'}, issued by {_name(cert.get('issuer')) or '(unknown)'}"
    not_after = cert.get("notAfter")
    days: int | None = None
    if not_after:
        try:
            expires: float | None = ssl.cert_time_to_seconds(str(not_after))
        except ValueError:
            expires = None
        if expires is not None:
            days = int((expires - now) // 86400)
            detail += f", expires {time.strftime('%Y-%m-%d', time.gmtime(expires))} (in {days} days)"
    if days is not None and days < EXPIRY_WARN_DAYS:
        return warned("TLS", detail, f"the certificate expires in {days} days: renew it", seconds)
    return passed("TLS", detail, seconds)


def _name(rdns: Any) -> str:
    """`CN=…, O=…` of a certificate subject or issuer as ssl.getpeercert gives it."""
    fields: dict[str, str] = {}
    for rdn in rdns or ():
        for key, value in rdn:
            fields.setdefault(key, value)
    short = {"commonName": "CN", "organizationName": "O"}
    return ", ".join(f"{abbr}={fields[key]}" for key, abbr in short.items() if key in fields)
