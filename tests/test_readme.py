"""The README's shell blocks are true: the test command is what CI runs, the install-and-run
command works on a fresh copy of the project, and every `acs …` example parses."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import typer

from acs_cli.cli import app
from tests.cliutil import REPO_ROOT
from tests.helpers import acs_env

README = REPO_ROOT / "README.md"
SAMPLE_START = " It’s fast."
SAMPLE_USAGE = "9 prompt + 80 completion = 89 tokens · finish: length"


def sh_blocks(text: str | None = None) -> list[str]:
    text = README.read_text() if text is None else text
    return re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M)


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def command_lines(block: str) -> list[str]:
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_readme_has_the_blocks() -> None:
    blocks = sh_blocks()
    assert len(blocks) >= 3
    assert sh_blocks(section("Install and run"))
    assert sh_blocks(section("Use"))


def test_readme_test_command_is_what_ci_runs() -> None:
    tests_block = [b for b in sh_blocks(section("Install and run")) if "pytest" in b]
    assert len(tests_block) == 1, "the README should have one block with the test command"
    readme_cmd = command_lines(tests_block[0])
    assert len(readme_cmd) == 1
    ci_lines = command_lines((REPO_ROOT / ".ci" / "run").read_text())
    assert ci_lines[-1] == readme_cmd[0]


def project_files() -> list[str]:
    """The files a fresh clone would hold: tracked plus untracked-but-not-ignored (so the test
    also covers work not yet committed)."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git work tree")
    return [name for name in done.stdout.decode().split("\0") if name and (REPO_ROOT / name).is_file()]


def fresh_copy(copy: Path) -> Path:
    """The project as a fresh clone would have it, in `copy`."""
    for name in project_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    return copy


def test_install_and_run_command_works_on_a_fresh_copy(tmp_path: Path) -> None:
    blocks = [b for b in sh_blocks(section("Install and run")) if "acs replay" in b]
    assert len(blocks) == 1
    command = command_lines(blocks[0])
    assert len(command) == 1
    copy = fresh_copy(tmp_path / "acs")
    # a person's environment: PATH (for python3) and HOME, no ACS_API_BASE, and pip's own settings
    env = acs_env({"ACS_BASE_URL": None, "ACS_API_BASE": None, "PYTHONPATH": None}, home=tmp_path)
    for name, value in os.environ.items():
        if name.startswith("PIP_"):
            env[name] = value
    done = subprocess.run(
        ["bash", "-c", command[0]], cwd=copy, env=env, capture_output=True, timeout=300, stdin=subprocess.DEVNULL
    )
    out = done.stdout.decode("utf-8", "replace")
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, err[-3000:]
    assert out.startswith(SAMPLE_START), out[:300]
    assert SAMPLE_USAGE in err
    assert (copy / ".venv" / "bin" / "acs").exists()
    # the command left `acs` runnable by name: it called it so, and activation finds this one
    assert re.search(r"(?:then|else|&&|;)\s+acs ", command[0]) and ".venv/bin/acs" not in command[0]
    found = subprocess.run(["bash", "-c", ". .venv/bin/activate && command -v acs"], cwd=copy, env=env, capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == str(copy / ".venv" / "bin" / "acs"), found.stderr


def test_install_section_says_how_to_get_acs_on_the_path() -> None:
    text = " ".join(section("Install and run").split())
    for way in ("pipx install .", "uv tool install .", ". .venv/bin/activate"):
        assert f"`{way}`" in text, way
    assert "`acs doctor`" in text


def _acs_invocations(line: str) -> list[list[str]]:
    """The argument lists of every `acs …` command in a shell line (split at |, &&, ;, redirections)."""
    out = []
    for part in re.split(r"\|\||&&|\||;", line):
        part = part.split("#", 1)[0]
        try:
            words = shlex.split(part)
        except ValueError:
            words = part.split()
        words = [w for w in words if w]
        cut = next((i for i, w in enumerate(words) if w.startswith((">", "<", "2>"))), len(words))
        words = words[:cut]
        if words and words[0] == "acs":
            out.append(words[1:])
    return out


def readme_examples() -> list[list[str]]:
    examples = []
    for block in sh_blocks():
        for line in command_lines(block):
            examples += _acs_invocations(line)
    return examples


def test_readme_use_section_has_examples() -> None:
    examples = [args for b in sh_blocks(section("Use")) for line in command_lines(b) for args in _acs_invocations(line)]
    assert len(examples) >= 5
    assert {args[0] for args in examples} >= {"complete", "replay"}


@pytest.mark.parametrize("args", readme_examples(), ids=lambda a: " ".join(a)[:60])
def test_readme_example_parses(args: list[str]) -> None:
    """Every `acs …` line in the README names an existing command with flags it accepts."""
    group = typer.main.get_command(app)
    name, rest = args[0], args[1:]
    command = group.commands.get(name)  # type: ignore[attr-defined]
    assert command is not None, f"README uses `acs {name}`, which is not a command"
    ctx = command.make_context(name, list(rest), parent=group.make_context("acs", [name], resilient_parsing=True))
    ctx.close()
