"""`acs chat` with no prompt on a terminal: a conversation, typed line by line.

Line editing and history come from the standard library's readline (history in
`$XDG_STATE_HOME/acs/history`, by default `~/.local/state/acs/history`). Each answer streams
live through the same request, parser and sinks as a one-off `acs chat`, and the conversation
(system message, questions, answers) is sent again with every turn. Commands: `/system TEXT`,
`/reset`, `/save FILE` (the messages as JSON, loadable with `--messages`), `/help`, `/exit`.
Ctrl-C while an answer streams cancels it (the connection is closed, so the server stops) and
the conversation goes on without that turn; Ctrl-C at the prompt clears the line; Ctrl-D or
`/exit` leaves.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acs_cli.api import Api
from acs_cli.chat_request import CHAT_PATH, build_chat_body, read_messages, read_tools, system_text, with_system
from acs_cli.chat_state import ChatState
from acs_cli.commands.complete import check_request, resolve_settings, stream_answer
from acs_cli.errors import ExitStatus, UsageError
from acs_cli.output import make_sink
from acs_cli.request import choices_in
from acs_cli.run import drive, report
from acs_cli.sinks.chat_json import ChatCollector, conversation_message
from acs_cli.sinks.terminal import retry_notice
from acs_cli.text import make_visible, shorten

if TYPE_CHECKING:
    from acs_cli.options import ChatOptions
    from acs_cli.outcome import Outcome
    from acs_cli.records import Record
    from acs_cli.settings import ResolvedSettings
    from acs_cli.sinks import Sink
    from acs_cli.terminal import Terminal

HISTORY_LENGTH = 1000
HELP = """\
/system TEXT   set the system message (/system alone removes it)
/reset         forget the conversation (the system message stays)
/save FILE     write the messages as JSON (acs chat --messages FILE goes on from there)
/exit          leave (Ctrl-D too); Ctrl-C stops an answer
//text         send a message that starts with /"""


def converse(opts: ChatOptions, term: Terminal) -> int:
    """Run a conversation until Ctrl-D or /exit; the exit status (0, or a signal's)."""
    out = opts.output
    if out.raw or out.json or out.jsonl:
        flag = "--raw" if out.raw else "--json" if out.json else "--jsonl"
        raise UsageError(f"{flag} needs a prompt: a conversation shows its answers on the terminal", f'give the prompt: acs chat {flag} "Hi"')
    check_request(opts.request, out, opts.connection, opts.escapes)
    messages = read_messages(opts.messages, term) if opts.messages is not None else []
    messages = with_system(messages, system_text(opts, term))
    tools = read_tools(opts.tools, term) if opts.tools is not None else None
    settings = resolve_settings(opts.connection, term)
    with Api(settings, retries=opts.connection.retries, warn=lambda text: term.message(text, "warn"), on_retry=retry_notice(term)) as api:
        settings = replace(settings, model=settings.model or api.pick_model())  # once, not per turn
        session = Session(opts, term, api, settings, messages, tools)
        if opts.messages is not None:
            term.message(f"{len(messages)} messages from {make_visible(opts.messages)}", "dim")
        return session.run()


