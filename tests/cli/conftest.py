from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from mdl.cli.app import run

from ..helpers import use_backend


@pytest.fixture(params=["embedded"])
def backend(request: pytest.FixtureRequest) -> str:
    """What the CLI prints is the same on every backend, and tests/contract covers the backends: CLI tests
    run on the embedded one. A test of something backend-specific asks for them all with
    ``@pytest.mark.parametrize("backend", BACKENDS, indirect=True)``."""
    return use_backend(request)


@pytest.fixture
def cli(backend_env, monkeypatch):
    """Run a command line in-process as the ``mdl`` binary does (``mdl.cli.app.run``), against the test
    backend: cli("push", ...) -> Outcome (stdout, stderr, exit_code)."""
    for k, v in backend_env.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None) -> Outcome:
        with runner.isolation(env=env) as (out, err, _):
            try:
                code = run(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            return Outcome(out.getvalue().decode(), err.getvalue().decode(), code)

    return invoke


@dataclass
class Outcome:
    stdout: str
    stderr: str
    exit_code: int
