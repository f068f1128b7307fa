"""Where the registry's nodes are under the chroot, and the sequence numbers in their names."""

from __future__ import annotations

from typing import NamedTuple

HISTORY_PREFIX = "h-"


class ZkPaths(NamedTuple):
    """The node paths of one registry (see the package docstring for what each node holds)."""

    chroot: str

    def models(self) -> str:
        return f"{self.chroot}/models"

    def pointer(self, name: str) -> str:
        return f"{self.chroot}/models/{name}/pointer"

    def lifecycle(self, name: str) -> str:
        return f"{self.chroot}/models/{name}/lifecycle"

    def rollout(self, name: str) -> str:
        return f"{self.chroot}/models/{name}/rollout"

    def history(self, name: str) -> str:
        return f"{self.chroot}/models/{name}/history"

    def manifests(self, name: str) -> str:
        return f"{self.chroot}/models/{name}/manifests"

    def replicas(self, name: str) -> str:
        return f"{self.chroot}/models/{name}/replicas"

    def slots(self, name: str, pool: str = "download") -> str:
        base = f"{self.chroot}/models/{name}/slots"
        return base if pool == "download" else f"{base}-{pool}"


def history_seq(node: str) -> int | None:
    """The sequence number of a history node ``h-0000000042`` (42); None for any other name."""
    if not node.startswith(HISTORY_PREFIX):
        return None
    digits = node[len(HISTORY_PREFIX) :]
    return int(digits) if digits.isdigit() else None


def history_nodes(children: list[str]) -> list[str]:
    """The history nodes among ``children``, oldest first."""
    return sorted((c for c in children if history_seq(c) is not None), key=lambda c: history_seq(c) or 0)


def sequence_suffix(node: str) -> int | None:
    """The 10-digit counter ZooKeeper appended to a sequential node's name, or None."""
    digits = node[-10:]
    return int(digits) if len(node) > 10 and digits.isdigit() else None
