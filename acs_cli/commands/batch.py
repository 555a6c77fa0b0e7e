"""`acs batch INPUT -o OUTPUT`: every request of a file through one or more servers, resumable.

The order of things: flags and settings (one endpoint per --base-url or --profile), then the
whole input validated (nothing is sent while any line is wrong; --dry-run stops here with the
counts), then the output locked, checked against the input's fingerprint and read for what is
already done, then the run (acs_cli.batch.runner), then the summary line and the exit status:
0 when every request succeeded, 14 when the run finished but some failed, 128+N on a signal.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from acs_cli.batch.inputs import FORMATS, Request, Scan, Source, describe, estimate_tokens, requests, scan
from acs_cli.batch.jobs import Tally, make_jobs
from acs_cli.batch.progress import summary
from acs_cli.batch.resume import peek, resume
from acs_cli.batch.state import Fingerprint, StateFile
from acs_cli.errors import SomeFailed, UsageError
from acs_cli.outcome import SIGNAL_NAMES, Outcome
from acs_cli.request import build_body, check_finite
from acs_cli.secrets import mask_url
from acs_cli.text import make_visible

if TYPE_CHECKING:
    from acs_cli.batch.options import BatchOptions
    from acs_cli.settings import ResolvedSettings
    from acs_cli.terminal import Terminal


def batch(opts: BatchOptions, term: Terminal) -> Outcome | int:
    _check_flags(opts)
    settings = endpoint_settings(opts, term)
    template = request_template(opts, settings[0])
    source = Source(opts.input, term.stdin)
    try:
        found = scan(source, opts.format, escapes=opts.escapes, default_max_tokens=template["max_tokens"])
        _report_problems(found, source, term)
        if opts.dry_run:
            return _dry_run(opts, found, source, term)
        return _run(opts, found, source, settings, template, term)
    finally:
        source.close()


def _check_flags(opts: BatchOptions) -> None:
    if opts.format not in FORMATS:
        raise UsageError(f"--format {opts.format!r} is not one of {', '.join(FORMATS)}", "auto (the default) reads the first line to tell")
    if opts.output == "-":
        raise UsageError("the output must be a file, not stdout", "acs batch appends to it and resumes from it: give -o results.jsonl")
    paths = {"INPUT": opts.input, "-o": opts.output, "--errors": opts.errors}
    real = {name: os.path.realpath(p) for name, p in paths.items() if p and p != "-"}
    if len(set(real.values())) < len(real):
        raise UsageError("INPUT, -o and --errors must be three different files", "give each its own path")
    if opts.base_urls and opts.profiles and len(opts.base_urls) > 1 and len(opts.profiles) > 1:
        raise UsageError("several --base-url and several --profile together", "name the endpoints one way: repeat --base-url, or repeat --profile")
    for name, value in (("--temperature", opts.request.temperature), ("--top-p", opts.request.top_p)):
        check_finite(name, value)


def endpoint_settings(opts: BatchOptions, term: Terminal) -> list[ResolvedSettings]:
    """One resolved setting per endpoint: each --base-url (with the one --profile, if any), or
    each --profile; the request defaults come from the first."""
    from acs_cli.settings import load_settings

    bases: list[str | None] = list(opts.base_urls) or [None]
    profiles: list[str | None] = list(opts.profiles) or [None]
    out = [load_settings(api_base=b, model=opts.model, timeout=opts.timeout, profile=p) for b in bases for p in profiles]
    seen = set()
    for s in out:
        for warning in s.warnings:
            if warning not in seen:
                seen.add(warning)
                term.message(warning, "warn")
    return out


def request_template(opts: BatchOptions, settings: ResolvedSettings) -> dict[str, Any]:
    """The defaults under every line's own fields: flags over the (first) profile over built-ins.
    The model is each endpoint's (see `_models`), unless a line names one."""
    body = build_body("", None, opts.request, settings)
    del body["model"], body["prompt"]
    return body


def _report_problems(found: Scan, source: Source, term: Terminal) -> None:
    if found.problem_count:
        for problem in found.problems:
            term.message(f"{source.name}:{problem.number}: {make_visible(problem.message)}")
        more = found.problem_count - len(found.problems)
        if more:
            term.message(f"{source.name}: … and {more:,} more")
        count = f"{found.problem_count:,} problem{'s' if found.problem_count != 1 else ''}"
        raise UsageError(f"{count} in {source.name} (listed above); nothing was sent", "fix those lines (or choose how to read the file with --format)")
    if not found.requests:
        raise UsageError(f"no requests in {source.name}", "one request per line: a prompt, a {\"prompt\": …} object or an OpenAI batch line")


