"""What `acs bench` was asked for, typed (a leaf: cli.py builds it without loading the bench)."""

from __future__ import annotations

from dataclasses import dataclass, field

from acs_cli.options import ConnectionOptions


@dataclass
class BenchOptions:
    connection: ConnectionOptions = field(default_factory=ConnectionOptions)
    params: list[str] = field(default_factory=list)
    concurrency: str | None = None  # "4" or "1,4,16"
    rate: str | None = None  # requests/s, "50" or "10,20,40"
    arrival: str = "poisson"
    burstiness: float = 1.0
    max_concurrency: int | None = None
    sweep: bool = False
    requests: int | None = None
    duration: float | None = None
    warmup: int = 0
    input_tokens: str | None = None  # "N[:SPREAD]"
    output_tokens: str | None = None
    prompts: str | None = None  # a file
    seed: int = 0
    slos: list[str] = field(default_factory=list)  # "ttft=500ms"
    slo_goodput: float | None = None  # percent
    json_path: str | None = None
    requests_path: str | None = None  # --save-requests
    report_path: str | None = None
    workers: int = 1
    ray: str | None = None
    quiet: bool = False
