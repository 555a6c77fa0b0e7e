"""Wires a command together, and the one ladder that maps every failure to a message and an exit status."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from acs_cli.errors import (
    AcsError,
    ExitStatus,
    HTTPStatusError,
    IncompleteStream,
    ProtocolError,
    TimeoutError_,
    UsageError,
)
from acs_cli.render import ChoiceOrder, PipeSink, RawSink, TerminalSink, make_visible, usage_line
from acs_cli.sse import CompletionStream, SSEParser, shorten
from acs_cli.terminal import Terminal


@dataclass
class RequestOptions:
    """What the flags asked for; None (or empty) means the settings' default (profile, file, built-in)."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    n: int | None = None
    logprobs: int | None = None
    echo: bool = False
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    params: list[str] = field(default_factory=list)
    usage: bool = True


@dataclass
class OutputOptions:
    quiet: bool = False
    choice: int | None = None
    json: bool = False  # one JSON object at the end (acs_cli/jsonout.py)
    jsonl: bool = False  # one JSON line per event as it arrives
    stats: bool = False  # time to first token, decode speed and total time on the usage line
    logprobs_table: bool = False  # each token's probability and alternatives, on stderr


@dataclass
class CompleteOptions:
    prompt: str | None
    escapes: bool = False
    model: str | None = None
    base_url: str | None = None
    timeout: str | float | None = None
    profile: str | None = None
    retries: int = 2
    raw: bool = False
    include_headers: bool = False
    request: RequestOptions = field(default_factory=RequestOptions)
    output: OutputOptions = field(default_factory=OutputOptions)


def run(command: Callable[[Terminal], int], usage: str | None = None) -> int:
    """Run a command; map every failure to one message, a hint and its exit status."""
    term = Terminal.from_process()
    try:
        return command(term)
    except AcsError as exc:
        if usage and isinstance(exc, UsageError):
            term.message(usage)
        report(term, exc)
        return int(exc.status)
    except KeyboardInterrupt:
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        return _broken_pipe()
    except Exception as exc:  # a bug: say so in one line, never with a traceback (locals may hold the key)
        if os.environ.get("ACS_DEBUG"):
            raise
        term.message(f"acs: internal error: {type(exc).__name__}: {shorten(redact(str(exc)), 300)}", "error")
        term.message("hint: this is a bug in acs; rerun with ACS_DEBUG=1 for the traceback and report it", "hint")
        return int(ExitStatus.ERROR)


def report(term: Terminal, exc: AcsError) -> None:
    message = " ".join(line.strip() for line in exc.message.splitlines() if line.strip())  # one line
    term.message(f"acs: error: {make_visible(redact(message))}", "error")
    if exc.hint:
        term.message(f"hint: {redact(exc.hint)}", "hint")


def redact(text: str) -> str:
    """Whatever an error says, the key's value never reaches the screen."""
    from acs_cli.errors import redact as redact_secrets

    return redact_secrets(text)


def _broken_pipe() -> int:
    # the reader left (`| head`): end quietly; point stdout at /dev/null so the final flush is silent
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return int(ExitStatus.BROKEN_PIPE)


# ---------------------------------------------------------------------------------------- prompt


def decode_escapes(text: str) -> str:
    """`-e`: \\n, \\t and \\\\ become the characters; any other backslash stays as typed."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "nt\\":
            out.append({"n": "\n", "t": "\t", "\\": "\\"}[text[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def read_prompt(argument: str | None, escapes: bool, term: Terminal) -> str:
    """The argument, stdin, or stdin's text, a newline, then the argument."""
    if argument is not None and escapes:
        argument = decode_escapes(argument)
    stdin_text: str | None = None
    if argument == "-" or (not term.stdin_tty and term.stdin is not None):
        try:
            raw = term.stdin.buffer.read() if hasattr(term.stdin, "buffer") else term.stdin.read().encode()
        except (OSError, ValueError):
            raw = b""
        stdin_text = raw.decode("utf-8", "replace")
        # the newline `echo` adds ends the input; it is not part of the prompt
        if stdin_text.endswith("\r\n"):
            stdin_text = stdin_text[:-2]
        elif stdin_text.endswith("\n"):
            stdin_text = stdin_text[:-1]
    if argument == "-":
        argument = None
    if argument is None and stdin_text is None:
        raise UsageError(
            "no prompt: give one as an argument or pipe it on stdin",
            'acs complete "Five reasons to learn Rust:\\n1." -e   or   echo "Once upon a time" | acs complete',
        )
    if stdin_text and argument:
        prompt = f"{stdin_text}\n{argument}"
    else:
        prompt = argument if argument else (stdin_text or "")
    if not prompt.strip():
        raise UsageError("the prompt is empty", 'give some text: acs complete "Once upon a time"')
    return prompt


