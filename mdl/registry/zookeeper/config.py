"""Reading the configuration of a zk:// registry: its URL, digest credentials and node ACL.

Importable without kazoo (``mdl config`` and the URL checks need no ensemble).
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mdl.errors import ConfigError

if TYPE_CHECKING:
    from mdl.config import Config

DEFAULT_CHROOT = "/mdl"
DEFAULT_PORT = 2181
DIGEST_ENV = "MDL_REGISTRY_DIGEST"
READ_ACLS = ("world", "creator")


def parse_url(url: str) -> tuple[str, str]:
    """``zk://h1:2181,h2/chroot`` -> (``"h1:2181,h2:2181"``, ``"/chroot"``); chroot ``""`` is the root."""
    if not url.startswith("zk://"):
        raise ConfigError(f"registry.url {url!r} is not a zk:// URL")
    rest = url[len("zk://") :]
    if "?" in rest or "#" in rest:
        raise ConfigError(
            f"registry.url {url!r} must not have a query or fragment", hint="use zk://h1:2181,h2:2181,h3:2181/chroot"
        )
    netloc, slash, path = rest.partition("/")
    hosts = []
    for part in netloc.split(","):
        part = part.strip()
        try:
            split = urllib.parse.urlsplit("zk://" + part)
            host, port = split.hostname, split.port
        except ValueError:
            host, port = None, None
        if not part or not host or "@" in part:
            raise ConfigError(
                f"registry.url {url!r} has an invalid host {part!r}", hint="use zk://h1:2181,h2:2181,h3:2181/chroot"
            )
        host = f"[{host}]" if ":" in host else host
        hosts.append(f"{host}:{port or DEFAULT_PORT}")
    if not slash:
        chroot = DEFAULT_CHROOT
    else:
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") or p == "zookeeper" and i == 0 for i, p in enumerate(parts)):
            raise ConfigError(f"registry.url {url!r} has an invalid chroot {('/' + path)!r}")
        chroot = "".join("/" + p for p in parts)
    return ",".join(hosts), chroot


def read_credentials(config: Config, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(user, password) from ``registry.digest_file``, else env MDL_REGISTRY_DIGEST, else None."""
    env = os.environ if env is None else env
    path = config["registry.digest_file"]
    if path:
        p = Path(path).expanduser()
        try:
            raw, where = p.read_text().strip(), f"registry.digest_file {str(p)!r}"
        except OSError as exc:
            raise ConfigError(f"cannot read registry.digest_file {str(p)!r}: {exc.strerror}") from None
    else:
        raw, where = (env.get(DIGEST_ENV) or "").strip(), f"env {DIGEST_ENV}"
        if not raw:
            return None
    user, sep, password = raw.partition(":")
    if not sep or not user or not password or "\n" in raw:
        raise ConfigError(f"{where} must hold one line 'user:password'")
    return user, password


def node_acl(credentials: tuple[str, str] | None, read_acl: str) -> list[Any]:
    """The ACL of every node mdl creates: with credentials ``digest:user:<hash>`` ALL (plus
    ``world:anyone`` READ when ``read_acl`` is ``world``), else open to all. Needs kazoo."""
    from kazoo.security import OPEN_ACL_UNSAFE, make_acl, make_digest_acl

    if read_acl not in READ_ACLS:
        raise ConfigError(f"registry.read_acl must be world or creator, got {read_acl!r}")
    if not credentials:
        return list(OPEN_ACL_UNSAFE)
    user, password = credentials
    acl = [make_digest_acl(user, password, all=True)]
    if read_acl == "world":
        acl.append(make_acl("world", "anyone", read=True))
    return acl
