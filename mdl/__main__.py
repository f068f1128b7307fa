"""``python -m mdl``: the same as the ``mdl`` console script."""

from mdl.cli.main import main

main()
