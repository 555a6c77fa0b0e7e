"""The command-line options several commands share, as Typer annotations (acs_cli.cli and the
cli_* modules next to it declare the commands with them), and the helpers every declaration uses:
the shared flags as typed options, and running a command module. Each option names its help panel
(acs_cli.cli_help) and says its default in words; the help texts are the user's, so
`acs … --help` reads the same in every command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer

from acs_cli.cli_help import CONNECTION, OUTPUT, REQUEST
from acs_cli.options import OutputOptions, RequestOptions
from acs_cli.run import run

BaseUrl = Annotated[
    Optional[str],
    typer.Option(
        "--base-url",
        "--api-base",
        metavar="URL",
        rich_help_panel=CONNECTION,
        help="API base URL, default http://localhost:8000/v1; requests go to URL/completions [env ACS_BASE_URL].",
    ),
]
Model = Annotated[
    Optional[str],
    typer.Option("--model", "-m", metavar="NAME", rich_help_panel=REQUEST, help="Model to ask for [env ACS_MODEL; default: the server's only model]."),
]
Timeout = Annotated[
    Optional[str],
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        rich_help_panel=CONNECTION,
        show_default=False,
        help="Longest wait for the answer to start and, while it streams, between two reads that bring completion data "
        "(keep-alive pings do not count); not a limit on the whole run: see --max-time (connecting: at most 10 s) "
        "[env ACS_TIMEOUT; default 600].",
    ),
]
MaxTime = Annotated[
    Optional[float],
    typer.Option(
        "--max-time",
        metavar="SECONDS",
        rich_help_panel=CONNECTION,
        show_default=False,
        help="Cap the whole run (connecting, retries, waiting, streaming) at this many seconds, like curl --max-time; "
        "past it acs stops with exit 5, keeping the text so far.",
    ),
]
Retries = Annotated[
    int,
    typer.Option(
        "--retries",
        metavar="N",
        min=0,
        rich_help_panel=CONNECTION,
        help="Retries, with backoff, after a refused or reset connection or an HTTP 429, 502, 503 or 504; "
        "only before any output, never mid-stream [default 2].",
    ),
]
Profile = Annotated[
    Optional[str],
    typer.Option("--profile", metavar="NAME", rich_help_panel=CONNECTION, show_default=False, help="Use this profile of the config file [env ACS_PROFILE]."),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", rich_help_panel=OUTPUT, help="No usage line on stderr (failures are still reported).")]
Choice = Annotated[
    Optional[int],
    typer.Option("--choice", metavar="INDEX", min=0, rich_help_panel=OUTPUT, help="With several choices (--n), print only choice INDEX, counted from 0."),
]
JsonOutput = Annotated[
    bool,
    typer.Option(
        "--json", rich_help_panel=OUTPUT, help="Print one JSON object when the run ends (choices, usage, timings, error), and nothing else on stdout."
    ),
]
JsonLines = Annotated[
    bool, typer.Option("--jsonl", rich_help_panel=OUTPUT, help="Print one JSON line per event as it arrives (delta, finish, usage, error, done).")
]
Stats = Annotated[bool, typer.Option("--stats", rich_help_panel=OUTPUT, help="Add time to first token, tokens/s and total time to the usage line.")]

# the request and output flags complete and chat share
MaxTokens = Annotated[
    Optional[int],
    typer.Option(
        "--max-tokens",
        metavar="N",
        min=0,
        rich_help_panel=REQUEST,
        show_default=False,
        help="Most tokens to generate per choice [default 256, or the config file's].",
    ),
]
Temperature = Annotated[
    Optional[float],
    typer.Option("--temperature", "-t", metavar="T", rich_help_panel=REQUEST, help="Sampling temperature; 0 always picks the likeliest token."),
]
TopP = Annotated[
    Optional[float],
    typer.Option("--top-p", metavar="P", rich_help_panel=REQUEST, help="Sample only from the likeliest tokens that together reach probability P."),
]
Stop = Annotated[
    Optional[list[str]],
    typer.Option("--stop", metavar="TEXT", rich_help_panel=REQUEST, help="Stop generating at TEXT (repeatable; replaces the config file's list)."),
]
Seed = Annotated[
    Optional[int],
    typer.Option("--seed", metavar="SEED", rich_help_panel=REQUEST, help="Sampling seed, for repeatable output where the server supports it."),
]
Choices = Annotated[
    Optional[int], typer.Option("--n", "-n", metavar="N", min=1, rich_help_panel=REQUEST, help="Choices to generate for the prompt [default 1].")
]
Logprobs = Annotated[
    Optional[int],
    typer.Option(
        "--logprobs",
        metavar="N",
        min=0,
        rich_help_panel=REQUEST,
        help="Ask for each token's log probability and the top N alternatives; a colour terminal colours tokens by it.",
    ),
]
PresencePenalty = Annotated[
    Optional[float], typer.Option("--presence-penalty", metavar="X", rich_help_panel=REQUEST, help="Penalty on tokens that already appeared in the text.")
]
FrequencyPenalty = Annotated[
    Optional[float], typer.Option("--frequency-penalty", metavar="X", rich_help_panel=REQUEST, help="Penalty on tokens by how often they already appeared.")
]
Params = Annotated[
    Optional[list[str]],
    typer.Option(
        "--param",
        "-p",
        metavar="KEY=VALUE",
        rich_help_panel=REQUEST,
        help="Any other request field (repeatable); VALUE is JSON when it parses: -p top_k=40 -p ignore_eos=true.",
    ),
]
NoUsage = Annotated[
    bool,
    typer.Option(
        "--no-usage",
        rich_help_panel=REQUEST,
        help="Do not ask for a usage chunk (stream_options), for servers that reject it; token counts then come only if the server sends them anyway.",
    ),
]
LogprobsTable = Annotated[
    bool,
    typer.Option(
        "--logprobs-table",
        rich_help_panel=OUTPUT,
        help="After the text, each token's probability and top alternatives, on stderr (asks for --logprobs 5 unless given).",
    ),
]
Raw = Annotated[
    bool,
    typer.Option("--raw", rich_help_panel=OUTPUT, help="Print the response body exactly as received, like curl -N; the exit status still reports failures."),
]
Include = Annotated[bool, typer.Option("--include", "-i", rich_help_panel=OUTPUT, help="With --raw, print the status line and headers first.")]
Reasoning = Annotated[
    Optional[str],
    typer.Option(
        "--reasoning",
        metavar="show|hide|only",
        rich_help_panel=OUTPUT,
        show_default=False,
        help="Chat reasoning on stdout: show it, hide it, or only it; by default it is shown dimmed on a terminal and left out of a pipe.",
    ),
]


def request_options(
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    stop: list[str] | None,
    seed: int | None,
    n: int | None,
    logprobs: int | None,
    presence_penalty: float | None,
    frequency_penalty: float | None,
    param: list[str] | None,
    no_usage: bool,
    echo: bool = False,
) -> RequestOptions:
    """The request flags complete and chat share, as RequestOptions."""
    return RequestOptions(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        stop=stop or [],
        seed=seed,
        n=n,
        logprobs=logprobs,
        echo=echo,
        presence_penalty=presence_penalty,
        frequency_penalty=frequency_penalty,
        params=param or [],
        usage=not no_usage,
    )


def output_options(
    quiet: bool, choice: int | None, json_output: bool, jsonl_output: bool, stats: bool, logprobs_table: bool, raw: bool = False, include: bool = False
) -> OutputOptions:
    """The output flags, as OutputOptions."""
    return OutputOptions(
        quiet=quiet, choice=choice, json=json_output, jsonl=jsonl_output, stats=stats, logprobs_table=logprobs_table, raw=raw, include_headers=include
    )


def run_command(ctx: typer.Context, command: Callable[[Any], Any], usage: bool = False) -> None:
    """Run a command module through the ladder with the Terminal the entry point chose."""
    raise typer.Exit(run(command, ctx.obj, usage=ctx.get_usage() if usage else None))
