"""`acs … --help` for a newcomer: every command has examples that fit in 80 columns and run as
pasted, options sit in named panels, no Click range noise, and the top level names the first steps.

Commands are found by walking the app, so a command added later is held to the same rules."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
import typer

from acs_cli.cli import app
from acs_cli.cli_help import CONNECTION, OUTPUT, PANELS, REQUEST, AcsCommand, AcsGroup
from tests.helpers import REPO_ROOT, acs_env, run_acs

ROOT = typer.main.get_command(app)


def command_paths(group=ROOT, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under the app, as the words that name it."""
    out = []
    for name, command in group.commands.items():
        if command.hidden:
            continue
        out.append((*prefix, name))
        if hasattr(command, "commands"):
            out += command_paths(command, (*prefix, name))
    return out


def command_at(path: tuple[str, ...]):
    command = ROOT
    for name in path:
        command = command.commands[name]
    return command


PATHS = command_paths()
IDS = [" ".join(p) for p in PATHS]


def help_of(path: tuple[str, ...], columns: int = 80) -> str:
    r = run_acs([*path, "--help"], env={"COLUMNS": str(columns)})
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


def section(text: str, title: str) -> list[str]:
    """The lines of one `Title:` section of a help text (up to the next blank line)."""
    lines = text.splitlines()
    start = lines.index(f"{title}:")
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1 : end]


def test_every_command_is_found() -> None:
    assert {"complete", "replay", "models", "doctor", "completion", "config show", "config path"} <= set(IDS)


# ------------------------------------------------------------------------------- examples


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_every_command_has_examples(path: tuple[str, ...]) -> None:
    examples = section(help_of(path), "Examples")
    assert examples, f"`acs {' '.join(path)} --help` has no examples"
    assert any(f"acs {' '.join(path)}" in line for line in examples)


@pytest.mark.parametrize("path", [(), *PATHS], ids=["acs", *IDS])
@pytest.mark.parametrize("columns", [80, 200])
def test_no_help_line_is_wider_than_80_columns(path: tuple[str, ...], columns: int) -> None:
    text = help_of(path, columns)
    wide = [line for line in text.splitlines() if len(line) > 80]
    assert not wide, wide


@pytest.mark.parametrize("path", [(), *PATHS], ids=["acs", *IDS])
def test_no_range_noise_and_no_markup(path: tuple[str, ...]) -> None:
    text = help_of(path)
    assert not re.search(r"[<>]=|\bx[<>]|\[default: |\[required\]", text), text
    assert "\x1b" not in text


def example_lines(text: str) -> list[str]:
    out = []
    for title in ("Examples", "First steps"):
        if f"\n{title}:\n" in text:
            out += [line.strip() for line in section(text, title)]
    return out


