"""The chat request: the conversation (`--messages`, `--system`, the prompt as the user message),
`--tools`, and the body for `/v1/chat/completions` (the request flags of complete, applied the
same way)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from acs_cli.errors import UsageError
from acs_cli.request import build_body, decode_escapes, read_prompt

if TYPE_CHECKING:
    from acs_cli.options import ChatOptions, RequestOptions
    from acs_cli.terminal import Terminal

CHAT_PATH = "chat/completions"
MESSAGE_HINT = 'give a JSON array of messages, or one per line (JSONL): {"role": "user", "content": "Hi"}'


def _read(source: str, term: Terminal, flag: str) -> str:
    """A file's text, or stdin's for `-`."""
    try:
        if source == "-":
            data = term.read_stdin()
        else:
            with open(source, "rb") as handle:
                data = handle.read()
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read {source}: {exc.strerror}", f"give {flag} a readable file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{flag}: {source} is not UTF-8 text", f"give {flag} a JSON file in UTF-8") from None


def _json_values(text: str, source: str, flag: str) -> list[Any]:
    """One JSON document, or JSONL (one value per non-blank line)."""
    try:
        return [json.loads(text)]
    except ValueError:
        pass
    except RecursionError:
        raise UsageError(f"{flag}: {source} is nested too deeply", MESSAGE_HINT) from None
    values = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line))
        except (ValueError, RecursionError) as exc:
            reason = getattr(exc, "msg", "nested too deeply")
            raise UsageError(f"{flag}: {source} is neither JSON nor JSONL (line {number}: {reason})", MESSAGE_HINT) from None
    return values


def read_messages(source: str, term: Terminal) -> list[dict[str, Any]]:
    """--messages: a JSON array of messages, JSONL, or a request body with `messages`."""
    values = _json_values(_read(source, term, "--messages"), source, "--messages")
    if len(values) == 1 and isinstance(values[0], list):
        values = values[0]
    elif len(values) == 1 and isinstance(values[0], dict) and isinstance(values[0].get("messages"), list):
        values = values[0]["messages"]  # a saved request body
    for number, message in enumerate(values, 1):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise UsageError(f"--messages: message {number} of {source} is not an object with a role", MESSAGE_HINT)
    return values


def read_tools(source: str, term: Terminal) -> list[Any]:
    """--tools: a JSON array of tools (or an object with `tools`, one tool, or JSONL)."""
    values = _json_values(_read(source, term, "--tools"), source, "--tools")
    value: Any = values[0] if len(values) == 1 else values  # one document, or JSONL: one tool a line
    if isinstance(value, dict):
        value = value["tools"] if isinstance(value.get("tools"), list) else [value]
    if not isinstance(value, list) or not all(isinstance(tool, dict) for tool in value):
        raise UsageError(
            f"--tools: {source} is not a JSON array of tools",
            'give an array like [{"type": "function", "function": {"name": "get_weather", "parameters": {...}}}]',
        )
    return value


def system_text(opts: ChatOptions, term: Terminal) -> str | None:
    if opts.system is not None and opts.system_file is not None:
        raise UsageError("--system and --system-file cannot be used together", "give the system message one way")
    if opts.system_file is not None:
        text = _read(opts.system_file, term, "--system-file")
        return text[:-1] if text.endswith("\n") else text
    if opts.system is not None and opts.escapes:
        return decode_escapes(opts.system)
    return opts.system


def user_text(opts: ChatOptions, term: Terminal) -> str | None:
    """The prompt as complete reads it (argument, stdin, or both); with --messages it may be
    left out (then the conversation is the file's)."""
    if opts.messages == "-" and opts.prompt == "-":
        raise UsageError("--messages - and the prompt - both want stdin", "give the messages or the prompt as a file or argument")
    try:
        return read_prompt(opts.prompt, opts.escapes, term, command="chat")
    except UsageError:
        if opts.messages is not None and opts.prompt is None:
            return None
        raise


def with_system(messages: list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    """The system message first: it replaces one the conversation starts with."""
    if system is None:
        return messages
    rest = messages[1:] if messages and messages[0].get("role") == "system" else messages
    return [{"role": "system", "content": system}, *rest]


def conversation(opts: ChatOptions, term: Terminal) -> list[dict[str, Any]]:
    """The messages to send: the file's, the system message, then the prompt as the user's."""
    messages = read_messages(opts.messages, term) if opts.messages is not None else []
    messages = with_system(messages, system_text(opts, term))
    user = user_text(opts, term)
    if user is not None:
        messages.append({"role": "user", "content": user})
    if not messages:
        raise UsageError(f"no messages: {opts.messages} holds none and no prompt was given", 'give a prompt: acs chat --messages FILE "next question"')
    return messages


def build_chat_body(model: str, messages: list[dict[str, Any]], req: RequestOptions, defaults: Any = None, tools: list[Any] | None = None) -> dict[str, Any]:
    """The chat request: complete's fields (flags over the settings' defaults, `--param` last)
    with `messages` for `prompt`, `--logprobs N` as `logprobs: true, top_logprobs: N`, and the
    tools. A field --param sets stays as it set it."""
    body = build_body(model, None, replace(req, logprobs=None, echo=False), defaults)
    del body["prompt"]
    out: dict[str, Any] = {"model": body.pop("model"), "messages": messages, **body}
    if req.logprobs is not None and "logprobs" not in out:
        out["logprobs"] = True
        out.setdefault("top_logprobs", req.logprobs)
    if tools is not None:
        out.setdefault("tools", tools)
    return out
