"""`acs complete`: stream a completion live on a terminal, exact in a pipe, the wire with --raw."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx

from acs_cli.api import Api
from acs_cli.body import ERROR_BODY_LIMIT, body_error, read_completion, silence
from acs_cli.completion_state import CompletionState
from acs_cli.errors import AcsError
from acs_cli.options import ChatOptions, CompleteOptions, ConnectionOptions, OutputOptions, RequestOptions
from acs_cli.output import check_output_flags, make_sink
from acs_cli.request import build_body, check_request_flags, check_seconds, check_text, choices_in, decode_escapes, parse_params, read_prompt
from acs_cli.run import MaxTime, before_request, drive
from acs_cli.settings import ResolvedSettings, load_settings
from acs_cli.sinks.raw import RawSink
from acs_cli.sinks.terminal import retry_notice
from acs_cli.text import make_visible
from acs_cli.transport import content_encoded, wire_bytes

if TYPE_CHECKING:
    from acs_cli.outcome import Outcome
    from acs_cli.sinks import Sink
    from acs_cli.terminal import Terminal


def complete(opts: CompleteOptions, term: Terminal) -> Outcome:
    req = opts.request
    limit = check_request(req, opts.output, opts.connection, opts.escapes)
    with before_request(limit):  # a prompt on a stdin that never ends, a slow api_key_command
        prompt = read_prompt(opts.prompt, opts.escapes, term)
        settings = resolve_settings(opts.connection, term)
    body = build_body(settings.model or "", prompt, req, settings)  # the model is filled in below
    choices = choices_in(body)
    check_output_flags(opts.output, choices)
    sink = make_sink(opts.output, term, choices=choices, logprobs=req.logprobs is not None, usage_asked=req.usage)
    return send(opts, term, settings, body, sink, choices, limit=limit)


def check_request(req: RequestOptions, out: OutputOptions, connection: ConnectionOptions, escapes: bool) -> MaxTime | None:
    """The request, output and connection flags, before anything is read or sent (usage errors,
    exit 2); the --max-time limit, counted from here."""
    if out.logprobs_table and req.logprobs is None:
        req.logprobs = 5  # the table needs them
    check_output_flags(out)
    check_request_flags(req)
    if connection.model is not None:
        check_text("--model", connection.model)
    check_seconds("--max-time", connection.max_time)
    if escapes:
        req.stop = [decode_escapes(s) for s in req.stop]
    parse_params(req.params)  # a malformed --param is a usage error before any request
    return MaxTime(connection.max_time) if connection.max_time else None


def resolve_settings(connection: ConnectionOptions, term: Terminal) -> ResolvedSettings:
    """The settings for these flags, their warnings said on stderr."""
    settings = load_settings(**connection.settings_flags())
    for warning in settings.warnings:
        term.message(warning, "warn")
    return settings


def send(
    opts: CompleteOptions | ChatOptions,
    term: Terminal,
    settings: ResolvedSettings,
    body: dict[str, Any],
    sink: Sink,
    choices: int,
    *,
    path: str = "completions",
    state_class: type[CompletionState] = CompletionState,
    limit: MaxTime | None = None,
) -> Outcome:
    """Send the request to `path` and stream its answer into the sink (the bytes with --raw)."""
    with Api(settings, retries=opts.connection.retries, warn=lambda text: term.message(text, "warn"), on_retry=retry_notice(term)) as api:
        if opts.output.raw:
            assert isinstance(sink, RawSink)
            return drive(sink, lambda outcome: _raw(api, settings, body, opts, sink, outcome, term, path), settings.model, limit)
        return drive(sink, lambda outcome: stream_answer(api, settings, body, sink, outcome, state_class(choices), path), settings.model, limit)


def stream_answer(api: Api, settings: ResolvedSettings, body: dict[str, Any], sink: Sink, outcome: Outcome, state: CompletionState, path: str) -> AcsError | None:
    """Send the request and read its answer through `state` into the sink; the verdict."""
    body["model"] = outcome.model = settings.model or api.pick_model()
    outcome.timeline.sent = time.perf_counter()
    response = api.open_completion(body, path=path)
    try:
        outcome.timeline.headers = time.perf_counter()
        outcome.state = state
        return read_completion(response, state, sink, outcome.timeline, settings.timeout)
    finally:
        response.close()  # an unread rest closes the connection: the server stops generating


def _raw(
    api: Api, settings: ResolvedSettings, body: dict[str, Any], opts: CompleteOptions | ChatOptions, sink: RawSink, outcome: Outcome, term: Terminal, path: str
) -> AcsError | None:
    """--raw: the body exactly as it came off the socket, flushed per read; HTTP errors still set the status."""
    model = body["model"] = outcome.model = settings.model or api.pick_model()
    outcome.timeline.sent = time.perf_counter()
    response = api.open_completion(body, accept_errors=True, path=path)
    try:
        if opts.output.include_headers:
            status_line = f"{response.http_version} {response.status_code} {response.reason_phrase}".rstrip()
            sink.head(status_line, list(response.headers.raw))
        failed = response.status_code >= 300
        if content_encoded(response) and not opts.output.quiet:
            coding = make_visible(response.headers.get("content-encoding", "compressed"))  # the server's words
            term.message(f"acs: note: the server sent the body {coding}-encoded; --raw shows the bytes as sent (acs decodes them otherwise)", "warn")
        try:
            kept = _copy_raw(response, sink, failed, api.timeout)
        except httpx.HTTPError as exc:
            return body_error(exc, None, api.timeout)
    finally:
        response.close()
    if failed:
        return api.status_error(response, kept, model)
    if "event-stream" in response.headers.get("content-type", "") and b"[DONE]" not in sink.tail and not opts.output.quiet and not content_encoded(response):
        term.message("acs: note: the stream ended without data: [DONE]", "warn")
    return None


def _copy_raw(response: Any, sink: RawSink, failed: bool, timeout: float) -> bytes:
    """Every read to the sink as it comes; an error body is shown whole (as curl does) and kept up
    to ERROR_BODY_LIMIT for the message. In an event stream that is not content-encoded, a read
    holding a `data:` field is what counts as data for --timeout: a server that only pings, or
    trickles a frame byte by byte, is stopped as it would be without --raw."""
    kept = bytearray()
    clock = time.perf_counter
    watch = not failed and "event-stream" in response.headers.get("content-type", "") and response.headers.get("content-encoding", "identity") == "identity"
    deadline = clock() + timeout if watch and timeout else None
    for chunk in wire_bytes(response):
        sink.write_bytes(chunk)
        if failed and len(kept) < ERROR_BODY_LIMIT:
            kept += chunk[: ERROR_BODY_LIMIT - len(kept)]
        if deadline is not None:
            if b"data:" in chunk:
                deadline = clock() + timeout
            elif clock() > deadline:
                raise silence(None, timeout, "the bytes received are on stdout", stalled=True)
    return bytes(kept)
