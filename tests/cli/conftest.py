from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mdl.cli.app import app

from ..helpers import use_backend


@pytest.fixture(params=["embedded"])
def backend(request: pytest.FixtureRequest) -> str:
    """What the CLI prints is the same on every backend, and tests/contract covers the backends: CLI tests
    run on the embedded one. A test of something backend-specific asks for them all with
    ``@pytest.mark.parametrize("backend", BACKENDS, indirect=True)``."""
    return use_backend(request)


@pytest.fixture
def cli(backend_env, monkeypatch):
    """Invoke the Typer app in-process against the test backend: cli("push", ...) -> Result."""
    for k, v in backend_env.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None):
        return runner.invoke(app, list(args), env=env)

    return invoke
