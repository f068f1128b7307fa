"""The watch engine and how it runs: keep a local directory (versions/ + a ``current`` link) on the
version a model's alias names, with no downtime.

    engine.py    Watcher: reconcile (download, verify, swap) and its loop
    reporter.py  the replica's state -> the registry (the chores thread, the syncing watchdog)
    hooks.py     --exec, --signal/--pidfile, --webhook after each swap
    prefetch.py  --prefetch: download new versions before they are promoted
    options.py   WatchOptions
    run.py       run(): signals and the health endpoint for ``mdl watch`` and ``mdl serve``
"""

from __future__ import annotations

from mdl.watch.engine import Watcher
from mdl.watch.hooks import check_hooks
from mdl.watch.options import Emit, WatchOptions
from mdl.watch.run import Service, run

__all__ = ["Emit", "Service", "Watcher", "WatchOptions", "check_hooks", "run"]
