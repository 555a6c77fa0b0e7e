"""`acs bench`: load-test the server: levels of load (or a sweep) on the engine, the figures of
acs_cli.bench.metrics, a summary on stdout and the files asked for, and an exit status a CI job
can gate on (`--slo-goodput`)."""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from acs_cli import __version__
from acs_cli.bench import report
from acs_cli.bench.html import page
from acs_cli.bench.live import Display
from acs_cli.bench.metrics import SLO_METRICS, Sample, percentile, short_outputs, summarize
from acs_cli.bench.options import BenchOptions
from acs_cli.bench.runner import Plan, WorkerResult
from acs_cli.bench.schedule import ARRIVALS, SWEEP_LIMIT, Level, Stop, levels, saturated, saturation_index, sweep_next
from acs_cli.bench.workers import Interrupted, run_plans
from acs_cli.bench.workload import Workload, parse_length, read_prompts, token_ids, tokenize_body
from acs_cli.errors import AcsError, ExitStatus, UsageError
from acs_cli.options import RequestOptions
from acs_cli.request import build_body, parse_params
from acs_cli.secrets import mask_url
from acs_cli.settings import ResolvedSettings, load_settings

if TYPE_CHECKING:
    from acs_cli.api import Api
    from acs_cli.terminal import Terminal

DEFAULT_REQUESTS = 100
SLO_GOODPUT_DEFAULT = 90.0  # a sweep's SLOs break when fewer requests than this percent meet them
CPU_BOTTLENECK = 85.0  # percent of one core
LAG_BOTTLENECK_MS = 10.0
_SLO = re.compile(r"^\s*(\w+)\s*=\s*([0-9.]+)\s*(ms|s)?\s*$")


@dataclass
class Run:
    """Everything the levels of one invocation share."""

    opts: BenchOptions
    term: Terminal
    base_url: str
    headers: dict[str, str]
    timeout: float
    workload: Workload
    stop: Stop
    slos: dict[str, float]
    model: str
    summaries: list[dict[str, Any]] = field(default_factory=list)
    samples: list[list[Sample]] = field(default_factory=list)
    signal: int | None = None


def parse_slos(items: list[str]) -> dict[str, float]:
    """`ttft=500ms`, `tpot=50ms`, `e2el=2s`: seconds per metric."""
    slos: dict[str, float] = {}
    for item in items:
        m = _SLO.match(item)
        if not m:
            raise UsageError(f"--slo {item!r} is not NAME=VALUE", "for example --slo ttft=500ms --slo tpot=50ms")
        name, value, unit = m.group(1).lower(), float(m.group(2)), m.group(3) or "ms"
        if name not in SLO_METRICS:
            raise UsageError(f"--slo {item!r}: unknown SLO name {name!r}", f"choose from {', '.join(SLO_METRICS)}, e.g. --slo ttft=500ms")
        slos[name] = value / 1000 if unit == "ms" else value
    return slos


def check(opts: BenchOptions) -> tuple[list[Level], Stop, dict[str, float]]:
    """Every flag checked before anything is sent."""
    if opts.arrival not in ARRIVALS:
        raise UsageError(f"--arrival {opts.arrival!r} is not one of {', '.join(ARRIVALS)}", "choose constant, poisson or gamma")
    if not opts.burstiness > 0:
        raise UsageError(f"--burstiness {opts.burstiness:g} is not above 0", "1 is Poisson; below 1 burstier, above 1 more regular")
    wanted = levels(opts.concurrency, opts.rate, opts.max_concurrency)
    if opts.sweep and len(wanted) > 1:
        raise UsageError("--sweep starts from one level", "give one --concurrency (or --rate) to start the sweep from")
    for flag, value, low in (("--requests", opts.requests, 1), ("--warmup", opts.warmup, 0), ("--workers", opts.workers, 1),
                             ("--max-concurrency", opts.max_concurrency, 1)):
        if value is not None and value < low:
            raise UsageError(f"{flag} {value} is below {low}", f"give {flag} a whole number of at least {low}")
    if opts.slo_goodput is not None and not 0 <= opts.slo_goodput <= 100:
        raise UsageError(f"--slo-goodput {opts.slo_goodput:g} is not a percentage", "give a number from 0 to 100")
    if opts.duration is not None and not opts.duration > 0:
        raise UsageError(f"--duration {opts.duration:g} is not above 0", "give the seconds each level sends requests for")
    stop = Stop(requests=opts.requests if opts.requests or opts.duration else DEFAULT_REQUESTS, duration=opts.duration)
    slos = parse_slos(opts.slos)
    if opts.slo_goodput is not None and not slos:
        raise UsageError("--slo-goodput needs at least one --slo", "for example --slo ttft=500ms --slo-goodput 95")
    return wanted, stop, slos


