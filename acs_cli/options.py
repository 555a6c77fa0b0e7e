"""What the command line asked for, typed: a leaf module every command and sink can import."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RequestOptions:
    """The request flags; None (or empty) means the settings' default (profile, file, built-in)."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    n: int | None = None
    logprobs: int | None = None
    echo: bool = False
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    params: list[str] = field(default_factory=list)
    usage: bool = True

    @property
    def choices(self) -> int:
        """How many choices the request asks for."""
        return self.n or 1


@dataclass
class OutputOptions:
    quiet: bool = False
    choice: int | None = None
    json: bool = False  # one JSON object at the end
    jsonl: bool = False  # one JSON line per event as it arrives
    stats: bool = False  # time to first token, decode speed and total time on the usage line
    logprobs_table: bool = False  # each token's probability and alternatives, on stderr
    raw: bool = False  # the body exactly as received
    include_headers: bool = False  # with raw: the status line and headers first


@dataclass
class ConnectionOptions:
    """Where and how to reach the server; None means the settings' value."""

    base_url: str | None = None
    model: str | None = None
    timeout: str | None = None
    profile: str | None = None
    retries: int = 2
    max_time: float | None = None  # cap on the whole run, like curl --max-time

    def settings_flags(self) -> dict[str, str | None]:
        """The flags as acs_cli.settings.load_settings takes them."""
        return {"api_base": self.base_url, "model": self.model, "timeout": self.timeout, "profile": self.profile}


@dataclass
class CompleteOptions:
    prompt: str | None
    escapes: bool = False
    connection: ConnectionOptions = field(default_factory=ConnectionOptions)
    request: RequestOptions = field(default_factory=RequestOptions)
    output: OutputOptions = field(default_factory=OutputOptions)


@dataclass
class ReplayOptions:
    source: str | None  # a file, "-" for stdin, None for the bundled sample
    delay: float | None = None
    choices: int = 1
    output: OutputOptions = field(default_factory=OutputOptions)
    logprobs: bool = False  # show the logprobs view (the capture's own logprobs)
