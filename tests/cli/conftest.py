from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mdl.cli.app import app


@pytest.fixture
def cli(backend_env, monkeypatch):
    """Invoke the Typer app in-process against the test backend: cli("push", ...) -> Result."""
    for k, v in backend_env.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None):
        return runner.invoke(app, list(args), env=env)

    return invoke
