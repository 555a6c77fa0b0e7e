"""Typer declarations only: each command parses its flags into typed options (acs_cli.options)
and runs its command module through the run ladder (acs_cli.run) with the Terminal in ctx.obj.

The app and most commands are declared here; a command with many options of its own is declared
in a module next to this one (acs_cli/cli_chat.py, acs_cli/cli_bench.py) and registered here.
A command module is imported only when its command runs: `acs --help` loads none of them."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from acs_cli import __version__, cli_help
from acs_cli.cli_batch import BATCH_EPILOG, batch
from acs_cli.cli_bench import BENCH_EXAMPLES, bench
from acs_cli.cli_chat import chat
from acs_cli.cli_help import INPUT, OUTPUT, REQUEST, AcsCommand, AcsGroup
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
    Stats,
    Stop,
    Temperature,
    Timeout,
    TopP,
    output_options,
    request_options,
    run_command,
)
from acs_cli.errors import UsageError
from acs_cli.options import CompleteOptions, ConnectionOptions, ReplayOptions

app = typer.Typer(
    name="acs",
    cls=AcsGroup,
    help="Stream text completions from an OpenAI-compatible /v1/completions endpoint (vLLM, llama.cpp's llama-server, OpenAI): "
    "live on a terminal, exact text in a pipe, the bytes on the wire with --raw.",
    epilog=cli_help.MAIN,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a traceback's locals could hold the API key
    rich_markup_mode=None,  # plain Click help (acs_cli.cli_help): fast, and no text read as markup
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"acs {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", "-V", help="Show the version and exit.", callback=_version, is_eager=True)] = False,
) -> None:
    """Stream text completions from an OpenAI-compatible /v1/completions endpoint."""


@app.command(cls=AcsCommand, epilog=cli_help.COMPLETE, short_help="Stream a completion for a prompt from your server.")
def complete(
    ctx: typer.Context,
    prompt: Annotated[
        Optional[str],
        typer.Argument(
            metavar="PROMPT",
            show_default=False,
            help="The prompt. Without it (or with -) it is read from stdin; with both, stdin's text, a newline, then PROMPT.",
        ),
    ] = None,
    escapes: Annotated[
        bool, typer.Option("--escapes", "-e", rich_help_panel=REQUEST, help="Turn \\n, \\t and \\\\ in PROMPT and --stop into newline, tab and backslash.")
    ] = False,
    model: Model = None,
    max_tokens: MaxTokens = None,
    temperature: Temperature = None,
    top_p: TopP = None,
    stop: Stop = None,
    seed: Seed = None,
    n: Choices = None,
    logprobs: Logprobs = None,
    echo: Annotated[bool, typer.Option("--echo", rich_help_panel=REQUEST, help="Ask the server to send the prompt back before the completion.")] = False,
    presence_penalty: PresencePenalty = None,
    frequency_penalty: FrequencyPenalty = None,
    param: Params = None,
    no_usage: NoUsage = False,
    quiet: Quiet = False,
    choice: Choice = None,
    json_output: JsonOutput = False,
    jsonl_output: JsonLines = False,
    stats: Stats = False,
    logprobs_table: LogprobsTable = False,
    raw: Raw = False,
    include: Include = False,
    base_url: BaseUrl = None,
    timeout: Timeout = None,
    max_time: MaxTime = None,
    retries: Retries = 2,
    profile: Profile = None,
) -> None:
    """Stream a completion: live on a terminal, exact text in a pipe, the wire with --raw."""
    from acs_cli.commands.complete import complete as run_complete

    opts = CompleteOptions(
        prompt=prompt,
        escapes=escapes,
        connection=ConnectionOptions(base_url=base_url, model=model, timeout=timeout, profile=profile, retries=retries, max_time=max_time),
        request=request_options(max_tokens, temperature, top_p, stop, seed, n, logprobs, presence_penalty, frequency_penalty, param, no_usage, echo),
        output=output_options(quiet, choice, json_output, jsonl_output, stats, logprobs_table, raw, include),
    )
    run_command(ctx, lambda term: run_complete(opts, term), usage=True)


# acs chat is declared in acs_cli/cli_chat.py (as bench is, below); registered where --help lists it
app.command(cls=AcsCommand, epilog=cli_help.CHAT, short_help="Chat with your server's model: answer, reasoning and tool calls as they stream.")(chat)


@app.command(cls=AcsCommand, epilog=cli_help.REPLAY, short_help="Replay a --raw capture, or a bundled sample: no server needed.")
def replay(
    ctx: typer.Context,
    file: Annotated[
        Optional[str],
        typer.Argument(metavar="FILE", show_default=False, help="A capture made with acs complete --raw > FILE; - reads stdin; none replays a bundled sample."),
    ] = None,
    delay: Annotated[
        Optional[float],
        typer.Option("--delay", metavar="SECONDS", min=0, rich_help_panel=INPUT, help="Pause between frames [default 0; 0.04 for the bundled sample]."),
    ] = None,
    n: Annotated[
        Optional[int],
        typer.Option(
            "--n",
            "-n",
            metavar="N",
            min=1,
            rich_help_panel=INPUT,
            help="Choices the capture was made with (its --n): the replay is complete only when each of them finished [default 1].",
        ),
    ] = None,
    quiet: Quiet = False,
    choice: Choice = None,
    json_output: JsonOutput = False,
    jsonl_output: JsonLines = False,
    stats: Stats = False,
    logprobs: Annotated[
        bool, typer.Option("--logprobs", rich_help_panel=OUTPUT, help="On a colour terminal, colour tokens by probability, from the capture's own logprobs.")
    ] = False,
    logprobs_table: Annotated[
        bool, typer.Option("--logprobs-table", rich_help_panel=OUTPUT, help="After the text, each token's probability and top alternatives, on stderr.")
    ] = False,
    chat: Annotated[
        bool,
        typer.Option("--chat", rich_help_panel=INPUT, help="Show it as acs chat does (chat captures are found by themselves); without FILE, a chat sample."),
    ] = False,
    reasoning: Reasoning = None,
) -> None:
    """Replay a --raw capture through the same parser and renderer as a live stream.

    Without FILE it replays a bundled sample: a way to see acs work before you have a server."""
    from acs_cli.commands.replay import replay as run_replay

    output = output_options(quiet, choice, json_output, jsonl_output, stats, logprobs_table)
    opts = ReplayOptions(source=file, delay=delay, choices=n or 1, output=output, logprobs=logprobs, chat=chat, reasoning=reasoning)
    run_command(ctx, lambda term: run_replay(opts, term), usage=True)


@app.command(cls=AcsCommand, epilog=cli_help.MODELS, short_help="List the models the server serves.")
def models(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", rich_help_panel=OUTPUT, help="Print the server's answer to GET /models as JSON.")] = False,
    base_url: BaseUrl = None,
    timeout: Timeout = None,
    retries: Retries = 2,
    profile: Profile = None,
) -> None:
    """List the models the server serves (GET /models): a table on a terminal, one id per line when piped."""
    from acs_cli.commands.models import list_models

    conn = ConnectionOptions(base_url=base_url, timeout=timeout, profile=profile, retries=retries)
    run_command(ctx, lambda term: list_models(conn, json_output, term))


config_app = typer.Typer(
    cls=AcsGroup,
    help="Show the settings acs would use and where each comes from, and the config file's path.",
    short_help="Show the settings acs would use, and the config file's path.",
    epilog=cli_help.CONFIG,
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")


@config_app.command("show", cls=AcsCommand, epilog=cli_help.CONFIG_SHOW, short_help="Every setting acs would use, and where it came from.")
def config_show(
    ctx: typer.Context,
    profile: Profile = None,
    base_url: BaseUrl = None,
    model: Model = None,
    timeout: Timeout = None,
) -> None:
    """Print every effective setting and where it came from (the key never shown)."""
    from acs_cli.commands.config_show import config_show as show

    run_command(ctx, lambda term: show(term, profile=profile, api_base=base_url, model=model, timeout=timeout))


@config_app.command("path", cls=AcsCommand, epilog=cli_help.CONFIG_PATH, short_help="The config file's path.")
def config_path_command(ctx: typer.Context) -> None:
    """Print the config file's path (ACS_CONFIG, else $XDG_CONFIG_HOME/acs/config.toml), whether it exists or not."""
    from acs_cli.config import config_path

    run_command(ctx, lambda term: term.write_out(f"{config_path()}\n".encode("utf-8", "surrogateescape")) or 0)


