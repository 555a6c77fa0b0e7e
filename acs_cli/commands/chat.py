"""`acs chat`: the chat endpoint with everything `acs complete` does (live on a terminal, exact
in a pipe, --raw, --json, --jsonl, --stats, logprobs), reasoning and tool calls shown as they
stream; with no prompt on a terminal, a conversation (acs_cli.commands.chat_session)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from acs_cli.chat_request import CHAT_PATH, build_chat_body, conversation, read_tools
from acs_cli.chat_state import ChatState
from acs_cli.commands.complete import check_request, resolve_settings, send
from acs_cli.options import ChatOptions, check_reasoning
from acs_cli.output import check_output_flags, make_sink
from acs_cli.request import choices_in
from acs_cli.run import before_request

if TYPE_CHECKING:
    from acs_cli.outcome import Outcome
    from acs_cli.terminal import Terminal


def chat(opts: ChatOptions, term: Terminal) -> Outcome | int:
    check_reasoning(opts.reasoning)
    if is_interactive(opts, term):
        from acs_cli.commands.chat_session import converse  # the conversation's modules, only for one

        return converse(opts, term)
    req = opts.request
    limit = check_request(req, opts.output, opts.connection, opts.escapes)
    with before_request(limit):  # a prompt on a stdin that never ends, a slow api_key_command
        messages = conversation(opts, term)
        tools = read_tools(opts.tools, term) if opts.tools is not None else None
        settings = resolve_settings(opts.connection, term)
    body = build_chat_body(settings.model or "", messages, req, settings, tools)  # the model is filled in when sent
    choices = choices_in(body)
    check_output_flags(opts.output, choices)
    sink = make_sink(opts.output, term, choices=choices, logprobs=req.logprobs is not None, usage_asked=req.usage, chat=True, reasoning=opts.reasoning)
    return send(opts, term, settings, body, sink, choices, path=CHAT_PATH, state_class=ChatState, limit=limit)


def is_interactive(opts: ChatOptions, term: Terminal) -> bool:
    """No prompt while stdin is a terminal: a conversation, typed line by line."""
    return opts.prompt is None and term.stdin_tty and opts.messages != "-"
