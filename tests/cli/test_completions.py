"""Shell completion: the committed scripts are what the app generates now, and in real bash, zsh and
fish they complete models, versions (newest first), aliases, contexts and fixed choices from the registry."""

import os
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


# -- completion from the registry, in real bash, zsh and fish ----------------------------------------

ORDER = ["a2", "b1"]  # newest first: a2 was pushed last (ids sorted the other way round)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict[str, str]:
    """The environment of a shell whose mdl sees models lr (versions b1, a2; aliases latest, prod)
    and other, through a config file with two contexts: one of them names an empty registry."""
    d = tmp_path_factory.mktemp("completion")
    empty = d / "empty"
    (d / "config.yaml").write_text(
        f"storage:\n  url: file://{d}/models\nregistry:\n  url: sqlite://{d}/registry.db\n"
        "contexts:\n"
        f"  empty:\n    storage:\n      url: file://{empty}/models\n    registry:\n      url: sqlite://{empty}/r.db\n"
        "  staging: {}\n"
    )
    env = {
        **os.environ,
        "PATH": f"{Path(MDL).parent}{os.pathsep}{os.environ['PATH']}",
        "MDL_CONFIG": str(d / "config.yaml"),
    }
    for var in ("MDL_CONTEXT", "MDL_STORAGE_URL", "MDL_REGISTRY_URL", "MDL_STORAGE_ROOT"):
        env.pop(var, None)
    (d / "model.pkl").write_bytes(b"one")
    (d / "other.pkl").write_bytes(b"two")
    for args in (
        ["push", "lr", str(d / "model.pkl"), "--version", "b1", "-q"],
        ["push", "lr", str(d / "other.pkl"), "--version", "a2", "-q"],
        ["promote", "lr", "a2"],
        ["promote", "lr", "b1", "--alias", "prod"],
        ["push", "other", str(d / "model.pkl"), "-q"],
    ):
        subprocess.run([MDL, *args], env=env, check=True, capture_output=True)
    return {**env, "MDL_TEST_DIR": str(d)}


