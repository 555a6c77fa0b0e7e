"""`acs complete`: stream a completion live on a terminal, exact in a pipe, the wire with --raw."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from acs_cli.body import ERROR_BODY_LIMIT, read_completion
from acs_cli.completion_state import CompletionState
from acs_cli.errors import AcsError
from acs_cli.options import ChatOptions, CompleteOptions, ConnectionOptions, OutputOptions, RequestOptions
from acs_cli.output import check_output_flags, make_sink
from acs_cli.request import build_body, check_finite, choices_in, decode_escapes, parse_params, read_prompt
from acs_cli.run import drive

if TYPE_CHECKING:
    from acs_cli.api import Api
    from acs_cli.outcome import Outcome
    from acs_cli.settings import ResolvedSettings
    from acs_cli.sinks import Sink
    from acs_cli.sinks.raw import RawSink
    from acs_cli.terminal import Terminal


def complete(opts: CompleteOptions, term: Terminal) -> Outcome:
    req = opts.request
    check_request(req, opts.output, opts.escapes)
    prompt = read_prompt(opts.prompt, opts.escapes, term)
    settings = resolve_settings(opts.connection, term)
    body = build_body(settings.model or "", prompt, req, settings)  # the model is filled in below
    choices = choices_in(body)
    check_output_flags(opts.output, choices)
    sink = make_sink(opts.output, term, choices=choices, logprobs=req.logprobs is not None, usage_asked=req.usage)
    return send(opts, term, settings, body, sink, choices)


def check_request(req: RequestOptions, out: OutputOptions, escapes: bool) -> None:
    """The request and output flags, before anything is read or sent (usage errors, exit 2)."""
    if out.logprobs_table and req.logprobs is None:
        req.logprobs = 5  # the table needs them
    check_output_flags(out)
    for name, value in (("--temperature", req.temperature), ("--top-p", req.top_p), ("--presence-penalty", req.presence_penalty), ("--frequency-penalty", req.frequency_penalty)):
        check_finite(name, value)
    if escapes:
        req.stop = [decode_escapes(s) for s in req.stop]
    parse_params(req.params)  # a malformed --param is a usage error before any request


def resolve_settings(connection: ConnectionOptions, term: Terminal) -> ResolvedSettings:
    """The settings for these flags, their warnings said on stderr."""
    from acs_cli.settings import load_settings

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
) -> Outcome:
    """Send the request to `path` and stream its answer into the sink (the bytes with --raw)."""
    from acs_cli.api import Api

    with Api(settings, retries=opts.connection.retries, warn=lambda text: term.message(text, "warn")) as api:
        if opts.output.raw:
            from acs_cli.sinks.raw import RawSink

            assert isinstance(sink, RawSink)
            return drive(sink, lambda outcome: _raw(api, settings, body, opts, sink, outcome, term, path), settings.model)
        return drive(sink, lambda outcome: stream_answer(api, settings, body, sink, outcome, state_class(choices), path), settings.model)


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
    import httpx

    from acs_cli.api import http_error
    from acs_cli.body import body_error

    model = body["model"] = outcome.model = settings.model or api.pick_model()
    outcome.timeline.sent = time.perf_counter()
    response = api.open_completion(body, accept_errors=True, path=path)
    kept = bytearray()  # an error body is shown whole (as curl does) and kept this far for the message
    try:
        if opts.output.include_headers:
            status_line = f"{response.http_version} {response.status_code} {response.reason_phrase}".rstrip()
            sink.head(status_line, list(response.headers.raw))
        failed = response.status_code >= 300
        try:
            for chunk in response.iter_raw():
                sink.write_bytes(chunk)
                if failed and len(kept) < ERROR_BODY_LIMIT:
                    kept += chunk[: ERROR_BODY_LIMIT - len(kept)]
        except httpx.HTTPError as exc:
            return body_error(exc, None, api.timeout)
    finally:
        response.close()
    if failed:
        return http_error(response, bytes(kept), base=api.base, model=model, has_key=api.has_key)
    if "event-stream" in response.headers.get("content-type", "") and b"[DONE]" not in sink.tail and not opts.output.quiet:
        term.message("acs: note: the stream ended without data: [DONE]", "warn")
    return None
