"""The committed completion scripts are what the app generates now."""

import os
import subprocess
from pathlib import Path

import pytest

from ..helpers import MDL, REPO


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_current(shell):
    env = {**os.environ, "_MDL_COMPLETE": f"source_{shell}"}
    generated = subprocess.run([MDL], env=env, capture_output=True, text=True, check=True).stdout
    committed = (REPO / "completions" / f"mdl.{shell}").read_text()
    assert generated == committed, f"regenerate: _MDL_COMPLETE=source_{shell} mdl > completions/mdl.{shell}"
    assert "_MDL_COMPLETE" in committed


def test_completion_completes_commands():
    env = {**os.environ, "_MDL_COMPLETE": "complete_bash", "COMP_WORDS": "mdl pro", "COMP_CWORD": "1"}
    out = subprocess.run([MDL], env=env, capture_output=True, text=True, check=True).stdout
    assert "promote" in out.split()


def test_help_does_not_import_heavy_stacks():
    # main() ends the process itself (running atexit handlers): report from one
    code = ("import atexit, sys; sys.argv = ['mdl', '--help']\n"
            "heavy = ('kazoo', 'hdfs', 'requests', 'urllib3', 'uvicorn', 'starlette', 'rich', 'yaml', 'mdl.client')\n"
            "atexit.register(lambda: print('HEAVY', [m for m in heavy if m in sys.modules], file=sys.stderr))\n"
            "from mdl.cli.main import main\n"
            "main()\n")
    r = subprocess.run([str(Path(MDL).parent / "python"), "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in r.stderr, r.stderr
