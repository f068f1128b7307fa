"""Console-script entry point."""

from __future__ import annotations


def main() -> None:
    import os
    import sys

    from mdl.cli.app import command_of, make_app

    # Build only the command being run (start-up time); completion and help need them all.
    only = None if os.environ.get("_MDL_COMPLETE") else command_of(sys.argv[1:])
    make_app(only)(prog_name="mdl")
