"""The request a command sends: the prompt (argument, stdin or both), `-e` escapes, `--param`
values, and the body (flags over the settings' defaults)."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from acs_cli.errors import UsageError
from acs_cli.options import DEFAULT_MAX_TOKENS
from acs_cli.text import shorten

if TYPE_CHECKING:
    from acs_cli.options import RequestOptions
    from acs_cli.terminal import Terminal


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


def check_text(name: str, value: str) -> None:
    """Arguments are sent as they were typed, so they must be text: bytes that are not UTF-8 reach
    Python as surrogate escapes (U+DC80-U+DCFF), which no JSON request can carry. acs refuses
    them (a usage error) rather than send something else than what was typed; stdin, a stream like
    the server's, is decoded leniently instead (undecodable bytes become U+FFFD)."""
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        what = f"byte 0x{ord(bad) - 0xDC00:02x}" if "\udc80" <= bad <= "\udcff" else f"U+{ord(bad):04X}"
        raise UsageError(
            f"{name} is not valid UTF-8 text ({what} at character {exc.start + 1})",
            "acs sends arguments as UTF-8: convert the text first (iconv -f latin1 -t utf-8), or pipe a prompt on stdin, where undecodable bytes become U+FFFD",
        ) from None


def read_prompt(argument: str | None, escapes: bool, term: Terminal, command: str = "complete") -> str:
    """The argument, stdin, or stdin's text, a newline, then the argument."""
    if argument is not None:
        check_text("the prompt", argument)
    if argument is not None and escapes:
        argument = decode_escapes(argument)
    stdin_text: str | None = None
    if argument == "-" or (not term.stdin_tty and term.stdin is not None):
        stdin_text = term.read_stdin().decode("utf-8", "replace")
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
            f'acs {command} "Five reasons to learn Rust:\\n1." -e   or   echo "Once upon a time" | acs {command}',
        )
    if stdin_text and argument:
        prompt = f"{stdin_text}\n{argument}"
    else:
        prompt = argument if argument else (stdin_text or "")
    if not prompt.strip():
        raise UsageError("the prompt is empty", f'give some text: acs {command} "Once upon a time"')
    return prompt


def _no_nan(value: Any) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise ValueError("NaN and Infinity are not JSON")
    return value


def parse_params(params: list[str]) -> dict[str, Any]:
    """`--param KEY=VALUE`: VALUE is JSON when it parses (top_k=40, ignore_eos=true), else a
    string. NaN and Infinity are refused: JSON has no such values, so no server could read them."""
    extra: dict[str, Any] = {}
    for item in params:
        check_text("--param", item)
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UsageError(f"--param {item!r} is not KEY=VALUE", "for example --param top_k=40 --param ignore_eos=true")
        if key == "stream":
            raise UsageError("--param stream cannot be set: acs always streams", "use --raw to see the wire as it comes")
        try:
            extra[key] = json.loads(value, parse_constant=_no_nan, parse_float=_finite_float)
        except ValueError as exc:
            if "NaN and Infinity" in str(exc):
                raise UsageError(f"--param {key}: {shorten(value, 40)} is not a number JSON can carry", "give a finite number") from None
            if "digits" in str(exc):  # past Python's 4300 digits: no server would read it either
                raise UsageError(f"--param {key}: the number is too long ({len(value)} characters)", "give a number of at most 4300 digits") from None
            extra[key] = value
        except RecursionError:
            raise UsageError(f"--param {key}: the value is nested too deeply", "give a simpler JSON value") from None
    return extra


def check_finite(name: str, value: float | None) -> None:
    """Numeric flags: NaN and Infinity (also 1e999, which reads as Infinity) cannot go into a JSON
    request, nor be waited for."""
    if value is not None and not math.isfinite(value):
        raise UsageError(f"{name} {value} is not a finite number", f"give {name} a finite number")


def check_seconds(name: str, value: float | None, *, zero: bool = False, most: float | None = None) -> None:
    """A flag that is a number of seconds: finite, above 0 (or at 0 when `zero` is allowed), and
    not above `most`."""
    if value is None:
        return
    check_finite(name, value)
    if value < 0 or (value == 0 and not zero) or (most is not None and value > most):
        lowest = "0" if zero else "above 0"
        upper = f" and at most {most:g}" if most is not None else ""
        raise UsageError(f"{name} {value:g} is out of range", f"give {name} a number of seconds {lowest}{upper}")


def check_request_flags(opts: RequestOptions) -> None:
    """Every request flag that could hold what no JSON request can carry: NaN and Infinity in the
    numbers, undecodable bytes in the text (the prompt and --param are checked where they are read)."""
    for name, value in (("--temperature", opts.temperature), ("--top-p", opts.top_p), ("--presence-penalty", opts.presence_penalty), ("--frequency-penalty", opts.frequency_penalty)):
        check_finite(name, value)
    for stop in opts.stop:
        check_text("--stop", stop)


def build_body(model: str, prompt: Any, opts: RequestOptions, defaults: Any = None) -> dict[str, Any]:
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
        optional["max_tokens"] = DEFAULT_MAX_TOKENS
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


def encode_body(body: Any) -> bytes:
    """A request body as the bytes sent (compact UTF-8 JSON), for every client: the sync API, the
    batch and bench runners. A lone surrogate (a model id a server sent as "\\ud800", an escape in
    a prompts or batch file) cannot be UTF-8: the body is then written with \\u escapes, which
    every JSON reader takes, never as bytes that are not UTF-8 nor as a failure."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def choices_in(body: dict[str, Any]) -> int:
    """How many choices a request asks for: n for each prompt of a prompt list."""
    n = body.get("n")
    n = n if type(n) is int and n > 0 else 1
    prompt = body.get("prompt")
    prompts = len(prompt) if isinstance(prompt, list) and prompt and not all(type(t) is int for t in prompt) else 1
    return n * max(1, prompts)
