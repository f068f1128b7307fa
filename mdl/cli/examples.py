"""Examples shown at the end of each command's ``-h`` (the README's, in one place)."""

from __future__ import annotations

EXAMPLES: dict[str, list[str]] = {
    "push": [
        "# upload a file; prints the new version id (a UTC timestamp)",
        "mdl push lr ./out/model.pkl",
        "# a directory, 8 files at a time, and make it live",
        "mdl push bert ./out/model/ -j 8 --promote",
        "# your own version id, and point the canary alias at it",
        "mdl push lr ./out/model.pkl --version 2.1.0 --alias canary -o json",
    ],
    "list": [
        "mdl list                         # every model, its aliases, how many versions",
        "mdl list lr                      # lr's versions, newest first",
        "mdl list lr -q | head -1         # the newest version id",
        "mdl list lr -o wide              # with digests",
    ],
    "show": [
        "mdl show lr                      # the version latest points at: files, digest, who, replicas",
        "mdl show lr 20261127T171300Z",
        "mdl show lr --alias canary -o json",
    ],
    "promote": [
        "mdl promote lr 20261127T171300Z                   # latest -> that version",
        "mdl promote lr 20261127T171300Z --alias canary",
        "mdl promote lr V2 --expect V1                     # only if latest still points at V1",
        "# CD: wait until the fleet runs it, roll back if a replica fails to load it",
        "mdl promote lr V2 --wait --timeout 120 --rollback-on-failure",
    ],
    "rollback": [
        "mdl rollback lr                  # latest back to where it pointed before",
        "mdl rollback lr --alias canary",
    ],
    "history": [
        "mdl history lr                   # every move of every alias of lr",
        "mdl history lr --alias latest -o json",
    ],
    "pull": [
        "mdl pull lr -d ./serving         # the version latest names; prints the path",
        "mdl pull lr 20261127T171300Z -d ./x",
        "mdl pull lr --alias canary -d ./x -o json",
        "mdl pull lr -d ./x --require-signature   # refuse it unless a trusted key signed it",
    ],
    "watch": [
        "# keep /srv/models/lr/current on lr:latest (the sidecar)",
        "mdl watch lr -d /srv/models/lr",
        "mdl watch lr -d /srv/models/lr --once            # sync once and exit (init containers)",
        "mdl watch lr -d DIR --exec './reload.sh'         # run after each swap",
        "mdl watch lr -d DIR --health-port 9464 -o json   # /livez, /readyz; events as JSON lines",
    ],
    "serve": [
        "mdl serve lr                                     # http://127.0.0.1:8501, follows lr:latest",
        "mdl serve lr --alias canary --port 8502",
        "mdl serve lr --loader mypkg.loaders:load         # a format with no built-in loader",
        "curl -s localhost:8501/v2/models/lr/infer -d @request.json",
    ],
    "endpoints": [
        "mdl endpoints lr                 # URLs of the ready replicas of lr",
        "mdl endpoints lr --alias canary -q",
        "mdl endpoints lr -o haproxy --watch --out /etc/haproxy/conf.d/lr.cfg --exec 'systemctl reload haproxy'",
        "mdl endpoints lr -o prometheus --watch --listen 9099   # Prometheus http_sd at /sd",
    ],
    "status": [
        "mdl status lr                    # every replica: state, loaded version, age",
        "mdl status lr -o json",
    ],
    "sign": [
        "# sign with trust.signing_key (MDL_TRUST_SIGNING_KEY); prints the key id",
        "mdl sign lr 20261127T171300Z",
        "# or sign as part of the push, before it is promoted",
        "mdl push lr ./out/model.skops --sign --promote",
    ],
    "verify": [
        "mdl verify lr 20261127T171300Z   # who signed it, against trust.keys / trust.ca",
        "mdl verify lr --alias canary -o json",
    ],
    "pin": [
        "mdl pin lr 20261127T171300Z      # rm and gc never delete it",
        "mdl pin lr 20261127T171300Z -o json",
    ],
    "unpin": [
        "mdl unpin lr 20261127T171300Z    # rm and gc may delete it again",
    ],
    "rm": [
        "mdl rm lr 20261127T171300Z 20261128T090000Z      # prints each deleted version",
        "mdl rm lr V1 --force             # even in a rollback window or used by a replica",
        "mdl rm lr V1 --trash             # HDFS: into your HDFS trash instead",
    ],
    "gc": [
        "mdl gc lr --keep-last 10         # the plan: what goes, why each survivor stays",
        "mdl gc lr --keep-last 10 --yes   # delete what the plan condemns",
        "mdl gc --all --yes               # every model, by the config's retention rules",
        "mdl gc lr --keep-days 30 -o json",
    ],
    "clean": [
        "mdl clean --dry-run              # staging debris of interrupted pushes",
        "mdl clean --older-than 3600",
    ],
    "config": [
        "mdl config                       # every setting, its value and where it came from",
        "mdl --context prod config -o json",
    ],
    "rollout": [
        "mdl rollout start lr V2 --steps 10,50,100 --interval 5m --max-error-rate 1% --max-p99 50ms",
        "mdl rollout status lr",
        "mdl rollout abort lr --reason 'p99 regression'",
        "mdl rollout resume lr                    # continue it from any machine",
    ],
    "alias": [
        "mdl alias rm lr canary           # remove an alias (refused while replicas follow it)",
        "mdl alias rm lr canary --force",
    ],
    "completion": [
        "source <(mdl completion bash)                     # in ~/.bashrc",
        "source <(mdl completion zsh)                      # in ~/.zshrc, after compinit",
        "mdl completion fish > ~/.config/fish/completions/mdl.fish",
    ],
    "dev-cluster": [
        "mdl dev-cluster up               # HDFS + ZooKeeper on 127.0.0.1",
        'eval "$(mdl dev-cluster env)"    # point mdl at it',
        "mdl dev-cluster up --ha          # two NameNodes; mdl dev-cluster namenode failover",
        "mdl dev-cluster down",
    ],
}


def epilog(command: str) -> str | None:
    """The ``Examples:`` block of ``command``'s help, laid out as written (``\\b``: no rewrapping)."""
    lines = EXAMPLES.get(command)
    if not lines:
        return None
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)