def _dry_run(opts: BatchOptions, found: Scan, source: Source, term: Terminal) -> int:
    existing = peek(opts.output, opts.errors, found.ids)
    lines = [f"{source.name}: {found.requests:,} requests ({found.format} format)"]
    if existing.results:
        lines.append(f"already in {opts.output}: {existing.ours_done:,} done, {existing.ours_failed:,} failed")
    unsent = found.requests - existing.ours_done - (0 if opts.retry_failed else existing.ours_failed)
    lines.append(f"to send: {unsent:,}")
    lines.append(f"estimated tokens: {found.prompt_tokens:,} prompt (characters / 4), at most {found.completion_tokens:,} completion")
    term.write_out(("\n".join(lines) + "\n").encode())
    return 0


def _run(opts: BatchOptions, found: Scan, source: Source, settings: list[ResolvedSettings], template: dict[str, Any], term: Terminal) -> Outcome:
    from acs_cli.batch.results import ResultWriter

    state = StateFile(opts.output)
    writers: list[ResultWriter] = []
    signum = None
    try:
        fingerprint = Fingerprint(describe(opts.input), found.format, opts.escapes, found.fingerprint, found.size, _absolute(opts.errors))
        resumed = resume(state, fingerprint, opts.output, opts.errors, force=opts.force, retry_failed=opts.retry_failed, ids=found.ids)
        found.ids = type(found.ids)()  # the input's ids are not needed any more
        tally = Tally()
        tally.total = found.requests - resumed.existing.ours_done - resumed.existing.ours_failed
        if tally.total <= 0:  # all done already: no server needed to say so
            tally.skipped, tally.skipped_failed = resumed.existing.ours_done, resumed.existing.ours_failed
            return _ending(tally, None, opts, term)
        models = _models(settings, found, opts.retries, term)
        writers.append(ResultWriter(opts.output))
        if opts.errors:
            writers.append(ResultWriter(opts.errors))

        def write(line: bytes, failed: bool) -> None:
            writers[-1 if failed else 0].write(line)

        def estimate(request: Request) -> int:
            prompt, most = estimate_tokens(request.fields, request.kind, template["max_tokens"])
            return prompt + most

        jobs = make_jobs(requests(source, found.format, opts.escapes), template, resumed.skip, tally, estimate)
        from acs_cli.engine import run as engine_run

        signum = engine_run(_drive(opts, settings, models, jobs, write, tally, term))
    finally:
        for writer in writers:
            writer.close()
        state.close()
    return _ending(tally, signum, opts, term)


def _ending(tally: Tally, signum: int | None, opts: BatchOptions, term: Terminal) -> Outcome:
    term.message(summary(tally, SIGNAL_NAMES.get(signum, f"signal {signum}") if signum else None))
    if signum:
        return Outcome(signal=signum)
    before = tally.skipped_failed
    if tally.failed or before:
        where = opts.errors or opts.output
        what = f"{tally.failed:,} of {tally.total:,} requests failed" if tally.failed else ""
        earlier = f"{before:,} failed in an earlier run and were not sent again" if before else ""
        return Outcome(
            error=SomeFailed(
                f"{'; '.join(x for x in (what, earlier) if x)}: their lines in {where} have an error or a non-2xx status_code",
                "run the same command with --retry-failed to send the failed ones again",
            )
        )
    return Outcome()


def _absolute(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None


def _models(settings: list[ResolvedSettings], found: Scan, retries: int, term: Terminal) -> list[str | None]:
    """Each endpoint's model for lines that name none: its setting, else the server's only model
    (asked only when some line needs it). Building the client also warns about a key sent over
    plain http to another host."""
    from acs_cli.api import Api

    models: list[str | None] = []
    for s in settings:
        with Api(s, retries=retries, warn=lambda text: term.message(text, "warn")) as api:
            models.append(s.model or (api.pick_model() if found.without_model else None))
    return models


async def _drive(opts: BatchOptions, settings: list[ResolvedSettings], models: list[str | None], jobs: Any, write: Any, tally: Tally, term: Terminal) -> int | None:
    from acs_cli.api import key_header
    from acs_cli.batch.balance import Balancer, Endpoint
    from acs_cli.batch.limits import Limits
    from acs_cli.batch.progress import Progress
    from acs_cli.batch.runner import Runner
    from acs_cli.engine import Engine

    endpoints = []
    for s, model in zip(settings, models, strict=True):
        headers = {"Content-Type": "application/json", **key_header(s)}
        endpoints.append(Endpoint(mask_url(s.base_url), Engine(s.base_url, headers, timeout=s.timeout), model))
    balancer = Balancer(endpoints)
    runner = Runner(balancer, Limits(opts.rpm, opts.tpm), write, concurrency=opts.concurrency, retries=opts.retries, ordered=opts.ordered, tally=tally, term=term)
    progress = Progress(term, tally, balancer)
    progress.start()
    try:
        return await runner.run(jobs, progress.tick if progress.bar is not None else None)
    finally:
        progress.stop()