def bench(opts: BenchOptions, term: Terminal) -> int:
    wanted, stop, slos = check(opts)
    lengths = parse_length(opts.input_tokens, "--input-tokens"), parse_length(opts.output_tokens, "--output-tokens")
    prompts = read_prompts(opts.prompts) if opts.prompts else []
    parse_params(opts.params)
    settings = load_settings(**opts.connection.settings_flags())
    for warning in settings.warnings:
        term.message(warning, "warn")
    model, pool = preflight(settings, term, opts, lengths[0] is not None and not prompts)
    body = build_body(model, "", RequestOptions(params=opts.params), settings)
    body.pop("prompt")
    workload = Workload(body, seed=opts.seed, input_length=lengths[0], output_length=lengths[1], token_pool=pool, prompts=prompts)
    from acs_cli.api import key_header  # httpx loads for a run, not for `acs bench compare`

    run = Run(opts, term, settings.api_base, key_header(settings), settings.timeout, workload, stop, slos, model)
    saturation = run_levels(run, wanted)
    return finish(run, saturation)


def preflight(settings: ResolvedSettings, term: Terminal, opts: BenchOptions, synthetic: bool) -> tuple[str, list[int]]:
    """The model (the server's only one when none is given) and, for synthetic prompts, the token
    ids of one long text from the server's /tokenize (none: lengths are estimated)."""
    from acs_cli.api import Api  # httpx loads for a run, not for `acs bench compare`

    with Api(settings, retries=opts.connection.retries, warn=lambda text: term.message(text, "warn")) as api:
        model = settings.model or api.pick_model()
        if not synthetic:
            return model, []
        workload = Workload({}, seed=opts.seed, input_length=parse_length(opts.input_tokens, "--input-tokens"))
        text = workload.pool_text() or ""
        origin = re.sub(r"/v1/?$", "", settings.api_base.rstrip("/"))
        return model, tokenized(api, origin + "/tokenize", tokenize_body(model, text)) or []


def tokenized(api: Api, url: str, body: bytes) -> list[int] | None:
    """The token ids /tokenize answers, or None when it answers anything else (or nothing). Its
    body is read as far as a JSON answer may go, like every body acs reads."""
    import httpx

    from acs_cli.body import DOCUMENT_LIMIT, read_bounded

    try:
        response = api.client.send(api.client.build_request("POST", url, content=body, headers={"Content-Type": "application/json"}), stream=True)
    except Exception:  # any failure means: no /tokenize here
        return None
    try:
        if response.status_code != 200:
            return None
        raw, more = read_bounded(response.iter_raw(), DOCUMENT_LIMIT, api.timeout)
        return None if more else token_ids(json.loads(raw))
    except (httpx.HTTPError, AcsError, ValueError, RecursionError):  # no usable /tokenize here
        return None
    finally:
        response.close()


def run_levels(run: Run, wanted: list[Level]) -> int | None:
    """Each level in turn (a sweep: rising until saturated); the saturation index, if any."""
    queue = list(wanted)
    throughputs: list[float] = []
    slo_ok: list[bool] = []
    while queue:
        level = queue.pop(0)
        summary = run_level(run, level)
        throughputs.append(summary["output_throughput"] or summary["request_throughput"])
        target = run.opts.slo_goodput if run.opts.slo_goodput is not None else SLO_GOODPUT_DEFAULT
        slo_ok.append(summary["goodput_percent"] is None or summary["goodput_percent"] >= target)
        if run.signal is not None:
            break
        if run.opts.sweep and not saturated(throughputs, not slo_ok[-1]):
            following = sweep_next(level)
            if (following.concurrency or 0) <= SWEEP_LIMIT:
                queue.append(following)
    if run.opts.sweep or len(run.summaries) > 1:
        return saturation_index(throughputs, slo_ok)
    return None


def run_level(run: Run, level: Level) -> dict[str, Any]:
    opts = run.opts
    stop = run.stop
    if opts.sweep and level.concurrency and stop.duration is None and stop.requests is not None:
        stop = replace(stop, requests=max(stop.requests, 3 * level.concurrency))  # at least 3 rounds a level
    workers = max(1, opts.workers)
    plans = [
        Plan(run.base_url, run.headers, run.timeout, run.workload, level, stop, arrival=opts.arrival, burstiness=opts.burstiness,
             seed=opts.seed, worker=w, workers=workers, warmup=opts.warmup)
        for w in range(workers)
    ]
    display = Display(run.term, level.label, stop.requests, stop.duration)
    try:
        results = run_plans(plans, opts.ray, display)
    except Interrupted as exc:
        results, run.signal = exc.results, 2
    finally:
        display.close()
    samples = sorted((s for r in results for s in r.samples), key=lambda s: s.index)
    duration = max((r.wall for r in results), default=0.0)
    summary = summarize(samples, duration, run.slos)
    summary.update(describe(run, level, stop, results, samples))
    run.summaries.append(summary)
    run.samples.append(samples)
    if not opts.quiet:
        display.final(summary)
    run.term.write_out(report.table(summary).encode())
    return summary


