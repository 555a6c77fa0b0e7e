"""`acs chat`, declared: its own options and its flags as ChatOptions (acs_cli.cli registers it)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from acs_cli.cli_help import INPUT, OUTPUT, REQUEST
from acs_cli.cli_options import (
    BaseUrl,
    Choice,
    Choices,
    FrequencyPenalty,
    Include,
    JsonLines,
    JsonOutput,
    Logprobs,
    LogprobsTable,
    MaxTime,
    MaxTokens,
    Model,
    NoUsage,
    Params,
    PresencePenalty,
    Profile,
    Quiet,
    Raw,
    Reasoning,
    Retries,
    Seed,
    Stop,
    Temperature,
    Timeout,
    TopP,
    output_options,
    request_options,
    run_command,
)
from acs_cli.options import ChatOptions, ConnectionOptions

ChatPrompt = Annotated[
    Optional[str],
    typer.Argument(
        metavar="PROMPT",
        show_default=False,
        help="The user message. Without it (or with -) it is read from stdin; with both, stdin's text, a newline, then PROMPT. "
        "None while stdin is a terminal: a conversation.",
    ),
]
System = Annotated[Optional[str], typer.Option("--system", metavar="TEXT", rich_help_panel=REQUEST, help="The system message, sent first.")]
SystemFile = Annotated[Optional[str], typer.Option("--system-file", metavar="FILE", rich_help_panel=INPUT, help="Read the system message from FILE.")]
Messages = Annotated[
    Optional[str],
    typer.Option(
        "--messages",
        metavar="FILE",
        rich_help_panel=INPUT,
        help="The conversation so far, sent before PROMPT: a JSON array of messages, or one per line (JSONL); - reads stdin.",
    ),
]
Tools = Annotated[Optional[str], typer.Option("--tools", metavar="FILE", rich_help_panel=INPUT, help="Send the tools in FILE (a JSON array) for the model to call.")]
ChatEscapes = Annotated[
    bool,
    typer.Option("--escapes", "-e", rich_help_panel=REQUEST, help="Turn \\n, \\t and \\\\ in PROMPT, --system and --stop into newline, tab and backslash."),
]
ChatStats = Annotated[
    bool,
    typer.Option("--stats", rich_help_panel=OUTPUT, help="Add the time to the first reasoning and answer token, tokens/s and total time to the usage line."),
]


def chat(
    ctx: typer.Context,
    prompt: ChatPrompt = None,
    system: System = None,
    system_file: SystemFile = None,
    messages: Messages = None,
    tools: Tools = None,
    escapes: ChatEscapes = False,
    model: Model = None,
    max_tokens: MaxTokens = None,
    temperature: Temperature = None,
    top_p: TopP = None,
    stop: Stop = None,
    seed: Seed = None,
    n: Choices = None,
    logprobs: Logprobs = None,
    presence_penalty: PresencePenalty = None,
    frequency_penalty: FrequencyPenalty = None,
    param: Params = None,
    no_usage: NoUsage = False,
    reasoning: Reasoning = None,
    quiet: Quiet = False,
    choice: Choice = None,
    json_output: JsonOutput = False,
    jsonl_output: JsonLines = False,
    stats: ChatStats = False,
    logprobs_table: LogprobsTable = False,
    raw: Raw = False,
    include: Include = False,
    base_url: BaseUrl = None,
    timeout: Timeout = None,
    max_time: MaxTime = None,
    retries: Retries = 2,
    profile: Profile = None,
) -> None:
    """Chat (POST /chat/completions): the answer live on a terminal, exact text in a pipe, reasoning and tool calls as they stream."""
    from acs_cli.commands.chat import chat as run_chat

    opts = ChatOptions(
        prompt=prompt,
        escapes=escapes,
        system=system,
        system_file=system_file,
        messages=messages,
        tools=tools,
        reasoning=reasoning,
        connection=ConnectionOptions(base_url=base_url, model=model, timeout=timeout, profile=profile, retries=retries, max_time=max_time),
        request=request_options(max_tokens, temperature, top_p, stop, seed, n, logprobs, presence_penalty, frequency_penalty, param, no_usage),
        output=output_options(quiet, choice, json_output, jsonl_output, stats, logprobs_table, raw, include),
    )
    run_command(ctx, lambda term: run_chat(opts, term), usage=True)