def parse_params(params: list[str]) -> dict[str, Any]:
    """`--param KEY=VALUE`: VALUE is JSON when it parses (top_k=40, ignore_eos=true), else a string."""
    extra: dict[str, Any] = {}
    for item in params:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UsageError(f"--param {item!r} is not KEY=VALUE", "for example --param top_k=40 --param ignore_eos=true")
        if key == "stream":
            raise UsageError("--param stream cannot be set: acs always streams", "use --raw to see the wire as it comes")
        try:
            extra[key] = json.loads(value)
        except ValueError:
            extra[key] = value
    return extra


def build_body(model: str, prompt: str, opts: RequestOptions, defaults: Any = None) -> dict[str, Any]:
    """The request: flags over the settings' defaults (profile, config file, built-in)."""
    body: dict[str, Any] = {"model": model, "prompt": prompt}

    def pick(name: str) -> Any:
        value = getattr(opts, name)
        return value if value is not None else getattr(defaults, name, None)

    optional = {
        "max_tokens": pick("max_tokens"),
        "temperature": pick("temperature"),
        "top_p": pick("top_p"),
        "seed": pick("seed"),
        "n": opts.n,
        "logprobs": opts.logprobs,
        "presence_penalty": pick("presence_penalty"),
        "frequency_penalty": pick("frequency_penalty"),
    }
    if optional["max_tokens"] is None:
        optional["max_tokens"] = 256
    body.update({k: v for k, v in optional.items() if v is not None})
    stop = opts.stop or list(getattr(defaults, "stop", ()) or ())
    if stop:
        body["stop"] = list(stop)
    if opts.echo:
        body["echo"] = True
    body["stream"] = True
    if opts.usage:
        body["stream_options"] = {"include_usage": True}
    extra = dict(getattr(defaults, "params", None) or {})
    extra.update(parse_params(opts.params))
    extra.pop("stream", None)  # acs always streams
    body.update(extra)
    return body


# ---------------------------------------------------------------------------------------- complete


def complete(opts: CompleteOptions, term: Terminal) -> int:
    check_output_flags(opts)
    prompt = read_prompt(opts.prompt, opts.escapes, term)
    if opts.escapes:
        opts.request.stop = [decode_escapes(s) for s in opts.request.stop]
    parse_params(opts.request.params)  # a malformed --param is a usage error before any request

    from acs_cli.api import Api
    from acs_cli.settings import load_settings

    settings = load_settings(api_base=opts.base_url, model=opts.model, timeout=opts.timeout, profile=opts.profile)
    for warning in settings.warnings:
        term.message(warning, "warn")
    with Api(settings, retries=opts.retries, warn=lambda text: term.message(text, "warn")) as api:
        if opts.raw:
            model = settings.model or api.pick_model()
            return _complete_raw(api, build_body(model, prompt, opts.request, settings), opts, term)
        sink, stream = _output(term, opts)
        sink.start()
        try:
            model = settings.model or api.pick_model()
            body = build_body(model, prompt, opts.request, settings)
            sink.sent(model)
            response = api.open_completion(body)
            try:
                verdict = _pump_response(response, stream, sink, settings.timeout, opts.request.n or 1)
            finally:
                response.close()  # an unread rest closes the connection: the server stops generating
        except KeyboardInterrupt:
            _finish(sink, stream, term, opts, interrupted=True)
            return int(ExitStatus.INTERRUPTED)
        except BaseException as exc:
            sink.close()
            sink.conclude(stream, exc, False)  # --json/--jsonl report a failure before any answer too
            raise
        expected = opts.request.n or 1
        return _conclude(sink, stream, term, opts, verdict or stream.end_of_stream(expected=expected))