def describe(run: Run, level: Level, stop: Stop, results: list[WorkerResult], samples: list[Sample]) -> dict[str, Any]:
    """The level's context (vLLM's keys where it has them) and the client's health."""
    lag = sorted(x for r in results for x in r.loop_lag)
    cpu = max((100 * r.cpu / r.wall for r in results if r.wall > 0), default=0.0)
    client = {"workers": len(results), "cpu_percent": cpu, "loop_lag_p99_ms": percentile(lag, 99) * 1000 if lag else 0.0,
              "loop_lag_max_ms": lag[-1] * 1000 if lag else 0.0}
    client["bottleneck"] = cpu >= CPU_BOTTLENECK or client["loop_lag_p99_ms"] >= LAG_BOTTLENECK_MS
    return {
        "date": datetime.datetime.now().strftime("%Y%m%d-%H%M%S"),
        "backend": "acs", "acs_version": __version__, "model_id": run.model, "tokenizer_id": None,
        "base_url": mask_url(run.base_url), "level": level.label, "num_prompts": len(samples),
        "request_rate": level.rate if level.rate is not None else "inf", "burstiness": run.opts.burstiness,
        "arrival": run.opts.arrival if level.rate is not None else None,
        "max_concurrency": level.max_concurrency if level.rate is not None else level.concurrency,
        "requests_asked": stop.requests, "duration_asked": stop.duration, "seed": run.opts.seed,
        "client": client, "notes": notes(samples, client),
    }


def notes(samples: list[Sample], client: dict[str, Any]) -> list[str]:
    out = []
    counted = sum(1 for s in samples if s.ok and s.output_source == "frames")
    if counted:
        out.append(f"the server sent no usage for {counted} requests: their output tokens are text frames counted (a frame may hold several tokens)")
    if any(s.ok and s.input_source == "estimate" for s in samples):
        out.append("input token lengths are estimated (no /tokenize and no usage from the server)")
    short = short_outputs(samples)
    if short:
        out.append(f"{short} requests ended before max_tokens: the server may not honour ignore_eos/min_tokens")
    if client["bottleneck"]:
        out.append(f"the client was the bottleneck (CPU {client['cpu_percent']:.0f}% of a core, event-loop lag p99 "
                   f"{client['loop_lag_p99_ms']:.1f} ms): the figures understate the server; add --workers")
    return out


def finish(run: Run, saturation: int | None) -> int:
    """Write the files, then the exit status: interrupted, nothing succeeded, goodput missed, or 0."""
    opts, summaries = run.opts, run.summaries
    if len(summaries) > 1:
        run.term.write_out(report.curve_table(summaries, saturation).encode())
    if opts.json_path:
        report.write_text(opts.json_path, json.dumps(report.results_json(summaries, saturation), indent=1, ensure_ascii=False) + "\n")
    if opts.requests_path:
        report.write_text(opts.requests_path, "".join(report.request_lines(s, m["level"]) for s, m in zip(run.samples, summaries, strict=True)))
    if opts.report_path:
        report.write_text(opts.report_path, page(summaries, run.samples, saturation))
    if run.signal is not None:
        return 128 + run.signal
    failures = [s for samples in run.samples for s in samples if not s.ok and s.exit_status]
    if failures and not any(m["completed"] for m in summaries):
        first = failures[0]
        error = AcsError(f"no request succeeded: {first.error}", "every request failed; the summary counts them by kind")
        error.status = ExitStatus(first.exit_status) if first.exit_status in set(ExitStatus) else ExitStatus.ERROR
        raise error
    if opts.slo_goodput is not None:
        worst = min(m["goodput_percent"] or 0.0 for m in summaries)
        if worst < opts.slo_goodput:
            error = AcsError(f"goodput {worst:.1f}% is below --slo-goodput {opts.slo_goodput:g}%", "the SLOs were missed; the summary shows by how much")
            error.status = ExitStatus.SLO_MISSED
            raise error
    return 0


def compare_files(words: list[str], term: Terminal) -> int:
    """`acs bench compare A.json B.json`: each run of A against the same run of B."""
    if len(words) != 3 or words[0] != "compare":
        raise UsageError(f"acs bench takes no argument {' '.join(words)!r} but `compare A.json B.json`", "acs bench compare before.json after.json")
    a, b = words[1], words[2]
    runs_a, runs_b = report.load_result(a), report.load_result(b)
    for i, (ra, rb) in enumerate(zip(runs_a, runs_b, strict=False)):
        if len(runs_a) > 1:
            term.write_out(f"== run {i}: {ra.get('level', '')} vs {rb.get('level', '')}\n".encode())
        term.write_out(report.compare(ra, rb).encode())
    if len(runs_a) != len(runs_b):
        term.message(f"acs: note: {a} has {len(runs_a)} runs and {b} has {len(runs_b)}: the first {min(len(runs_a), len(runs_b))} were compared")
    return 0

