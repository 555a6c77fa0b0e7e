"""The config file and its profiles, end to end: acs as a subprocess against the loopback server."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import pytest

from tests.cliutil import assert_failure, closed_port, text_reply
from tests.helpers import run_acs
from tests.sse_server import ScriptedServer

KEY = "sk-config-test-key-98765"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / ".config" / "acs").mkdir(parents=True)
    return tmp_path


def write_config(home: Path, text: str, mode: int = 0o600) -> Path:
    path = home / ".config" / "acs" / "config.toml"
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def complete(server: ScriptedServer, home: Path, *args: str, env: dict | None = None):
    server.route("POST", "/v1/completions", text_reply([" ok"]))
    return run_acs(["complete", *args, "hi"], env=env or {}, home=home)


def posted(server: ScriptedServer) -> dict:
    return [r for r in server.requests if r.method == "POST"][-1].json()


def test_config_path_follows_xdg_and_acs_config(home: Path) -> None:
    assert run_acs(["config", "path"], home=home).stdout.strip() == str(home / ".config" / "acs" / "config.toml")
    r = run_acs(["config", "path"], env={"XDG_CONFIG_HOME": str(home / "xdg")}, home=home)
    assert r.stdout.strip() == str(home / "xdg" / "acs" / "config.toml")
    r = run_acs(["config", "path"], env={"ACS_CONFIG": str(home / "elsewhere.toml")}, home=home)
    assert r.stdout.strip() == str(home / "elsewhere.toml")


def test_file_defaults_profile_env_and_flags_in_that_order(server: ScriptedServer, home: Path) -> None:
    write_config(
        home,
        f"""
        api_base = "http://127.0.0.1:1/v1"
        model = "file-model"
        max_tokens = 11
        temperature = 0.5

        [profiles.dev]
        api_base = "{server.base_url}"
        model = "profile-model"
        max_tokens = 22
        """,
    )
    r = complete(server, home, "--profile", "dev")
    assert r.returncode == 0, r.stderr
    body = posted(server)
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("profile-model", 22, 0.5)

    r = complete(server, home, "--profile", "dev", env={"ACS_MODEL": "env-model", "ACS_MAX_TOKENS": "33"})
    assert r.returncode == 0, r.stderr
    assert (posted(server)["model"], posted(server)["max_tokens"]) == ("env-model", 33)

    r = complete(server, home, "--profile", "dev", "-m", "flag-model", "--max-tokens", "44", env={"ACS_MODEL": "env-model"})
    assert r.returncode == 0, r.stderr
    assert (posted(server)["model"], posted(server)["max_tokens"]) == ("flag-model", 44)


def test_profile_from_env_and_from_the_file(server: ScriptedServer, home: Path) -> None:
    write_config(
        home,
        f"""
        profile = "a"
        [profiles.a]
        api_base = "{server.base_url}"
        model = "model-a"
        [profiles.b]
        api_base = "{server.base_url}"
        model = "model-b"
        """,
    )
    assert complete(server, home).returncode == 0
    assert posted(server)["model"] == "model-a"
    assert complete(server, home, env={"ACS_PROFILE": "b"}).returncode == 0
    assert posted(server)["model"] == "model-b"
    assert complete(server, home, "--profile", "a", env={"ACS_PROFILE": "b"}).returncode == 0
    assert posted(server)["model"] == "model-a"


def test_unknown_profile_lists_the_known_ones(home: Path) -> None:
    write_config(home, '[profiles.alpha]\nmodel = "m"\n[profiles.beta]\nmodel = "m"\n')
    r = run_acs(["complete", "--profile", "gamma", "hi"], home=home)
    assert r.returncode == 3
    assert "no profile 'gamma'" in r.stderr and "alpha, beta" in r.stderr and "hint: " in r.stderr


def test_profile_request_defaults_and_params(server: ScriptedServer, home: Path) -> None:
    write_config(
        home,
        f"""
        [profiles.p]
        api_base = "{server.base_url}"
        model = "m"
        stop = "###"
        seed = 7
        params = {{ top_k = 40, ignore_eos = true }}
        """,
    )
    assert complete(server, home, "--profile", "p").returncode == 0
    body = posted(server)
    assert body["stop"] == ["###"] and body["seed"] == 7 and body["top_k"] == 40 and body["ignore_eos"] is True
    assert complete(server, home, "--profile", "p", "--stop", "!!", "--param", "top_k=5").returncode == 0
    body = posted(server)
    assert body["stop"] == ["!!"] and body["top_k"] == 5 and body["ignore_eos"] is True


def test_api_key_command(server: ScriptedServer, home: Path) -> None:
    write_config(home, f'api_base = "{server.base_url}"\nmodel = "m"\napi_key_command = "echo {KEY}"\n')
    r = complete(server, home)
    assert r.returncode == 0, r.stderr
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_failing_api_key_command_is_a_config_error_without_its_output(home: Path) -> None:
    (home / "secret.txt").write_text("leaked-secret")
    write_config(home, f'model = "m"\napi_key_command = "sh -c \'cat {home}/secret.txt; exit 3\'"\n')
    r = run_acs(["complete", "hi"], home=home)
    assert r.returncode == 3
    assert "api_key_command" in r.stderr and "exit status 3" in r.stderr
    assert "leaked-secret" not in r.stderr + r.stdout


def test_api_key_file(server: ScriptedServer, home: Path) -> None:
    key_file = home / "key.txt"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    write_config(home, f'api_base = "{server.base_url}"\nmodel = "m"\napi_key_file = "{key_file}"\n')
    r = complete(server, home)
    assert r.returncode == 0, r.stderr
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert "warning" not in r.stderr


def test_api_key_file_readable_by_others_warns(server: ScriptedServer, home: Path) -> None:
    key_file = home / "key.txt"
    key_file.write_text(KEY)
    key_file.chmod(0o644)
    write_config(home, f'api_base = "{server.base_url}"\nmodel = "m"\napi_key_file = "{key_file}"\n')
    r = complete(server, home)
    assert r.returncode == 0
    assert "can be read by others" in r.stderr and KEY not in r.stderr


def test_missing_api_key_file(home: Path) -> None:
    write_config(home, 'model = "m"\napi_key_file = "~/nope/key.txt"\n')
    r = run_acs(["complete", "hi"], home=home)
    assert r.returncode == 3 and "api_key_file" in r.stderr and "hint: " in r.stderr


def test_env_key_wins_over_the_file(server: ScriptedServer, home: Path) -> None:
    write_config(home, f'api_base = "{server.base_url}"\nmodel = "m"\napi_key_command = "false"\n')
    r = complete(server, home, env={"ACS_API_KEY": "sk-from-env"})
    assert r.returncode == 0, r.stderr
    assert server.requests[-1].headers["authorization"] == "Bearer sk-from-env"


@pytest.mark.parametrize("mode,warns", [(0o644, True), (0o600, False)])
def test_plain_key_in_the_file(server: ScriptedServer, home: Path, mode: int, warns: bool) -> None:
    write_config(home, f'api_base = "{server.base_url}"\nmodel = "m"\napi_key = "{KEY}"\n', mode=mode)
    r = complete(server, home)
    assert r.returncode == 0, r.stderr
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert ("others can read it" in r.stderr) is warns
    assert KEY not in r.stderr + r.stdout


def test_malformed_toml_names_the_file_and_line(home: Path) -> None:
    path = write_config(home, 'model = "m"\n\n[profiles.x\napi_base = "http://h/v1"\n')
    r = run_acs(["complete", "hi"], home=home)
    assert r.returncode == 3
    assert f"{path} line 3" in r.stderr and "hint: " in r.stderr


def test_unknown_key_names_the_line(home: Path) -> None:
    path = write_config(home, 'model = "m"\n[profiles.x]\nmax_token = 5\n')
    r = run_acs(["complete", "--profile", "x", "hi"], home=home)
    assert r.returncode == 3
    assert "unknown setting 'max_token'" in r.stderr and f"{path} [profiles.x] line 3" in r.stderr


def test_wrong_type_names_the_file_and_line(home: Path) -> None:
    path = write_config(home, '[profiles.x]\nmodel = "m"\ntimeout = "soon"\n')
    r = run_acs(["complete", "--profile", "x", "hi"], home=home)
    assert r.returncode == 3
    assert f"timeout in {path} [profiles.x] line 3" in r.stderr and "hint: " in r.stderr


def test_config_show_lists_every_setting_with_its_source(home: Path) -> None:
    write_config(
        home,
        f"""
        max_tokens = 99
        [profiles.dev]
        api_base = "http://dev.example:8000/v1"
        api_key = "{KEY}"
        """,
    )
    r = run_acs(["config", "show", "--profile", "dev"], env={"ACS_MODEL": "env-model"}, home=home)
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}
    # the row carries the canonical name base_url; the file used its alias api_base
    assert "http://dev.example:8000/v1" in lines["base_url"] and "(profile dev)" in lines["base_url"]
    assert "env-model" in lines["model"] and "env ACS_MODEL" in lines["model"]
    assert "99" in lines["max_tokens"] and "file defaults" in lines["max_tokens"]
    assert "600" in lines["timeout"] and "(default)" in lines["timeout"]
    # the key: whether it is set, where from and its length, never any of its characters
    assert f"set, {len(KEY)} characters" in lines["api_key"] and "(profile dev)" in lines["api_key"]
    assert KEY not in r.stdout + r.stderr
    assert not any(KEY[i : i + 4] in lines["api_key"] for i in range(len(KEY) - 3))
    assert "\x1b" not in r.stdout


def test_no_config_file_is_fine(server: ScriptedServer, home: Path) -> None:
    r = complete(server, home, env={"ACS_API_BASE": server.base_url, "ACS_MODEL": "m"})
    assert r.returncode == 0, r.stderr
    r = run_acs(["config", "show"], home=home)
    assert r.returncode == 0 and "(none)" in r.stdout


def test_the_file_is_private_by_the_checks_own_reading(home: Path) -> None:
    path = write_config(home, 'model = "m"\n', mode=0o600)
    assert not os.stat(path).st_mode & (stat.S_IRGRP | stat.S_IROTH)


# ------------------------------------------------------------------------------------ names, secrets, bad input end to end
# (the rules are tested in-process in tests/test_settings_*.py; these check the process's shape)


def test_canonical_names_and_aliases_reach_the_server(server: ScriptedServer, home: Path) -> None:
    write_config(home, f'base_url = "{server.base_url}"\nmodel = "m"\n')
    assert complete(server, home).returncode == 0
    r = complete(server, home, env={"ACS_BASE_URL": server.base_url, "ACS_API_BASE": "http://127.0.0.1:1/v1"})
    assert r.returncode == 0, r.stderr  # the canonical variable wins over its alias


def test_openai_key_with_openai_base_url(server: ScriptedServer, home: Path) -> None:
    r = complete(server, home, "-m", "m", env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY})
    assert r.returncode == 0, r.stderr
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in r.stderr


def test_openai_key_is_not_sent_to_an_unpaired_server(server: ScriptedServer, home: Path) -> None:
    r = complete(server, home, "-m", "m", env={"ACS_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY})
    assert r.returncode == 0, r.stderr
    assert "authorization" not in server.requests[-1].headers
    shown = run_acs(["config", "show"], env={"ACS_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY}, home=home)
    assert "OPENAI_API_KEY is set but not used" in shown.stdout and KEY not in shown.stdout


def test_config_show_masks_url_credentials(home: Path) -> None:
    r = run_acs(["config", "show"], env={"ACS_BASE_URL": "http://alice:hunter2@h:1/v1"}, home=home)
    assert r.returncode == 0, r.stderr
    assert "http://***@h:1/v1" in r.stdout and "hunter2" not in r.stdout + r.stderr
    assert "(env ACS_BASE_URL)" in r.stdout


def test_url_credentials_masked_in_a_connect_error(home: Path) -> None:
    base = f"http://alice:hunter2@127.0.0.1:{closed_port()}/v1"
    r = run_acs(["complete", "--retries", "0", "-m", "m", "hi"], env={"ACS_BASE_URL": base}, home=home)
    assert_failure(r, 4)
    assert "hunter2" not in r.stderr + r.stdout


def test_url_credentials_and_a_key_is_a_config_error(home: Path) -> None:
    r = run_acs(["complete", "hi"], env={"ACS_BASE_URL": "http://alice:hunter2@h:1/v1", "ACS_API_KEY": KEY}, home=home)
    message, _ = assert_failure(r, 3)
    assert "env ACS_BASE_URL" in message and "env ACS_API_KEY" in message
    assert "hunter2" not in r.stderr and KEY not in r.stderr


@pytest.mark.parametrize(
    "env,config,names",
    [
        ({"ACS_MODEL": "m\udcff"}, None, "ACS_MODEL"),  # bytes that are not UTF-8 in the environment
        ({"ACS_API_KEY": KEY + "é"}, None, "ACS_API_KEY"),
        ({"ACS_TEMPERATURE": "nan"}, None, "ACS_TEMPERATURE"),
        ({}, b'model = "caf\xe9"\n', "line 1"),
        ({}, b"temperature = inf\n", "temperature in"),
        ({}, b"params = { x = nan }\n", "params in"),
        ({}, b'api_key_file = "/dev/zero"\n', "api_key_file"),
        ({}, b'api_key_command = "yes"\n', "api_key_command"),
    ],
)
def test_local_bad_input_is_a_config_error_not_an_internal_one(home: Path, env: dict, config: bytes | None, names: str) -> None:
    if config is not None:
        path = home / ".config" / "acs" / "config.toml"
        path.write_bytes(config)
        path.chmod(0o600)
    model = [] if "ACS_MODEL" in env else ["-m", "m"]
    r = run_acs(["complete", *model, "hi"], env=env, home=home)
    message, _ = assert_failure(r, 3)
    assert names in message and "internal error" not in r.stderr
    assert KEY not in r.stderr
