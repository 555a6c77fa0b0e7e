"""What `acs batch` was asked, typed (a leaf: cli.py builds it when the command runs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from acs_cli.options import RequestOptions

DEFAULT_CONCURRENCY = 32
DEFAULT_RETRIES = 5


@dataclass
class BatchOptions:
    input: str  # a file, or "-" for stdin
    output: str
    errors: str | None = None  # failures go here instead of the output
    format: str = "auto"  # auto, batch, prompts, text
    escapes: bool = False  # text format: \n, \t, \\ in a line become the characters
    dry_run: bool = False
    ordered: bool = False
    force: bool = False
    retry_failed: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    rpm: float | None = None
    tpm: float | None = None
    retries: int = DEFAULT_RETRIES
    base_urls: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    model: str | None = None
    timeout: str | None = None
    request: RequestOptions = field(default_factory=RequestOptions)
