"""`acs batch`, declared: its options and examples (acs_cli.cli registers it). The batch package
loads only when a batch runs: `acs --help` and `acs batch --help` stay lean."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from acs_cli import cli_help
from acs_cli.cli_help import INPUT, OUTPUT
from acs_cli.cli_options import MaxTokens, Model, Params, Seed, Stop, Temperature, Timeout, TopP, run_command
from acs_cli.options import RequestOptions

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
    run_command(ctx, lambda term: run_batch(opts, term), usage=True)
