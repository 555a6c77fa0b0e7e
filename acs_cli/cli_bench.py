"""`acs bench`, declared: its options and examples (acs_cli.cli registers it). The bench package
loads only when a bench runs: `acs --help` and `acs bench --help` stay lean."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from acs_cli import cli_help
from acs_cli.cli_help import INPUT, OUTPUT, REQUEST
from acs_cli.cli_options import BaseUrl, Model, Profile, Timeout, run_command
from acs_cli.options import ConnectionOptions

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

        run_command(ctx, lambda term: compare_files(compare, term))
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
    run_command(ctx, lambda term: run_bench(opts, term))
