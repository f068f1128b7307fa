"""The command-line edge: thin Typer commands over :mod:`mdl.client`."""
