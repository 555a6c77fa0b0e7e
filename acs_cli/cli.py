"""Typer declarations only: each command parses its flags into typed options (acs_cli.options)
and runs its command module through the run ladder (acs_cli.run) with the Terminal in ctx.obj."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer

from acs_cli import __version__, cli_help
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
)
from acs_cli.options import CompleteOptions, ConnectionOptions, OutputOptions, ReplayOptions, RequestOptions

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
        request=_request(max_tokens, temperature, top_p, stop, seed, n, logprobs, presence_penalty, frequency_penalty, param, no_usage, echo),
        output=_output(quiet, choice, json_output, jsonl_output, stats, logprobs_table, raw, include),
    )
    _run(ctx, lambda term: run_complete(opts, term), usage=True)


# chat's own options
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


@app.command(cls=AcsCommand, epilog=cli_help.CHAT, short_help="Chat with your server's model: answer, reasoning and tool calls as they stream.")
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
    from acs_cli.options import ChatOptions

    opts = ChatOptions(
        prompt=prompt,
        escapes=escapes,
        system=system,
        system_file=system_file,
        messages=messages,
        tools=tools,
        reasoning=reasoning,
        connection=ConnectionOptions(base_url=base_url, model=model, timeout=timeout, profile=profile, retries=retries, max_time=max_time),
        request=_request(max_tokens, temperature, top_p, stop, seed, n, logprobs, presence_penalty, frequency_penalty, param, no_usage),
        output=_output(quiet, choice, json_output, jsonl_output, stats, logprobs_table, raw, include),
    )
    _run(ctx, lambda term: run_chat(opts, term), usage=True)


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

    output = _output(quiet, choice, json_output, jsonl_output, stats, logprobs_table)
    opts = ReplayOptions(source=file, delay=delay, choices=n or 1, output=output, logprobs=logprobs, chat=chat, reasoning=reasoning)
    _run(ctx, lambda term: run_replay(opts, term), usage=True)


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
    _run(ctx, lambda term: list_models(conn, json_output, term))


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

    _run(ctx, lambda term: show(term, profile=profile, api_base=base_url, model=model, timeout=timeout))


@config_app.command("path", cls=AcsCommand, epilog=cli_help.CONFIG_PATH, short_help="The config file's path.")
def config_path_command(ctx: typer.Context) -> None:
    """Print the config file's path (ACS_CONFIG, else $XDG_CONFIG_HOME/acs/config.toml), whether it exists or not."""
    from acs_cli.config import config_path

    _run(ctx, lambda term: term.write_out(f"{config_path()}\n".encode("utf-8", "surrogateescape")) or 0)


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
    _run(ctx, lambda term: diagnose(opts, term))