def bash_complete(line: str, env: dict[str, str]) -> list[str]:
    """COMPREPLY of mdl's bash script for the cursor at the end of ``line``, or ``_files`` when it
    leaves the completion to bash's file names (``compopt -o default``)."""
    words = line.split(" ")
    script = (
        f"source {REPO}/completions/mdl.bash\n"
        'compopt() { [[ $* == "-o default" ]] && echo _files; }\n'
        f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        f"COMP_LINE={shlex.quote(line)}; COMP_POINT={len(line)}\n"
        "_mdl_completion mdl 2>/dev/null\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    out = subprocess.run(["bash", "--norc", "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    return [w for w in out.splitlines() if w]


def zsh_complete(line: str, env: dict[str, str]) -> list[str]:
    """What mdl's zsh script hands to compadd (with its options: -V keeps the order) or ``_files``."""
    words = line.split(" ")
    script = (
        "compadd() { print -r -- compadd \"$@\" }; _files() { print -r -- _files }; compdef() {}\n"
        f"source {REPO}/completions/mdl.zsh\n"
        f"words=({' '.join(shlex.quote(w) for w in words)}); CURRENT={len(words)}\n"
        "_mdl_completion\n"
    )
    out = subprocess.run(["zsh", "-f", "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    return out.split()


def fish_complete(line: str, env: dict[str, str]) -> list[str]:
    """fish's own completion of ``line`` with mdl's script loaded (``complete -C``)."""
    script = f"source {REPO}/completions/mdl.fish; complete -C {shlex.quote(line)}"
    out = subprocess.run(["fish", "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    return [w.split("\t")[0] for w in out.splitlines()]


def complete_in(shell: str, line: str, env: dict[str, str]) -> list[str]:
    if shell == "zsh":
        got = zsh_complete(line, env)
        if got == ["_files"]:
            return got
        assert got[:4] == ["compadd", "-V", "mdl", "--"] or not got, got  # -V: an unsorted group
        return got[4:]
    return {"bash": bash_complete, "fish": fish_complete}[shell](line, env)


SHELLS = ["bash", "zsh", "fish"]
CASES = [
    ("mdl promote ", ["lr", "other"]),
    ("mdl promote l", ["lr"]),
    ("mdl promote lr ", ORDER),
    ("mdl pull lr ", ORDER),
    ("mdl watch lr -d /tmp/x --version ", ORDER),
    ("mdl promote lr a2 --alias ", ["latest", "prod"]),
    ("mdl rollback lr -a p", ["prod"]),
    ("mdl history lr --alias ", ["latest", "prod"]),
    ("mdl serve lr --swap ", ["availability", "resource"]),
    ("mdl list -o ", ["table", "wide", "json"]),
    ("mdl push lr model.pkl --format pi", ["pickle"]),
    ("mdl --context ", ["empty", "staging"]),
    ("mdl --context empty promote ", []),  # the context's registry has no models
    ("mdl promote nope ", []),  # no such model: nothing, not file names
    ("mdl promote x", []),
]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("line", "want"), CASES, ids=[c[0] for c in CASES])
def test_completion_in_a_real_shell(shell, line, want, registry):
    assert complete_in(shell, line, registry) == want


@pytest.mark.parametrize("shell", SHELLS)
def test_completion_offers_files_where_mdl_knows_no_values(shell, registry, tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"x")
    line = f"mdl push lr {tmp_path}/mo"
    if shell == "fish":
        assert fish_complete(line, registry) == [f"{tmp_path}/model.pkl"]
    else:  # bash's and zsh's own file completion takes over
        assert complete_in(shell, line, registry) == ["_files"]


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("down", ["refused", "silent"])
@pytest.mark.parametrize("line", ["mdl promote ", "mdl promote lr ", "mdl promote lr a2 --alias p"])
def test_completion_gives_up_on_backends_that_are_down_or_silent(shell, down, line, registry):
    """ZooKeeper and HDFS refusing connections, or accepting them and never answering: TAB offers
    nothing (no file names either) within the deadline."""
    pytest.importorskip("kazoo")
    with silent_server() as port:
        if down == "refused":
            with socket.socket() as probe:  # a port nothing listens on
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        env = {
            **registry,
            "MDL_REGISTRY_URL": f"zk://127.0.0.1:{port}/mdl",
            "MDL_REGISTRY_TIMEOUT": "30",
            "MDL_STORAGE_URL": f"webhdfs://127.0.0.1:{port}",
            "MDL_STORAGE_TIMEOUT": "30",
        }
        start = time.monotonic()
        got = complete_in(shell, line, env)
        elapsed = time.monotonic() - start
    assert got == []
    assert elapsed < 1.5


def test_callbacks_speak_typers_protocol_without_the_marker(registry):
    """Typer's own scripts (mdl --install-completion) get plain values, never mdl's "nothing" marker."""

    def run(words: str, cword: int, **extra: str) -> list[str]:
        env = {**registry, "_MDL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword), **extra}
        return subprocess.run([MDL], env=env, capture_output=True, text=True, check=True).stdout.split()

    assert run("mdl promote lr ", 3) == ORDER
    assert run("mdl promote nope ", 3) == []
    assert run("mdl promote nope ", 3, _MDL_COMPLETE_SCRIPT="1") == [":none:"]
    assert run("mdl promote x", 2, _MDL_COMPLETE_SCRIPT="1") == ["x:none:"]  # Typer keeps values starting so
    # global options given before the command pick the backends: storage alone knows "other"
    d = registry["MDL_TEST_DIR"]
    assert run("mdl promote ", 2, MDL_STORAGE_URL=f"file://{d}/none") == ["lr"]
    assert run(f"mdl --storage file://{d}/models promote ", 4, MDL_STORAGE_URL=f"file://{d}/none") == ["lr", "other"]
