"""The shell completion scripts in completions/ (README "Shell completion")."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import typer

from acs_cli.cli import app
from acs_cli.shell_completion import FILES, script
from tests.cliutil import REPO_ROOT, assert_failure
from tests.helpers import run_acs

SHELLS = ["bash", "zsh", "fish"]
COMPLETIONS_DIR = REPO_ROOT / "completions"


def app_options() -> dict[str, list[str]]:
    """Every option name of every command of the Typer app, by command."""
    group = typer.main.get_command(app)
    out: dict[str, list[str]] = {}
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if command.hidden:
            continue
        names: list[str] = []
        for param in command.params:
            if param.param_type_name == "option":
                names += [*param.opts, *param.secondary_opts]
        names += ["--help", "-h"]
        out[name] = names
    return out


@pytest.mark.parametrize("shell", SHELLS)
def test_file_matches_the_generator(shell: str) -> None:
    path = COMPLETIONS_DIR / FILES[shell]
    assert path.exists(), f"completions/{FILES[shell]} is missing: regenerate with `acs completion {shell} > completions/{FILES[shell]}`"
    assert path.read_text() == script(shell, typer.main.get_command(app)), (
        f"completions/{FILES[shell]} is stale: regenerate with `acs completion {shell} > completions/{FILES[shell]}`"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_completion_command_prints_the_file(shell: str) -> None:
    r = run_acs(["completion", shell])
    assert r.returncode == 0, r.stderr
    assert r.stdout == (COMPLETIONS_DIR / FILES[shell]).read_text()


def test_completion_for_an_unknown_shell_is_usage_error() -> None:
    r = run_acs(["completion", "tcsh"])
    _, hint = assert_failure(r, 2)
    assert "bash" in hint and "zsh" in hint and "fish" in hint


@pytest.mark.parametrize("shell", SHELLS)
def test_every_command_and_option_is_in_the_script(shell: str) -> None:
    text = script(shell, typer.main.get_command(app))
    for command, options in app_options().items():
        assert command in text, f"command {command!r} missing from the {shell} script"
        for opt in options:
            if shell == "fish":
                needle = f"-l {opt[2:]}" if opt.startswith("--") else f"-s {opt[1:]}"
            else:
                needle = opt
            assert needle in text, f"{command} {opt} missing from the {shell} script"
    for opt in ("--version", "-V"):
        needle = {"fish": "-l version" if opt == "--version" else "-s V"}.get(shell, opt)
        assert needle in text


def test_bash_syntax() -> None:
    path = COMPLETIONS_DIR / FILES["bash"]
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_syntax() -> None:
    done = subprocess.run(["zsh", "-n", str(COMPLETIONS_DIR / FILES["zsh"])], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_syntax() -> None:
    done = subprocess.run(["fish", "--no-execute", str(COMPLETIONS_DIR / FILES["fish"])], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def bash_complete(words: list[str], tmp_path) -> list[str]:
    """Source the bash script, complete the last of `words`, return COMPREPLY."""
    line = " ".join(f"'{w}'" for w in words)
    probe = (
        f'source "{COMPLETIONS_DIR / FILES["bash"]}"\n'
        f"COMP_WORDS=({line})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_acs\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", probe], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


def test_bash_completes_commands(tmp_path) -> None:
    assert set(bash_complete(["acs", ""], tmp_path)) >= {"complete", "replay", "completion"}
    assert bash_complete(["acs", "rep"], tmp_path) == ["replay"]


def test_bash_completes_options(tmp_path) -> None:
    assert sorted(bash_complete(["acs", "complete", "--max"], tmp_path)) == ["--max-time", "--max-tokens"]
    assert bash_complete(["acs", "complete", "--max-to"], tmp_path) == ["--max-tokens"]
    assert "--delay" in bash_complete(["acs", "replay", "--"], tmp_path)


def test_bash_completes_shells_and_files(tmp_path) -> None:
    assert bash_complete(["acs", "completion", ""], tmp_path) == ["bash", "zsh", "fish"]
    (tmp_path / "capture.sse").write_bytes(b"")
    assert bash_complete(["acs", "replay", "cap"], tmp_path) == ["capture.sse"]
