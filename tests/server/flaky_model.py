"""A candidate that fails on purpose, for the rollout end-to-end tests: pickled in the test process and
unpickled by ``mdl serve`` processes, which import this module (the tests put REPO on their PYTHONPATH).

Run as a script it is a rollout gate (``--gate-cmd``): it reads every server in $MDL_CANDIDATE_URLS and
exits 1 if one of them counted a 5xx answer for $MDL_CANDIDATE of $MDL_MODEL."""

from __future__ import annotations

import os
import re
import sys
import urllib.request
from typing import Any

import numpy as np

LIMIT = 5.0  # loadgen's body starts with 5.1: every one of its requests fails on the candidate


class FailsAbove:
    """``inner``'s predictions, except that a batch with a row whose first feature is above ``limit``
    raises RuntimeError (which ``mdl serve`` answers with 500)."""

    def __init__(self, inner: Any, limit: float = LIMIT) -> None:
        self.inner, self.limit = inner, limit
        self.n_features_in_ = getattr(inner, "n_features_in_", 4)

    def predict(self, x: Any) -> Any:
        x = np.asarray(x, dtype=float)
        if x.ndim == 2 and x.shape[0] and (x[:, 0] > self.limit).any():
            raise RuntimeError(f"the first feature is above {self.limit}")
        return self.inner.predict(x)


def gate() -> int:
    model, version = os.environ["MDL_MODEL"], os.environ["MDL_CANDIDATE"]
    urls = os.environ.get("MDL_CANDIDATE_URLS", "").split()
    sample = re.compile(r"^mdl_requests_total\{([^}]*)\}\s+(\S+)$")
    bad = 0.0
    for url in urls:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
            text = r.read().decode()
        for line in text.splitlines():
            m = sample.match(line)
            if not m:
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if labels.get("model") == model and labels.get("version") == version and labels.get("code", "")[:1] == "5":
                bad += float(m.group(2))
    if bad:
        print(f"{bad:g} 5xx answers from {version} on {len(urls)} server(s)", file=sys.stderr)
        return 1
    print(f"no 5xx answers from {version} on {len(urls)} server(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(gate())