def _text_sink(term: Terminal, opts: CompleteOptions) -> PipeSink:
    order = ChoiceOrder(expected=opts.request.n or 1, only=opts.output.choice)
    if term.stdout_tty:
        return TerminalSink(term, order, term.stdout_colour)
    return PipeSink(term.stdout, order)


def check_output_flags(opts: CompleteOptions) -> None:
    """--json, --jsonl and --raw exclude each other; --logprobs-table alone asks for --logprobs 5."""
    out = opts.output
    chosen = [flag for flag, on in (("--json", out.json), ("--jsonl", out.jsonl), ("--raw", opts.raw)) if on]
    if len(chosen) > 1:
        raise UsageError(f"{chosen[0]} and {chosen[1]} cannot be used together", "choose one output: the text, --json, --jsonl or --raw")
    if opts.raw and (out.stats or out.logprobs_table):
        flag = "--stats" if out.stats else "--logprobs-table"
        raise UsageError(
            f"{flag} cannot be used with --raw, which prints the wire only",
            f"drop --raw, or capture and replay: acs complete --raw … > FILE && acs replay FILE {flag}",
        )
    if out.logprobs_table and opts.request.logprobs is None:
        opts.request.logprobs = 5


def _output(term: Terminal, opts: CompleteOptions) -> tuple[PipeSink, CompletionStream]:
    """The sink and the stream: the plain ones unless --json, --jsonl, --stats or the logprobs view
    asks for more (acs_cli/timing.py), so the default path does no extra work per frame."""
    out = opts.output
    if out.json or out.jsonl or out.stats or out.logprobs_table or (opts.request.logprobs is not None and term.stdout_colour):
        from acs_cli.timing import extended_output

        return extended_output(term, opts)  # type: ignore[return-value]
    return _text_sink(term, opts), CompletionStream()


def _finish(
    sink: PipeSink, stream: CompletionStream, term: Terminal, opts: CompleteOptions, interrupted: bool, error: Exception | None = None
) -> None:
    sink.finish(stream)
    if not opts.output.quiet:
        term.message(usage_line(stream, interrupted=interrupted) + sink.summary(stream), "dim")
    sink.conclude(stream, error, interrupted)


def _conclude(
    sink: PipeSink, stream: CompletionStream, term: Terminal, opts: CompleteOptions, verdict: Exception | None
) -> int:
    _finish(sink, stream, term, opts, interrupted=False, error=verdict)
    if verdict is not None:
        raise verdict
    return int(ExitStatus.OK)


def _pump_response(
    response: Any, stream: CompletionStream, sink: PipeSink, timeout: float, expected: int = 1
) -> Exception | None:
    """Feed the response body through the parser into the sink; return the transport's verdict."""
    import httpx

    media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    chunks = response.iter_raw()
    try:
        if media != "text/event-stream":
            first = next(chunks, b"")
            kind = sniff_body(media, first)
            if kind == "json":
                body = first + b"".join(chunks)
                _feed_document(body, stream, sink)
                return None
            if kind == "other":
                return ProtocolError(
                    f"the server answered 200 with {media or 'no content type'}, not an event stream: {shorten(first[:200].decode('utf-8', 'replace'))}",
                    "check that ACS_API_BASE points at an OpenAI-compatible server, not a web page or a proxy login",
                )
            chunks = prepend(first, chunks)
        pump(chunks, stream, sink)
    except httpx.TimeoutException:
        phase = "between two frames" if stream.frames else "waiting for the first token"
        return TimeoutError_(
            f"no data from the server for {timeout:g} s ({phase})",
            "the text so far is kept; raise --timeout or ACS_TIMEOUT if the server is just slow",
        )
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        cut = stream.end_of_stream(cut=True, expected=expected)
        if cut is None:
            return None
        return IncompleteStream(
            f"incomplete stream: the connection closed mid-stream ({shorten(str(exc), 120)})",
            "the text so far is kept on stdout; retry, and check for a proxy or server that cuts long responses",
        )
    return None