class Collecting:
    """Sink decorator: keeps what the answer said (for the next turn), passes everything on."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.collector = ChatCollector()

    def begin(self) -> None:
        self.inner.begin()

    def write(self, records: list[Record]) -> None:
        self.collector.take(records)
        self.inner.write(records)

    def end(self, outcome: Outcome) -> None:
        self.inner.end(outcome)


class Session:
    def __init__(self, opts: ChatOptions, term: Terminal, api: Api, settings: ResolvedSettings, messages: list[dict[str, Any]], tools: list[Any] | None) -> None:
        self.opts = opts
        self.term = term
        self.api = api
        self.settings = settings
        self.messages = messages
        self.tools = tools
        self.editing = sys.stdin is not None and sys.stdin.isatty() and term.stdin_tty  # readline, else plain lines (tests)
        self.history = history_path()

    def run(self) -> int:
        self._load_history()
        model = make_visible(self.settings.model or "")
        self.term.message(f"chat with {model} at {make_visible(self.settings.api_base)} · /help for commands, Ctrl-D to leave", "dim")
        try:
            while True:
                try:
                    line = self._read_line()
                except EOFError:
                    self._newline()
                    return 0
                except KeyboardInterrupt:
                    self._newline()  # Ctrl-C at the prompt: a fresh line
                    continue
                status = self.handle(line)
                if status is not None:
                    return status
        finally:
            self._save_history()

    def handle(self, line: str) -> int | None:
        """One typed line: a command or a question; an exit status when the session ends."""
        text = line.strip()
        if not text:
            return None
        if text.startswith("/") and not text.startswith("//"):
            return self.command(text)
        return self.turn(line[1:] if text.startswith("//") else line)

    def command(self, text: str) -> int | None:
        name, _, argument = text.partition(" ")
        argument = argument.strip()
        if name in ("/exit", "/quit"):
            return 0
        if name == "/help":
            self.term.message(HELP)
        elif name == "/reset":
            self.messages = [m for m in self.messages[:1] if m.get("role") == "system"]
            self.term.message("the conversation is forgotten" + (" (the system message stays)" if self.messages else ""), "dim")
        elif name == "/system":
            rest = self.messages[1:] if self.messages and self.messages[0].get("role") == "system" else self.messages
            self.messages = with_system(rest, argument) if argument else rest
            self.term.message("system message set" if argument else "no system message", "dim")
        elif name == "/save":
            self.save(argument)
        else:
            self.term.message(f"unknown command {make_visible(shorten(name, 40))}: /help lists them", "warn")
        return None

    def save(self, path: str) -> None:
        if not path:
            self.term.message("/save needs a file name: /save chat.json", "warn")
            return
        try:
            Path(path).expanduser().write_text(json.dumps(self.messages, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            self.term.message(f"cannot write {make_visible(path)}: {exc.strerror}", "error")
            return
        self.term.message(f"{len(self.messages)} messages saved to {make_visible(path)}", "dim")

    def turn(self, text: str) -> int | None:
        """Ask, stream the answer live, keep both when the answer came whole."""
        opts = self.opts
        asked = [*self.messages, {"role": "user", "content": text}]
        body = build_chat_body(self.settings.model or "", asked, opts.request, self.settings, self.tools)
        choices = choices_in(body)
        sink = Collecting(make_sink(opts.output, self.term, choices=choices, logprobs=opts.request.logprobs is not None, usage_asked=opts.request.usage, chat=True, reasoning=opts.reasoning))
        state = ChatState(choices)
        outcome = drive(sink, lambda o: stream_answer(self.api, self.settings, body, sink, o, state, CHAT_PATH), self.settings.model)
        if outcome.stdout_closed:
            return int(ExitStatus.BROKEN_PIPE)
        if outcome.signal is not None and outcome.signal != signal.SIGINT:
            return outcome.status  # SIGTERM, SIGHUP: leave
        if outcome.complete:
            self.messages = [*asked, conversation_message(sink.collector, state)]
            return None
        report(self.term, outcome)
        self.term.message("(not kept in the conversation: ask again)" if outcome.error else "(answer stopped; not kept in the conversation)", "dim")
        return None

    def _read_line(self) -> str:
        if self.editing:
            prompt = "\001\x1b[1;36m\002> \001\x1b[0m\002" if self.term.stdout_colour else "> "
            if self.term.stdout_tty:
                return input(prompt)
            self.term.stderr.write("> ")  # stdout is a file: the prompt goes where the person looks
            self.term.stderr.flush()
            return input()
        if self.term.stdin is None:
            raise EOFError
        raw = self.term.stdin.readline()
        if not raw:
            raise EOFError
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    def _newline(self) -> None:
        if not self.editing:
            return  # the line was not typed on this terminal
        try:
            self.term.write_out(b"\n")
        except BrokenPipeError:
            pass

    def _load_history(self) -> None:
        if not self.editing:
            return
        import readline

        readline.set_history_length(HISTORY_LENGTH)
        try:
            readline.read_history_file(self.history)
        except OSError:
            pass  # none yet

    def _save_history(self) -> None:
        if not self.editing:
            return
        import readline

        try:
            self.history.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            readline.write_history_file(self.history)
        except OSError as exc:
            self.term.message(f"warning: cannot save the history to {self.history}: {exc.strerror}", "warn")


def history_path() -> Path:
    """$XDG_STATE_HOME/acs/history, by default ~/.local/state/acs/history."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "acs" / "history"
