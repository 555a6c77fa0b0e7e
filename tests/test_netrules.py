"""acs_cli.netrules: loopback by address, the proxy the environment asks for, unusable proxies as
configuration errors, the CA bundle, and the retry policy; then the same rules seen through acs."""

from __future__ import annotations

import pytest

from acs_cli import netrules
from acs_cli.errors import ConfigError
from tests.cliutil import KEY, assert_failure, text_reply
from tests.helpers import run_acs
from tests.sse_server import ScriptedServer

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.8.9.10", "127.255.255.254", "::1", "[::1]", "::ffff:127.0.0.1", "[::ffff:127.1.2.3]", "0:0:0:0:0:0:0:1", "localhost"],
)
def test_loopback_is_decided_by_address(host: str) -> None:
    assert netrules.is_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1.evil.com", "localhost.evil.com", "evil-127.0.0.1", "10.0.0.1", "0.0.0.0", "::", "::ffff:10.0.0.1", "example.com", "", "128.0.0.1"],
)
def test_names_that_only_look_like_loopback_are_not(host: str) -> None:
    assert not netrules.is_loopback(host)


@pytest.mark.parametrize(
    "env, url, expected",
    [
        ({"HTTP_PROXY": "http://p:3128"}, "http://api.test/v1", "http://p:3128"),
        ({"HTTP_PROXY": "p:3128"}, "http://api.test/v1", "http://p:3128"),
        ({"HTTP_PROXY": "http://p:3128"}, "https://api.test/v1", None),
        ({"HTTPS_PROXY": "http://p:3128"}, "https://api.test/v1", "http://p:3128"),
        ({"ALL_PROXY": "http://p:3128"}, "https://api.test/v1", "http://p:3128"),
        ({"HTTP_PROXY": "http://p:3128", "NO_PROXY": "api.test"}, "http://api.test/v1", None),
        ({"HTTP_PROXY": "http://p:3128", "NO_PROXY": ".test"}, "http://api.test/v1", None),
        ({"HTTP_PROXY": "http://p:3128", "NO_PROXY": "other.test"}, "http://api.test/v1", "http://p:3128"),
        ({}, "http://api.test/v1", None),
    ],
)
def test_the_proxy_comes_from_the_environment(no_proxies: pytest.MonkeyPatch, env: dict[str, str], url: str, expected: str | None) -> None:
    for name, value in env.items():
        no_proxies.setenv(name, value)
    assert netrules.proxy_url(url) == expected


def test_the_proxy_address_and_its_shown_form_hide_credentials(no_proxies: pytest.MonkeyPatch) -> None:
    no_proxies.setenv("HTTPS_PROXY", "http://user:s3cret@proxy.test:8080")
    assert netrules.proxy_address("https://api.test/v1") == ("proxy.test", 8080)
    assert netrules.shown_proxy("http://user:s3cret@proxy.test:8080") == "http://proxy.test:8080"


@pytest.mark.parametrize("proxy", ["ftp://p:21", "socks4://p:1080", "gopher://p"])
def test_unsupported_proxy_schemes_are_configuration_errors(proxy: str) -> None:
    with pytest.raises(ConfigError) as caught:
        netrules.check_proxy(proxy)
    assert caught.value.hint and "NO_PROXY" in caught.value.hint


def test_a_socks_proxy_without_socksio_is_a_configuration_error() -> None:
    try:
        import socksio  # type: ignore[import-not-found]  # noqa: F401

        pytest.skip("socksio is installed")
    except ImportError:
        pass
    with pytest.raises(ConfigError, match="socksio"):
        netrules.check_proxy("socks5://user:pw@p:1080")


def test_the_ca_bundle_follows_ssl_cert_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert netrules.ca_bundle() in ("certifi", "the system's")
    default = netrules.ssl_context()
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    assert netrules.ca_bundle() == f"SSL_CERT_DIR={tmp_path}"
    assert netrules.ssl_context() is not default
    monkeypatch.delenv("SSL_CERT_DIR")
    assert netrules.ssl_context() is default  # built once per setting


@pytest.mark.parametrize(
    "value, expected", [("1", 1.0), ("0", 0.0), ("2.5", 2.5), ("3600", 60.0), ("-5", 0.0), ("nan", None), ("soon", None), ("", None), (None, None)]
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert netrules.retry_after(value) == expected


def test_retry_after_as_an_http_date() -> None:
    assert netrules.retry_after("Sun, 29 Nov 2026 00:00:30 GMT", now=lambda: 1795910400.0) == 30.0


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    assert [netrules.backoff(a, rand=lambda: 0.0) for a in (1, 2, 3, 4, 5, 6)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert netrules.backoff(1, rand=lambda: 0.999) < 0.5
    assert [s for s in (429, 500, 502, 503, 504) if netrules.retryable_status(s)] == [429, 502, 503, 504]


# --------------------------------------------------------------------------- through acs


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:9", "ftp://127.0.0.1:21"])
def test_acs_refuses_an_unusable_proxy_as_a_configuration_error(proxy: str) -> None:
    try:
        import socksio  # type: ignore[import-not-found]  # noqa: F401

        if proxy.startswith("socks"):
            pytest.skip("socksio is installed")
    except ImportError:
        pass
    r = run_acs(["complete", "-m", "m", "hi"], env={"ACS_API_BASE": "http://api.example.test/v1", "HTTP_PROXY": proxy, "NO_PROXY": None})
    message, hint = assert_failure(r, 3)
    assert "proxy" in message and "NO_PROXY" in hint


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("localhost", False), ("127.0.0.1.nip.invalid", True)])
def test_the_plain_http_key_warning_decides_loopback_by_address(server: ScriptedServer, host: str, warned: bool) -> None:
    base = f"http://{host}:{server.port}/v1"
    server.route("POST", "/v1/completions", text_reply([" ok"]))
    server.route("POST", f"{base}/completions", text_reply([" ok"]))
    # a name that is not loopback goes through a proxy: the test server plays it
    env = {"ACS_API_BASE": base, "ACS_API_KEY": KEY, "ACS_MODEL": "m", "HTTP_PROXY": server.origin, "NO_PROXY": "127.0.0.1,localhost"}
    r = run_acs(["complete", "hi"], env=env)
    assert r.returncode == 0, r.stderr
    assert ("sent over plain http://" in r.stderr) is warned