def pump(chunks: Iterable[bytes], stream: CompletionStream, sink: PipeSink) -> None:
    """Bytes to events to deltas to the sink, one network read (or capture frame) at a time."""
    parser = SSEParser()
    for chunk in chunks:
        events = parser.feed(chunk)
        if events:
            sink.write(stream.feed(events), stream)
            if stream.done or stream.failure is not None:
                break
    parser.close()


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


def prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    """The first read put back in front of the rest."""
    if first:
        yield first
    yield from rest


def parse_document(body: bytes, stream: CompletionStream) -> list[tuple[int, str]]:
    """A whole JSON body (a 200 answer that is not a stream) into the stream's state."""
    try:
        payload = json.loads(body)
    except ValueError:
        stream.failure = ProtocolError(
            f"the server answered 200 with a body that is neither an event stream nor JSON: {shorten(body[:200].decode('utf-8', 'replace'))}",
            "check that ACS_API_BASE points at an OpenAI-compatible server",
        )
        return []
    return stream.feed_document(payload)


def _feed_document(body: bytes, stream: CompletionStream, sink: PipeSink) -> None:
    deltas = parse_document(body, stream)
    if stream.failure is None:
        sink.write(deltas, stream)


def _complete_raw(api: Any, body: dict[str, Any], opts: CompleteOptions, term: Terminal) -> int:
    """--raw: the body exactly as it came off the socket, flushed per read; HTTP errors still set the status."""
    import httpx

    from acs_cli.api import http_error

    sink = RawSink(term.stdout)
    response = api.open_completion(body, accept_errors=True)
    kept = bytearray()
    tail = b""
    try:
        if opts.include_headers:
            status_line = f"{response.http_version} {response.status_code} {response.reason_phrase}".rstrip()
            sink.head(status_line, list(response.headers.raw))
        failed = response.status_code >= 300
        try:
            for chunk in response.iter_raw():
                sink.write_bytes(chunk)
                if failed and len(kept) < 65536:
                    kept += chunk[: 65536 - len(kept)]
                tail = (tail + chunk[-64:])[-64:]  # never copy a whole read
        except KeyboardInterrupt:
            return int(ExitStatus.INTERRUPTED)
        except httpx.TimeoutException:
            raise TimeoutError_(
                f"no data from the server for {api.timeout:g} s",
                "raise --timeout or ACS_TIMEOUT if the server is just slow",
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise IncompleteStream(
                f"incomplete stream: the connection closed mid-body ({shorten(str(exc), 120)})",
                "the bytes received are on stdout; retry, and check for a proxy or server that cuts long responses",
            ) from None
    finally:
        response.close()
    if failed:
        error: HTTPStatusError = http_error(response, bytes(kept), base=api.base, model=body.get("model"), has_key=api.has_key)
        raise error
    media = response.headers.get("content-type", "")
    if "event-stream" in media and b"[DONE]" not in tail and not opts.output.quiet:
        term.message("acs: note: the stream ended without data: [DONE]", "warn")
    return int(ExitStatus.OK)


# ---------------------------------------------------------------------------------------- models


def list_models(
    base_url: str | None, timeout: str | None, retries: int, as_json: bool, term: Terminal, profile: str | None = None
) -> int:
    from acs_cli.api import Api
    from acs_cli.settings import load_settings

    settings = load_settings(api_base=base_url, timeout=timeout, profile=profile)
    for warning in settings.warnings:
        term.message(warning, "warn")
    with Api(settings, retries=retries, warn=lambda text: term.message(text, "warn")) as api:
        if as_json:
            payload = api.get_json("models")
            term.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False).encode() + b"\n")
            term.stdout.flush()
            return int(ExitStatus.OK)
        models = api.list_models()
    if not term.stdout_tty:
        lines = "".join(f"{m.get('id')}\n" for m in models if m.get("id") is not None)
        term.stdout.write(lines.encode())
        term.stdout.flush()
        return int(ExitStatus.OK)
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold" if term.colour else None, pad_edge=False)
    table.add_column("id")
    table.add_column("owner")
    table.add_column("max_model_len", justify="right")
    for m in models:
        length = m.get("max_model_len")
        table.add_row(
            make_visible(str(m.get("id", ""))),
            make_visible(str(m.get("owned_by") or "")),
            str(length) if isinstance(length, int) else "",
        )
    Console(file=sys.stdout, no_color=not term.colour, highlight=False).print(table)
    if not models:
        term.message(f"the server at {settings.api_base} lists no models", "dim")
    return int(ExitStatus.OK)