@app.command(cls=AcsCommand, epilog=cli_help.COMPLETION, short_help="Print the shell completion script for bash, zsh or fish.")
def completion(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print the shell completion script for bash, zsh or fish; save it where your shell looks for one."""
    from acs_cli.errors import UsageError
    from acs_cli.shell_completion import script

    def show(term: Any) -> int:
        try:
            text = script(shell, ctx.find_root().command)
        except KeyError:
            raise UsageError(f"no completion script for {shell!r}", "choose bash, zsh or fish") from None
        term.write_out(text.encode())
        return 0

    _run(ctx, show)


def _request(
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


def _output(
    quiet: bool, choice: int | None, json_output: bool, jsonl_output: bool, stats: bool, logprobs_table: bool, raw: bool = False, include: bool = False
) -> OutputOptions:
    """The output flags, as OutputOptions."""
    return OutputOptions(
        quiet=quiet, choice=choice, json=json_output, jsonl=jsonl_output, stats=stats, logprobs_table=logprobs_table, raw=raw, include_headers=include
    )


def _run(ctx: typer.Context, command: Callable[[Any], Any], usage: bool = False) -> None:
    """Run a command module through the ladder with the Terminal the entry point chose."""
    from acs_cli.run import run

    raise typer.Exit(run(command, ctx.obj, usage=ctx.get_usage() if usage else None))


# ------------------------------------------------------------------------------------ acs bench

BENCH_EXAMPLES = """\
Examples:
  acs bench -c 1,4,16 -n 200 --input-tokens 512 --output-tokens 128
  acs bench --rate 20 --duration 60 --slo ttft=500ms --slo-goodput 95
  acs bench --sweep --warmup 20 --json result.json --report report.html
  acs bench --rate 200 --workers 4 --save-requests requests.jsonl
  acs bench compare before.json after.json

Exit status: 0 the run completed (failed requests are counted, not fatal);
13 --slo-goodput missed; when no request succeeded, the first failure's;
130 Ctrl-C (the partial result is still summarised and written)."""


def _bench_option(*names: str, panel: str, help: str, metavar: str | None = None) -> Any:
    return typer.Option(*names, metavar=metavar, rich_help_panel=panel, help=help, show_default=False)


@app.command(cls=AcsCommand, epilog=BENCH_EXAMPLES, short_help="Load-test the server: latency and throughput under load.")
def bench(
    ctx: typer.Context,
    compare: Annotated[
        Optional[list[str]],
        typer.Argument(metavar="[compare A.json B.json]", show_default=False, help="Compare two --json results instead of running: each figure, its change, better or worse."),
    ] = None,
    concurrency: Annotated[Optional[str], _bench_option("--concurrency", "-c", metavar="N[,N...]", panel=cli_help.LOAD, help="Closed loop: keep N requests in flight; several levels run in turn [default 1].")] = None,
    rate: Annotated[Optional[str], _bench_option("--rate", "-r", metavar="R[,R...]", panel=cli_help.LOAD, help="Open loop: send R requests/s on a schedule computed before the run.")] = None,
    arrival: Annotated[str, _bench_option("--arrival", metavar="KIND", panel=cli_help.LOAD, help="Gaps of an open loop: constant, poisson or gamma [default poisson].")] = "poisson",
    burstiness: Annotated[float, _bench_option("--burstiness", metavar="B", panel=cli_help.LOAD, help="gamma's shape: 1 is Poisson, below 1 burstier [default 1].")] = 1.0,
    max_concurrency: Annotated[Optional[int], _bench_option("--max-concurrency", metavar="N", panel=cli_help.LOAD, help="Cap an open loop's requests in flight.")] = None,
    sweep: Annotated[bool, _bench_option("--sweep", panel=cli_help.LOAD, help="Double the load until throughput stops rising or the SLOs break.")] = False,
    requests: Annotated[Optional[int], _bench_option("--requests", "-n", metavar="N", panel=cli_help.LOAD, help="Requests per level [default 100].")] = None,
    duration: Annotated[Optional[float], _bench_option("--duration", metavar="SECONDS", panel=cli_help.LOAD, help="Send for this long per level instead.")] = None,
    warmup: Annotated[int, _bench_option("--warmup", metavar="N", panel=cli_help.LOAD, help="Requests sent first and left out of the figures [default 0].")] = 0,
    seed: Annotated[int, _bench_option("--seed", metavar="SEED", panel=cli_help.LOAD, help="Seed of the prompts and the arrival times [default 0].")] = 0,
    workers: Annotated[int, _bench_option("--workers", metavar="N", panel=cli_help.LOAD, help="Run the schedule across N processes [default 1].")] = 1,
    ray: Annotated[Optional[str], _bench_option("--ray", metavar="ADDRESS", panel=cli_help.LOAD, help="Run the workers as Ray tasks on this cluster (auto, local).")] = None,
    prompts: Annotated[Optional[str], _bench_option("--prompts", metavar="FILE", panel=INPUT, help='Prompts: JSONL of {"prompt", "max_tokens"}, or one per line.')] = None,
    input_tokens: Annotated[Optional[str], _bench_option("--input-tokens", metavar="N[:SPREAD]", panel=REQUEST, help="Synthetic prompts of N tokens (plus or minus SPREAD).")] = None,
    output_tokens: Annotated[Optional[str], _bench_option("--output-tokens", metavar="N[:SPREAD]", panel=REQUEST, help="Ask for N tokens, fixed with ignore_eos and min_tokens.")] = None,
    param: Annotated[Optional[list[str]], _bench_option("--param", "-p", metavar="KEY=VALUE", panel=REQUEST, help="Extra request field (repeatable); VALUE is JSON when it parses.")] = None,
    model: Model = None,
    slo: Annotated[Optional[list[str]], _bench_option("--slo", metavar="NAME=VALUE", panel=OUTPUT, help="An SLO (repeatable): ttft, tpot, itl or e2el, e.g. ttft=500ms.")] = None,
    slo_goodput: Annotated[Optional[float], _bench_option("--slo-goodput", metavar="PERCENT", panel=OUTPUT, help="Exit 13 when fewer requests meet the SLOs.")] = None,
    json_path: Annotated[Optional[str], _bench_option("--json", metavar="FILE", panel=OUTPUT, help="Write the summary as JSON, with vLLM's key names.")] = None,
    save_requests: Annotated[Optional[str], _bench_option("--save-requests", metavar="FILE", panel=OUTPUT, help="Write one JSON line per request.")] = None,
    report: Annotated[Optional[str], _bench_option("--report", metavar="FILE", panel=OUTPUT, help="Write a self-contained HTML report with charts.")] = None,
    quiet: Annotated[bool, _bench_option("--quiet", "-q", panel=OUTPUT, help="No line on stderr when a level ends.")] = False,
    base_url: BaseUrl = None,
    timeout: Timeout = None,
    profile: Profile = None,
) -> None:
    """Load-test the server (a closed or open loop, or a sweep) and report vLLM's metrics:
    TTFT, TPOT, ITL, E2E latency, throughput and goodput."""
    if compare:
        from acs_cli.commands.bench import compare_files

        _run(ctx, lambda term: compare_files(compare, term))
        return
    from acs_cli.bench.options import BenchOptions
    from acs_cli.commands.bench import bench as run_bench

    opts = BenchOptions(
        connection=ConnectionOptions(base_url=base_url, model=model, timeout=timeout, profile=profile, retries=0),
        params=param or [], concurrency=concurrency, rate=rate, arrival=arrival, burstiness=burstiness,
        max_concurrency=max_concurrency, sweep=sweep, requests=requests, duration=duration, warmup=warmup,
        input_tokens=input_tokens, output_tokens=output_tokens, prompts=prompts, seed=seed, slos=slo or [],
        slo_goodput=slo_goodput, json_path=json_path, requests_path=save_requests, report_path=report,
        workers=workers, ray=ray, quiet=quiet,
    )
    _run(ctx, lambda term: run_bench(opts, term))


# ------------------------------------------------------------------------------ acs batch

BATCH_EPILOG = """\
Examples:
  acs batch prompts.txt -o results.jsonl
  acs batch requests.jsonl -o results.jsonl -c 64 --rpm 600
  acs batch requests.jsonl -o results.jsonl     # again: sends what is missing
  acs batch requests.jsonl -o results.jsonl --retry-failed
  acs batch requests.jsonl -o results.jsonl --profile gpu1 --profile gpu2
  seq 100 | sed 's/^/Count to /' | acs batch - -o counts.jsonl --dry-run

Exit status: 0 every request succeeded; 14 the run finished but some failed;
2 an invalid input (nothing sent); 130 Ctrl-C (what finished is written)."""


@app.command(cls=AcsCommand, epilog=BATCH_EPILOG, short_help="Run a file of prompts or batch requests: resumable, retried.")
def batch(
    ctx: typer.Context,
    input: Annotated[str, typer.Argument(metavar="INPUT", help="OpenAI batch JSONL, {\"prompt\": …} JSONL, or one prompt per line; - reads stdin.")],
    output: Annotated[str, typer.Option("--output", "-o", metavar="FILE", rich_help_panel=OUTPUT, help="Results, one OpenAI batch output line per request; appended to, resumed from.")],
    errors: Annotated[Optional[str], typer.Option("--errors", metavar="FILE", rich_help_panel=OUTPUT, help="Write the failed requests' lines here instead.")] = None,
    ordered: Annotated[bool, typer.Option("--ordered", rich_help_panel=OUTPUT, help="Write results in input order, not as they finish.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", rich_help_panel=OUTPUT, help="Send again the requests that failed in earlier runs.")] = False,
    force: Annotated[bool, typer.Option("--force", rich_help_panel=OUTPUT, help="Resume the output even though the input changed since it was started.")] = False,
    input_format: Annotated[str, typer.Option("--format", metavar="FORMAT", rich_help_panel=INPUT, help="batch, prompts or text [default auto: from the first line].")] = "auto",
    escapes: Annotated[bool, typer.Option("--escapes", "-e", rich_help_panel=INPUT, help="Text input: \\n, \\t and \\\\ in a line become newline, tab, backslash.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", rich_help_panel=INPUT, help="Validate, print the counts and estimated tokens, send nothing.")] = False,
    model: Model = None,
    max_tokens: MaxTokens = None,
    temperature: Temperature = None,
    top_p: TopP = None,
    stop: Stop = None,
    seed: Seed = None,
    param: Params = None,
    base_url: Annotated[Optional[list[str]], typer.Option("--base-url", "--api-base", metavar="URL", rich_help_panel=cli_help.CONNECTION, help="API base URL; repeat it to share the requests among servers [env ACS_BASE_URL].")] = None,
    profile: Annotated[Optional[list[str]], typer.Option("--profile", metavar="NAME", rich_help_panel=cli_help.CONNECTION, help="Profile of the config file; repeat it for several servers [env ACS_PROFILE].")] = None,
    timeout: Timeout = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", metavar="N", min=1, rich_help_panel=cli_help.CONNECTION, help="Requests in flight at once [default 32].")] = 32,
    rpm: Annotated[Optional[float], typer.Option("--rpm", metavar="N", min=0.001, rich_help_panel=cli_help.CONNECTION, help="At most N requests a minute.")] = None,
    tpm: Annotated[Optional[float], typer.Option("--tpm", metavar="N", min=0.001, rich_help_panel=cli_help.CONNECTION, help="At most N tokens a minute (prompt characters / 4 + max_tokens).")] = None,
    retries: Annotated[int, typer.Option("--retries", metavar="N", min=0, rich_help_panel=cli_help.CONNECTION, help="Retries a request after no connection, a timeout, a cut stream or HTTP 429, 502, 503, 504 [default 5].")] = 5,
) -> None:  # fmt: skip
    """Run every request of a file against your servers, results in OpenAI's batch output format;
    resumable. The request flags are defaults: each line's own fields win."""
    from acs_cli.batch.options import BatchOptions
    from acs_cli.commands.batch import batch as run_batch

    request = RequestOptions(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop or [], seed=seed, params=param or [])
    opts = BatchOptions(
        input=input, output=output, errors=errors, format=input_format, escapes=escapes, dry_run=dry_run, ordered=ordered, force=force,
        retry_failed=retry_failed, concurrency=concurrency, rpm=rpm, tpm=tpm, retries=retries, base_urls=base_url or [], profiles=profile or [],
        model=model, timeout=timeout, request=request,
    )  # fmt: skip
    _run(ctx, lambda term: run_batch(opts, term), usage=True)
