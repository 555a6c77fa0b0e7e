"""The requests a run sends (`Job`: a line's fields over the defaults, ready to go) and the
counters the progress line and the summary read (`Tally`)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acs_cli.batch.inputs import Request
    from acs_cli.batch.kinds import RequestKind


@dataclass(slots=True)
class Job:
    seq: int  # this run's order of sending (for --ordered)
    custom_id: str
    kind: RequestKind
    body: dict[str, Any]
    tokens: int  # estimated, for --tpm
    choices: int


@dataclass
class Tally:
    """What the progress line and the summary say."""

    total: int = 0  # requests this run sends
    skipped: int = 0  # already done in the output
    skipped_failed: int = 0  # failed in an earlier run, not sent again (no --retry-failed)
    done: int = 0
    failed: int = 0
    in_flight: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> int:
        return self.done + self.failed


def request_body(template: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A line's own fields over the defaults; always streamed, with usage asked for."""
    body = {**template, **fields}
    body["stream"] = True
    options = fields.get("stream_options")
    body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return body


def make_jobs(
    requests: Iterator[Request], template: dict[str, Any], skip: Callable[[str], str | None], tally: Tally, estimate: Callable[[Request], int]
) -> Iterator[Job]:
    """The requests this run sends, in input order: those already in the output are counted and skipped."""
    seq = 0
    for request in requests:
        already = skip(request.custom_id)
        if already is not None:
            if already == "done":
                tally.skipped += 1
            else:
                tally.skipped_failed += 1
            continue
        body = request_body(template, request.fields)
        yield Job(seq, request.custom_id, request.kind, body, estimate(request), request.kind.choices(body))
        seq += 1