@app.command(cls=AcsCommand, epilog=cli_help.DOCTOR, short_help="Check the server step by step and say what is wrong.")
def doctor(
    ctx: typer.Context,
    base_url: BaseUrl = None,
    model: Model = None,
    timeout: Timeout = None,
    max_tokens: Annotated[
        int,
        typer.Option(
            "--max-tokens",
            metavar="N",
            min=1,
            rich_help_panel=REQUEST,
            help="Tokens the probe completion asks for; more frames judge buffering better [default 16].",
        ),
    ] = 16,
    json_output: Annotated[bool, typer.Option("--json", rich_help_panel=OUTPUT, help="Print the checks as one JSON object on stdout.")] = False,
    chat: Annotated[
        bool,
        typer.Option("--chat", rich_help_panel=REQUEST, help="Probe POST /chat/completions (a user message) instead of /completions."),
    ] = False,
    profile: Profile = None,
) -> None:
    """Check the server step by step (URL, DNS, TCP, TLS, key, model, a streamed probe, buffering proxies)."""
    from acs_cli.doctor import DoctorOptions
    from acs_cli.doctor import doctor as diagnose

    opts = DoctorOptions(base_url=base_url, model=model, timeout=timeout, max_tokens=max_tokens, as_json=json_output, profile=profile, chat=chat)
    run_command(ctx, lambda term: diagnose(opts, term))


@app.command(cls=AcsCommand, epilog=cli_help.COMPLETION, short_help="Print the shell completion script for bash, zsh or fish.")
def completion(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print the shell completion script for bash, zsh or fish; save it where your shell looks for one."""
    from acs_cli.shell_completion import script

    def show(term: Any) -> int:
        try:
            text = script(shell, ctx.find_root().command)
        except KeyError:
            raise UsageError(f"no completion script for {shell!r}", "choose bash, zsh or fish") from None
        term.write_out(text.encode())
        return 0

    run_command(ctx, show)


# Commands declared in modules of their own (acs_cli/cli_<command>.py, next to this one) are
# registered here, in the order `acs --help` lists them: a new one (acs batch) goes after bench.
app.command(cls=AcsCommand, epilog=BENCH_EXAMPLES, short_help="Load-test the server: latency and throughput under load.")(bench)
app.command(cls=AcsCommand, epilog=BATCH_EPILOG, short_help="Run a file of prompts or batch requests: resumable, retried.")(batch)
