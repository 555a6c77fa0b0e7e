"""Shared fixtures: a scripted loopback server and the wire scenarios."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scenarios import load_scenarios
from tests.sse_server import ScriptedServer


@pytest.fixture(autouse=True)
def fresh_secrets() -> Iterator[None]:
    """Each test starts with no remembered secrets, as a new process would."""
    from acs_cli.secrets import forget_secrets

    forget_secrets()
    yield


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A started ScriptedServer on 127.0.0.1 (random port); closed after the test."""
    srv = ScriptedServer()
    try:
        yield srv
    finally:
        srv.close()
    assert not srv.errors, "a route callable raised:\n" + "\n".join(srv.errors)


@pytest.fixture(scope="session")
def wire_scenarios() -> list[dict]:
    """Every scenario of tests/fixtures/wire_scenarios.json, decoded (see tests/scenarios.py)."""
    return load_scenarios()
