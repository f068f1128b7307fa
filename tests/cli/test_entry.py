"""The console script builds only the command it runs: that must not change what a command line does."""

import os
import subprocess
from pathlib import Path

import pytest

from mdl.cli.app import COMMANDS, command_of

from ..helpers import MDL

PYTHON = str(Path(MDL).parent / "python")


@pytest.mark.parametrize("argv, expected", [
    (["list"], "list"),
    (["ls", "lr"], "ls"),
    (["--debug", "push", "lr", "x"], "push"),
    (["--storage", "file:///tmp/x", "--registry=sqlite:///tmp/r.db", "pull", "lr"], "pull"),
    (["--context", "prod", "dev-cluster", "up"], "dev-cluster"),
    (["--storage", "list"], None),  # "list" is the option's value: no command yet
    ([], None),
    (["--help"], None),
    (["--version"], None),
    (["-h", "list"], None),
    (["lsit"], None),  # a typo goes to the full app, which suggests the right name
])
def test_command_of(argv, expected):
    assert command_of(argv) == expected


@pytest.mark.parametrize("argv", [
    ["list", "--help"],
    ["--debug", "promote", "--help"],
    ["dev-cluster", "--help"],
    ["push"],  # missing argument: usage error, exit 2
    ["pull", "lr", "--no-such-option"],
    ["lsit"],
])
def test_the_console_script_behaves_like_the_full_app(argv, tmp_path):
    env = {**os.environ, "COLUMNS": "100", "MDL_STORAGE_URL": f"file://{tmp_path}/models",
           "MDL_REGISTRY_URL": f"sqlite://{tmp_path}/registry.db"}
    env.pop("_MDL_COMPLETE", None)
    lazy = subprocess.run([MDL, *argv], env=env, capture_output=True, text=True)
    full = subprocess.run([PYTHON, "-m", "mdl", *argv], env=env, capture_output=True, text=True)
    assert (lazy.returncode, lazy.stdout, lazy.stderr) == (full.returncode, full.stdout, full.stderr)


def test_every_command_is_registered_by_its_module():
    from mdl.cli.app import make_app

    for name in COMMANDS:
        app = make_app(name)
        names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
        assert name in names, name


def _exit_now(body: str) -> subprocess.CompletedProcess:
    code = "import atexit, sys, threading, time\nfrom mdl.cli.main import exit_now\n" + body
    return subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=30)


def test_exit_now_keeps_the_code_flushes_and_runs_atexit_handlers():
    r = _exit_now("atexit.register(lambda: print('atexit ran', file=sys.stderr))\n"
                  "sys.stdout.write('data, unflushed')\nexit_now(4)")
    assert (r.returncode, r.stdout, r.stderr) == (4, "data, unflushed", "atexit ran\n")


@pytest.mark.parametrize("code, rc, err", [(None, 0, ""), ("a message", 1, "a message\n"), (True, 1, "")])
def test_exit_now_treats_codes_as_sys_exit_does(code, rc, err):
    r = _exit_now(f"exit_now({code!r})")
    assert (r.returncode, r.stderr) == (rc, err)


def test_exit_now_waits_for_a_running_non_daemon_thread():
    r = _exit_now("threading.Thread(target=lambda: (time.sleep(0.3), print('thread done'))).start()\nexit_now(2)")
    assert (r.returncode, r.stdout) == (2, "thread done\n")


def test_a_reader_that_goes_away_gets_no_error_lines(tmp_path):
    env = {**os.environ, "MDL_STORAGE_URL": f"file://{tmp_path}/models", "MDL_REGISTRY_URL": f"sqlite://{tmp_path}/r.db"}
    read, write = os.pipe()
    os.close(read)  # gone before the first byte: every write to stdout fails with EPIPE
    try:
        r = subprocess.run([MDL, "config", "-o", "json"], stdout=write, stderr=subprocess.PIPE, env=env, text=True,
                           timeout=30)
    finally:
        os.close(write)
    assert (r.returncode, r.stderr) == (1, "")
