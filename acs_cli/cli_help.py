"""How `acs … --help` reads: options in named panels, examples printed as written, no range noise.

Plain Click formatting, not Typer's Rich help: `acs --help` stays near 0.1 s (Rich help doubles
it) and no help text is ever read as markup. An option names its panel with Typer's own
`rich_help_panel`, so a new command only passes `cls=AcsCommand` and uses the panel constants.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup

# the panels, in the order a command's help shows them; options without one go last, under "Options"
INPUT = "Input"  # what a command reads that is not a request (a capture, a file of prompts)
REQUEST = "Request"  # fields of the request body, and the model
LOAD = "Load"  # how many requests, how fast, for how long, from how many processes (acs bench)
OUTPUT = "Output"  # what is printed, and where
CONNECTION = "Connection"  # where the server is and how long to wait for it
PANELS = (INPUT, LOAD, REQUEST, OUTPUT, CONNECTION)
OTHER = "Options"


def option_sections(command: Any, ctx: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section title, [(names, help)]) for a command's arguments and options, by panel.

    The help is the option's own text: Click's `[default: 2; x>=0]` suffixes are left out, so an
    option states its default in words where it has one (a test checks that)."""
    arguments: list[tuple[str, str]] = []
    panels: dict[str, list[tuple[str, str]]] = {}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        entry = (record[0], param.help or "")
        if param.param_type_name == "argument":
            arguments.append(entry)
        else:
            panels.setdefault(getattr(param, "rich_help_panel", None) or OTHER, []).append(entry)
    order = [*PANELS, *sorted(set(panels) - {*PANELS, OTHER}), OTHER]
    sections = [("Arguments", arguments)] if arguments else []
    return sections + [(title, panels[title]) for title in order if title in panels]


def write_sections(command: Any, ctx: Any, formatter: Any) -> None:
    sections = option_sections(command, ctx)
    # one column for the help text across all panels, as one table would have (Click caps it at 30)
    column = min(30, max((len(names) for _, rows in sections for names, _ in rows), default=0))
    for title, rows in sections:
        with formatter.section(title):
            formatter.write_dl([(names.ljust(column), text) for names, text in rows])


def write_verbatim(text: str | None, formatter: Any) -> None:
    """An epilog as written: examples keep their lines (Click would re-wrap them into prose)."""
    if text:
        formatter.write_paragraph()
        formatter.write("".join(f"{line.rstrip()}\n" for line in text.strip("\n").splitlines()))


class AcsCommand(TyperCommand):
    """A command whose help groups its options into panels and keeps its examples as written."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        write_sections(self, ctx, formatter)

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        write_verbatim(self.epilog, formatter)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        # Typer writes a required argument as {SHELL}; the usage line says SHELL, as man pages do
        return [piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece for piece in super().collect_usage_pieces(ctx)]


class AcsGroup(TyperGroup):
    """A group (acs itself, `acs config`) with the same help layout as its commands."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        write_sections(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        write_verbatim(self.epilog, formatter)


# ------------------------------------------------------------------ examples, one set per command
# Every line fits in 80 columns and runs as it is when pasted into a shell (tests/test_help.py).

ENVIRONMENT = """\
Environment:
  ACS_BASE_URL   the base URL [default http://localhost:8000/v1]; ACS_API_BASE
                 is the same setting under its older name
  ACS_API_KEY    the key, sent as "Authorization: Bearer ..." (never a flag)
  ACS_MODEL, ACS_TIMEOUT, ACS_PROFILE, ACS_CONFIG: as the flags
  OPENAI_BASE_URL, OPENAI_API_KEY: fallbacks, used in pairs (see the README)"""

MAIN = """\
First steps:
  acs replay                    # see it work now: a recorded sample, no server
  export ACS_BASE_URL=http://localhost:8000/v1   # where your server listens
  export ACS_API_KEY=...        # only if the server wants a key
  acs doctor                    # check the server step by step
  acs complete "Once upon a time"

Each command's --help lists its options and examples: acs complete --help"""

COMPLETE = f"""\
Examples:
  acs complete -e "Five reasons to learn Rust:\\n1."
  echo "Once upon a time" | acs complete
  cat notes.txt | acs complete "Summary:" > summary.txt
  acs complete --max-tokens 80 -t 0.2 --stop "\\n\\n" -e "Q: Why?\\nA:"
  acs complete -p top_k=40 -p ignore_eos=true "Once upon a time"
  acs complete --json "Hi" | jq -r '.choices[0].text'
  acs complete --stats "Hi"              # time to first token, tokens/s
  acs complete --raw -i "Hello"          # status, headers, frames: curl -N -i
  acs complete --raw "Hi" > hi.sse       # a capture for acs replay

{ENVIRONMENT}"""

REPLAY = """\
Examples:
  acs replay                             # the bundled sample, paced
  acs replay --stats                     # with time to first token, tokens/s
  acs complete --raw "Hi" > hi.sse && acs replay hi.sse --delay 0.05
  cat hi.sse | acs replay - --json
  acs complete --raw --n 2 "Hi" > two.sse && acs replay two.sse --n 2"""

CHAT = f"""\
Examples:
  acs chat "Why is the sky blue?"
  acs chat --system "Answer in one sentence." "What is Rust?"
  cat notes.txt | acs chat "Summarize these notes." > summary.txt
  acs chat --tools tools.json "What is the weather in Paris?"
  acs chat --reasoning hide "Is 1009 prime?"  # only the answer
  acs chat --json "Hi" | jq -r '.choices[0].message.content'
  acs chat --messages saved.json "And then?"
  acs chat                               # a conversation: /help, Ctrl-D

{ENVIRONMENT}"""

MODELS = f"""\
Examples:
  acs models                             # a table on a terminal
  acs models | head -n 1                 # one id per line in a pipe
  acs models --json | jq -r '.data[].id'
  acs models --base-url http://gpu-box:8000/v1

{ENVIRONMENT}"""

DOCTOR = f"""\
Examples:
  acs doctor
  acs doctor --base-url http://gpu-box:8000/v1 -m llama-8b
  acs doctor --max-tokens 64             # more frames to judge buffering
  acs doctor --json | jq .ok
  acs doctor --chat                      # the chat endpoint instead

{ENVIRONMENT}"""

CONFIG = """\
Examples:
  acs config show
  acs config show --profile staging
  acs config path"""

CONFIG_SHOW = """\
Examples:
  acs config show
  acs config show --profile staging
  ACS_MODEL=llama-8b acs config show     # which setting wins, and why"""

CONFIG_PATH = """\
Examples:
  acs config path
  ACS_CONFIG=./acs.toml acs config path"""

COMPLETION = """\
Examples:
  acs completion bash > ~/.local/share/bash-completion/completions/acs
  acs completion zsh > "${fpath[1]}/_acs"
  acs completion fish > ~/.config/fish/completions/acs.fish"""