def acs_invocations(line: str) -> list[list[str]]:
    """The argument lists of each `acs …` in a shell line (split at |, &&, ;), comments,
    redirections and leading VAR=value assignments left out."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("|", "||", "&&", ";"):
            commands.append([])
        else:
            commands[-1].append(token)
    out = []
    for words in commands:
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            words = words[1:]
        cut = next((i for i, w in enumerate(words) if w[:1] in "<>"), len(words))
        if words[:1] == ["acs"]:
            out.append(words[1:cut])
    return out


def all_examples() -> list[list[str]]:
    return [args for path in [(), *PATHS] for line in example_lines(help_of(path)) for args in acs_invocations(line)]


@pytest.mark.parametrize("line", [line for path in [(), *PATHS] for line in example_lines(help_of(path))])
def test_example_lines_are_shell_that_can_be_pasted(line: str) -> None:
    assert not line.startswith("$"), "no prompt sign: the line is pasted as it is"
    assert "…" not in line, "no placeholder ellipsis in a command"
    done = subprocess.run(["bash", "-n", "-c", line], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_the_example_reader_splits_shell_lines() -> None:
    assert acs_invocations('cat x | acs complete "a b" > out.txt  # note') == [["complete", "a b"]]
    assert acs_invocations("ACS_MODEL=m acs config show && acs replay x.sse") == [["config", "show"], ["replay", "x.sse"]]
    assert acs_invocations("export ACS_API_KEY=...") == []


def test_every_example_parses() -> None:
    """Each `acs …` in an example names a command that exists, with flags it accepts."""
    examples = all_examples()
    assert len(examples) >= 25
    for args in examples:
        group, words = ROOT, list(args)
        parent = ROOT.make_context("acs", words[:1], resilient_parsing=True)
        while True:
            assert words, f"`acs {shlex.join(args)}` names no command"
            name, words = words[0], words[1:]
            command = group.commands.get(name)
            assert command is not None, f"`acs {shlex.join(args)}`: no command {name!r}"
            if not hasattr(command, "commands"):
                command.make_context(name, words, parent=parent).close()  # raises on a flag it does not take
                break
            group, parent = command, command.make_context(name, words[:1], parent=parent, resilient_parsing=True)


# --------------------------------------------------------------------------------- panels


def test_complete_help_has_request_output_and_connection_panels() -> None:
    text = help_of(("complete",))
    titles = [line[:-1] for line in text.splitlines() if re.fullmatch(r"[A-Z][a-z]+:", line)]
    assert titles[:5] == ["Arguments", REQUEST, OUTPUT, CONNECTION, "Options"]
    assert any("--max-tokens" in line for line in section(text, REQUEST))
    assert any("--param" in line for line in section(text, REQUEST))
    assert any("--json" in line for line in section(text, OUTPUT))
    assert any("--raw" in line for line in section(text, OUTPUT))
    assert any("--timeout" in line for line in section(text, CONNECTION))
    assert any("--retries" in line for line in section(text, CONNECTION))
    assert any("--help" in line for line in section(text, "Options"))


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_every_option_sits_in_a_panel(path: tuple[str, ...]) -> None:
    """New commands (chat, bench, batch …) reuse the panel constants of acs_cli.cli_help."""
    command = command_at(path)
    assert isinstance(command, AcsCommand | AcsGroup), f"`acs {' '.join(path)}` should be declared with cls=AcsCommand"
    for param in command.params:
        if param.param_type_name == "option":
            assert getattr(param, "rich_help_panel", None) in PANELS, f"{param.opts} has no panel"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_options_state_their_defaults_in_words(path: tuple[str, ...]) -> None:
    """Click's `[default: 2]` is left out, so a default worth knowing is in the help text."""
    for param in command_at(path).params:
        if param.param_type_name == "option" and param.default not in (None, False, (), []):
            assert "default" in (param.help or ""), f"{param.opts} has default {param.default!r} but its help does not say so"


def test_panels_align_in_one_column() -> None:
    text = help_of(("complete",))
    starts = set()
    for title in ("Arguments", REQUEST, OUTPUT, CONNECTION, "Options"):
        for line in section(text, title):
            found = re.match(r"  \S.*?\S {2,}(?=\S)", line)
            if found:
                starts.add(found.end())
    assert len(starts) == 1, starts


# ------------------------------------------------------------------------------ top level


def test_top_level_help_names_the_first_steps() -> None:
    text = help_of(())
    steps = "\n".join(section(text, "First steps"))
    assert "acs replay" in steps and "no server" in steps
    assert "ACS_BASE_URL=" in steps
    assert "acs doctor" in steps
    assert "acs complete" in steps
    commands = "\n".join(section(text, "Commands"))
    for name in ("complete", "replay", "models", "doctor", "config", "completion"):
        assert re.search(rf"^  {name} ", commands, re.M), name
    assert "..." not in commands, "short help is written, not cut by Click"


def test_usage_line_names_arguments_in_capitals() -> None:
    assert help_of(("completion",)).startswith("Usage: acs completion [OPTIONS] SHELL\n")
    assert help_of(("complete",)).startswith("Usage: acs complete [OPTIONS] [PROMPT]\n")


def test_help_text_brackets_are_shown_as_written() -> None:
    """No markup interpretation: `[env ACS_MODEL; …]` in a help text stays literal."""
    assert "[env ACS_MODEL;" in help_of(("complete",))


def test_help_does_not_load_rich_or_httpx() -> None:
    """What keeps `acs --help` fast (~0.1 s; tests/bench/bench.py holds the target): plain Click
    help, no Rich, no HTTP stack."""
    probe = (
        "import sys\n"
        "from acs_cli.__main__ import main\n"
        "for args in (['--help'], ['complete', '--help'], ['config', 'show', '--help']):\n"
        "    main(args)\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'httpx', 'pydantic', 'asyncio'})\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=acs_env(), cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stderr, done.stderr