# ---------------------------------------------------------------------------------------- config


def config_show(term: Terminal, **flags: Any) -> int:
    """Every effective setting with its source; the key never shows any of its characters."""
    from acs_cli.settings import config_rows, validated_settings

    given = {k: v for k, v in flags.items() if v is not None}
    settings = validated_settings(given)
    for warning in settings.warnings:
        term.message(warning, "warn")
    rows = config_rows(settings)
    width = max(len(r[0]) for r in rows)
    text = "".join(f"{n:<{width}}  {v}" + (f"  ({src})" if src else "") + "\n" for n, v, src in rows)
    term.stdout.write(make_visible(text).encode())
    term.stdout.flush()
    return int(ExitStatus.OK)


# ---------------------------------------------------------------------------------------- replay


def read_capture(source: str | None, term: Terminal) -> bytes:
    if source is None:
        from importlib.resources import files

        return files("acs_cli").joinpath("data/rust.sse").read_bytes()
    if source == "-":
        return term.stdin.buffer.read() if hasattr(term.stdin, "buffer") else term.stdin.read().encode()
    try:
        with open(source, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror}", "give the path of a capture made with `acs complete --raw > FILE`") from None


def split_capture(data: bytes) -> tuple[int | None, bytes, bytes]:
    """(status, head, body) of a capture; a `--raw -i` capture starts with its status line."""
    if not data.startswith(b"HTTP/"):
        return None, b"", data
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, body = data.partition(sep)
        if found:
            break
    else:
        return None, b"", data
    try:
        status = int(head.split(None, 2)[1])
    except (IndexError, ValueError):
        status = None
    return status, head, body


def frames_of(body: bytes) -> Iterator[bytes]:
    """The body cut after each blank line, so frames can be paced one by one."""
    import re

    start = 0
    for match in re.finditer(rb"(?:\r\n|\r|\n)(?:\r\n|\r|\n)", body):
        yield body[start : match.end()]
        start = match.end()
    if start < len(body):
        yield body[start:]


def replay(source: str | None, delay: float | None, opts: CompleteOptions, term: Terminal) -> int:
    check_output_flags(opts)
    data = read_capture(source, term)
    if delay is None:
        delay = 0.04 if source is None else 0.0  # the bundled sample is paced like a real model
    status, head, body = split_capture(data)
    sink, stream = _output(term, opts)
    if status is not None and not 200 <= status < 300:
        from acs_cli.api import error_fields

        message, _ = error_fields(body)
        error = HTTPStatusError(
            status, f"the capture holds an HTTP {status} answer: {message or 'no message'}", "this capture is an error response, not a stream"
        )
        sink.conclude(stream, error, False)
        raise error
    sink.start()
    chunks: Iterable[bytes] = _paced(frames_of(body), delay) if delay > 0 else [body]
    try:
        if (head and b"application/json" in head.lower()) or sniff_body("", body[:64]) == "json":
            _feed_document(body, stream, sink)
        else:
            pump(chunks, stream, sink)
    except KeyboardInterrupt:
        _finish(sink, stream, term, opts, interrupted=True)
        return int(ExitStatus.INTERRUPTED)
    except BaseException:
        sink.close()
        raise
    return _conclude(sink, stream, term, opts, stream.end_of_stream(expected=opts.request.n or 1))


def _paced(frames: Iterator[bytes], delay: float) -> Iterator[bytes]:
    first = True
    for frame in frames:
        if not first:
            time.sleep(delay)
        first = False
        yield frame
