"""What the command line asked for, typed: a leaf module every command and sink can import."""

from __future__ import annotations

from dataclasses import dataclass, field

from acs_cli.errors import UsageError

DEFAULT_MAX_TOKENS = 256  # a request's max_tokens when neither a flag nor a setting gives one


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


REASONING_MODES = ("show", "hide", "only")


def check_reasoning(value: str | None) -> None:
    """--reasoning takes show, hide or only (None: the default, shown on a terminal only)."""
    if value is not None and value not in REASONING_MODES:
        raise UsageError(f"--reasoning {value!r} is not one of show, hide, only", "--reasoning show|hide|only (default: shown on a terminal, not in a pipe)")


@dataclass
class ChatOptions:
    """`acs chat`: the request flags of complete (no --echo), and the conversation."""

    prompt: str | None  # the user message (with stdin, as complete reads its prompt)
    escapes: bool = False
    system: str | None = None  # --system TEXT
    system_file: str | None = None  # --system-file FILE
    messages: str | None = None  # --messages FILE ("-" for stdin): a JSON array or JSONL
    tools: str | None = None  # --tools FILE: a JSON array of tools
    reasoning: str | None = None  # show, hide, only; None: shown on a terminal, not in a pipe
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
    chat: bool = False  # a chat capture (also detected from its frames); with no file, the chat sample
    reasoning: str | None = None  # as ChatOptions.reasoning
