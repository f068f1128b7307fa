"""``python -m mdl.devcluster ARGS``: the same as ``mdl dev-cluster ARGS`` (one front end, mdl.cli.dev_cluster)."""

import sys

from mdl.cli.app import run

sys.exit(run(["dev-cluster", *sys.argv[1:]]))
