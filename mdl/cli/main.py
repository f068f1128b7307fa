"""Console-script entry point."""

from __future__ import annotations


def main() -> None:
    from mdl.cli.app import app

    app(prog_name="mdl")
