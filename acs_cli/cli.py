"""Typer declarations only: each command parses its flags into typed options (acs_cli.options)
and runs its command module through the run ladder (acs_cli.run) with the Terminal in ctx.obj."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer

from acs_cli import __version__
from acs_cli.options import CompleteOptions, ConnectionOptions, OutputOptions, ReplayOptions, RequestOptions

app = typer.Typer(
    name="acs",
    help="Stream text completions from an OpenAI-compatible /v1/completions endpoint (vLLM, llama.cpp, OpenAI).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a traceback's locals could hold the API key
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

COMPLETE_EPILOG = """\
Examples:

  acs complete -e "Five reasons to learn Rust:\\n1."

  echo "Once upon a time" | acs complete

  cat notes.txt | acs complete "Summary:" > out.txt

  acs complete --raw -i "Hello"          # the wire, like curl -N -i

  acs complete -m llama-8b --max-tokens 80 --param top_k=40 --stop "\\n\\n" -e "Q: why?\\nA:"

Environment: ACS_API_BASE (default http://localhost:8000/v1), ACS_API_KEY, ACS_MODEL, ACS_TIMEOUT.
"""

REPLAY_EPILOG = """\
Examples:

  acs replay                              # the bundled sample, paced like a model

  acs complete --raw "Hi" > hi.sse && acs replay hi.sse --delay 0.05

  cat hi.sse | acs replay -
"""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"acs {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", "-V", help="Show the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Stream text completions from an OpenAI-compatible /v1/completions endpoint."""


# option groups shared by several commands
BaseUrl = Annotated[Optional[str], typer.Option("--base-url", "--api-base", metavar="URL", help="API base URL [env ACS_API_BASE; default http://localhost:8000/v1].")]
Model = Annotated[Optional[str], typer.Option("--model", "-m", metavar="NAME", help="Model name [env ACS_MODEL; default: the server's only model].")]
Timeout = Annotated[
    Optional[str],
    typer.Option("--timeout", metavar="SECONDS", help="Seconds to wait for the first byte and between frames [env ACS_TIMEOUT; default 600].", show_default=False),
]
Retries = Annotated[int, typer.Option("--retries", metavar="N", help="Retries on connection failure or 429/502/503/504, before any output.", min=0)]
Profile = Annotated[
    Optional[str], typer.Option("--profile", metavar="NAME", help="Use this profile of the config file [env ACS_PROFILE].", show_default=False)
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No usage line on stderr.")]
Choice = Annotated[Optional[int], typer.Option("--choice", metavar="INDEX", help="With several choices, print only this index.", min=0)]
JsonOutput = Annotated[
    bool, typer.Option("--json", help="Print one JSON object at the end (choices, usage, timings, error) and nothing else on stdout.")
]
JsonLines = Annotated[bool, typer.Option("--jsonl", help="Print one JSON line per event as it arrives (delta, finish, usage, error, done).")]
Stats = Annotated[bool, typer.Option("--stats", help="Add time to first token, tokens/s and total time to the usage line.")]


@app.command(epilog=COMPLETE_EPILOG)
def complete(
    ctx: typer.Context,
    prompt: Annotated[
        Optional[str],
        typer.Argument(help="The prompt. `-` or nothing reads stdin; with both, stdin's text comes first.", show_default=False),
    ] = None,
    escapes: Annotated[bool, typer.Option("--escapes", "-e", help="Turn \\n, \\t and \\\\ in PROMPT and --stop into the characters.")] = False,
    model: Model = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", metavar="N", help="Most tokens to generate [default 256, or the profile's].", min=0, show_default=False)] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", "-t", metavar="T", help="Sampling temperature.")] = None,
    top_p: Annotated[Optional[float], typer.Option("--top-p", metavar="P", help="Nucleus sampling probability mass.")] = None,
    stop: Annotated[Optional[list[str]], typer.Option("--stop", metavar="TEXT", help="Stop string (repeatable).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", metavar="SEED", help="Sampling seed, for reproducible output.")] = None,
    n: Annotated[Optional[int], typer.Option("--n", "-n", metavar="N", help="Number of choices to generate.", min=1)] = None,
    logprobs: Annotated[Optional[int], typer.Option("--logprobs", metavar="N", help="Return the top N log probabilities per token.", min=0)] = None,
    echo: Annotated[bool, typer.Option("--echo", help="Include the prompt in the completion.")] = False,
    presence_penalty: Annotated[Optional[float], typer.Option("--presence-penalty", metavar="X", help="Penalty for tokens already present.")] = None,
    frequency_penalty: Annotated[Optional[float], typer.Option("--frequency-penalty", metavar="X", help="Penalty by token frequency.")] = None,
    param: Annotated[
        Optional[list[str]],
        typer.Option("--param", "-p", metavar="KEY=VALUE", help="Extra request field KEY=VALUE (repeatable); VALUE is JSON when it parses, e.g. top_k=40."),
    ] = None,
    no_usage: Annotated[bool, typer.Option("--no-usage", help="Do not ask for the usage chunk (stream_options).")] = False,
    quiet: Quiet = False,
    choice: Choice = None,
    json_output: JsonOutput = False,
    jsonl_output: JsonLines = False,
    stats: Stats = False,
    logprobs_table: Annotated[
        bool, typer.Option("--logprobs-table", help="After the text, each token's probability and top alternatives, on stderr (implies --logprobs 5).")
    ] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Print the response body exactly as received, like curl -N.")] = False,
    include: Annotated[bool, typer.Option("--include", "-i", help="With --raw, print the status line and headers first.")] = False,
    base_url: BaseUrl = None,
    timeout: Timeout = None,
    retries: Retries = 2,
    profile: Profile = None,
) -> None:
    """Stream a completion: live on a terminal, exact text in a pipe, the wire with --raw."""
    from acs_cli.commands.complete import complete as run_complete

    opts = CompleteOptions(
        prompt=prompt,
        escapes=escapes,
        connection=ConnectionOptions(base_url=base_url, model=model, timeout=timeout, profile=profile, retries=retries),
        request=RequestOptions(
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
        ),
        output=OutputOptions(
            quiet=quiet,
            choice=choice,
            json=json_output,
            jsonl=jsonl_output,
            stats=stats,
            logprobs_table=logprobs_table,
            raw=raw,
            include_headers=include,
        ),
    )
    _run(ctx, lambda term: run_complete(opts, term), usage=True)


@app.command(epilog=REPLAY_EPILOG)
def replay(
    ctx: typer.Context,
    file: Annotated[
        Optional[str],
        typer.Argument(help="A capture made with `acs complete --raw`; `-` reads stdin; none replays a bundled sample.", show_default=False),
    ] = None,
    delay: Annotated[Optional[float], typer.Option("--delay", metavar="SECONDS", help="Seconds between frames [default 0; 0.04 for the sample].", min=0)] = None,
    n: Annotated[Optional[int], typer.Option("--n", "-n", metavar="N", help="Choices the capture holds.", min=1)] = None,
    quiet: Quiet = False,
    choice: Choice = None,
    json_output: JsonOutput = False,
    jsonl_output: JsonLines = False,
    stats: Stats = False,
    logprobs: Annotated[bool, typer.Option("--logprobs", help="Colour tokens by probability, from the capture's own logprobs.")] = False,
    logprobs_table: Annotated[
        bool, typer.Option("--logprobs-table", help="After the text, each token's probability and top alternatives, on stderr.")
    ] = False,
) -> None:
    """Replay a --raw capture through the same parser and renderer as a live stream."""
    from acs_cli.commands.replay import replay as run_replay

    output = OutputOptions(quiet=quiet, choice=choice, json=json_output, jsonl=jsonl_output, stats=stats, logprobs_table=logprobs_table)
    opts = ReplayOptions(source=file, delay=delay, choices=n or 1, output=output, logprobs=logprobs)
    _run(ctx, lambda term: run_replay(opts, term), usage=True)


@app.command()
def models(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print the server's model list as JSON.")] = False,
    base_url: BaseUrl = None,
    timeout: Timeout = None,
    retries: Retries = 2,
    profile: Profile = None,
) -> None:
    """List the models the server serves (GET /models): a table on a terminal, one id per line when piped."""
    from acs_cli.commands.models import list_models

    conn = ConnectionOptions(base_url=base_url, timeout=timeout, profile=profile, retries=retries)
    _run(ctx, lambda term: list_models(conn, json_output, term))


config_app = typer.Typer(help="Show the configuration acs would use, and where it lives.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
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


@config_app.command("path")
def config_path_command(ctx: typer.Context) -> None:
    """Print the config file's path."""
    from acs_cli.config import config_path

    _run(ctx, lambda term: term.write_out(f"{config_path()}\n".encode("utf-8", "surrogateescape")) or 0)


@app.command()
def doctor(
    ctx: typer.Context,
    base_url: BaseUrl = None,
    model: Model = None,
    timeout: Timeout = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", metavar="N", help="Tokens the probe completion asks for.", min=1)] = 16,
    json_output: Annotated[bool, typer.Option("--json", help="Print the checks as one JSON object.")] = False,
    profile: Profile = None,
) -> None:
    """Check the server step by step (URL, DNS, TCP, TLS, key, model, a streamed probe, buffering proxies)."""
    from acs_cli.doctor import DoctorOptions
    from acs_cli.doctor import doctor as diagnose

    opts = DoctorOptions(base_url=base_url, model=model, timeout=timeout, max_tokens=max_tokens, as_json=json_output, profile=profile)
    _run(ctx, lambda term: diagnose(opts, term))


@app.command()
def completion(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.")],
) -> None:
    """Print the shell completion script (the same as the files in completions/)."""
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


def _run(ctx: typer.Context, command: Callable[[Any], Any], usage: bool = False) -> None:
    """Run a command module through the ladder with the Terminal the entry point chose."""
    from acs_cli.run import run

    raise typer.Exit(run(command, ctx.obj, usage=ctx.get_usage() if usage else None))


# ------------------------------------------------------------------------------ acs batch

BATCH_EPILOG = """\
Examples:

  acs batch prompts.txt -o results.jsonl

  acs batch requests.jsonl -o results.jsonl -c 64 --rpm 600

  acs batch requests.jsonl -o results.jsonl --retry-failed

  acs batch in.jsonl -o out.jsonl --base-url URL1 --base-url URL2

Running the same command again resumes: only what is not in the output is sent.
Exit status: 0 every request succeeded; 12 the run finished but some failed;
2 an invalid input (nothing sent); 130 Ctrl-C (what finished is written).
"""


@app.command(epilog=BATCH_EPILOG)
def batch(
    ctx: typer.Context,
    input: Annotated[str, typer.Argument(metavar="INPUT", help="OpenAI batch JSONL, {\"prompt\": …} JSONL, or text with one prompt per line; `-` reads stdin.")],
    output: Annotated[str, typer.Option("--output", "-o", metavar="FILE", help="Results, one JSON line per request (OpenAI's batch output); appended to, and resumed from.")],
    errors: Annotated[Optional[str], typer.Option("--errors", metavar="FILE", help="Write the failed requests' lines here instead of to the output.")] = None,
    input_format: Annotated[str, typer.Option("--format", metavar="FORMAT", help="auto, batch, prompts or text.")] = "auto",
    escapes: Annotated[bool, typer.Option("--escapes", "-e", help="Text input: turn \\n, \\t and \\\\ in each line into the characters.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate, print the counts and the estimated tokens, send nothing.")] = False,
    ordered: Annotated[bool, typer.Option("--ordered", help="Write results in input order (default: as they finish).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Resume an output even though the input changed since it was started.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Send again the requests that failed in earlier runs.")] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", metavar="N", help="Requests in flight at once.", min=1)] = 32,
    rpm: Annotated[Optional[float], typer.Option("--rpm", metavar="N", help="At most N requests per minute.", min=0.001)] = None,
    tpm: Annotated[Optional[float], typer.Option("--tpm", metavar="N", help="At most N tokens per minute (estimated: prompt characters / 4 + max_tokens).", min=0.001)] = None,
    retries: Annotated[int, typer.Option("--retries", metavar="N", help="Retries per request on connection failure, timeout, cut stream or 429/502/503/504.", min=0)] = 5,
    base_url: Annotated[
        Optional[list[str]], typer.Option("--base-url", "--api-base", metavar="URL", help="API base URL; repeat it to spread the requests over several servers [env ACS_API_BASE].")
    ] = None,
    profile: Annotated[Optional[list[str]], typer.Option("--profile", metavar="NAME", help="Profile of the config file; repeat it for several servers [env ACS_PROFILE].")] = None,
    model: Model = None,
    timeout: Timeout = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", metavar="N", help="Default max_tokens for lines that give none [default 256, or the profile's].", min=0, show_default=False)] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", "-t", metavar="T", help="Default sampling temperature.")] = None,
    top_p: Annotated[Optional[float], typer.Option("--top-p", metavar="P", help="Default nucleus sampling probability mass.")] = None,
    stop: Annotated[Optional[list[str]], typer.Option("--stop", metavar="TEXT", help="Default stop string (repeatable).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", metavar="SEED", help="Default sampling seed.")] = None,
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", metavar="KEY=VALUE", help="Default extra request field (repeatable); VALUE is JSON when it parses.")] = None,
) -> None:
    """Run a file of prompts or OpenAI batch requests: resumable, retried, spread over several servers."""
    from acs_cli.batch.options import BatchOptions
    from acs_cli.commands.batch import batch as run_batch

    request = RequestOptions(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop or [], seed=seed, params=param or [])
    opts = BatchOptions(
        input=input, output=output, errors=errors, format=input_format, escapes=escapes, dry_run=dry_run, ordered=ordered, force=force,
        retry_failed=retry_failed, concurrency=concurrency, rpm=rpm, tpm=tpm, retries=retries, base_urls=base_url or [], profiles=profile or [],
        model=model, timeout=timeout, request=request,
    )  # fmt: skip
    _run(ctx, lambda term: run_batch(opts, term), usage=True)
