"""Replica records as load-balancer and monitoring targets.

Registry contents are untrusted and end up in configuration files that a balancer reloads: a record
whose id, address, version or alias could break or inject into that text is skipped (with a warning
once per id and reason), never raised. What passes is safe to print as is: ids, hosts, versions and
aliases are restricted to characters that mean nothing in HAProxy, nginx, JSON or YAML.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from mdl.errors import InvalidInput
from mdl.fleet import ReplicaRecord
from mdl.names import validate_alias, validate_version

log = logging.getLogger("mdl.discovery")

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}")
# exactly http://HOST:PORT[/]; the host is checked further below. [0-9] not \d: \d matches other digits.
_ADDRESS_RE = re.compile(r"http://(?:\[([0-9A-Fa-f:.]{2,45})\]|([A-Za-z0-9.-]{1,253})):([1-9][0-9]{0,4})/?")
_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_STATE_RE = re.compile(r"[a-z-]{1,32}")
_MAX_WARNED = 4096  # bound the memory of warnings a churning hostile registry could make us keep
_warned: set[tuple[str, str]] = set()


class Target(NamedTuple):
    """A server a balancer or Prometheus may be pointed at; every field is validated."""

    id: str  # the replica id, safe as an HAProxy server name
    host: str  # hostname or IP address (IPv6 without brackets)
    port: int
    address: str  # host:port, [v6]:port for IPv6
    url: str  # http://address
    version: str | None  # the version it has loaded
    alias: str | None  # the alias it follows
    state: str | None  # its record's state
    node: str | None  # the machine it runs on (the record's ``host``)

    def to_dict(self) -> dict[str, Any]:
        """For templates and JSON."""
        return self._asdict()


def valid_host(host: object) -> str | None:
    """``host`` as a target host (RFC 1123 hostname, IPv4 or bracketless IPv6 address), or None."""
    if not isinstance(host, str) or not host or len(host) > 253 or not host.isascii():
        return None
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed if "%" not in host else None
        except ValueError:
            return None
    labels = host.split(".")
    if all(label.isdigit() for label in labels):  # dotted numbers are an IPv4 address or nothing
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            return None
    if all(_LABEL_RE.fullmatch(label) for label in labels):
        return host.lower()
    return None


def parse_address(address: object) -> tuple[str, int] | None:
    """(host, port) of a server's ``http://HOST:PORT`` address, or None if it is anything else."""
    if not isinstance(address, str) or len(address) > 300:
        return None
    m = _ADDRESS_RE.fullmatch(address)
    if m is None:
        return None
    v6, name, port_text = m.groups()
    port = int(port_text)
    if not 1 <= port <= 65535:
        return None
    if v6 is not None:
        host = valid_host(v6) if ":" in v6 else None
    else:
        host = valid_host(name) if ":" not in name else None
    return None if host is None else (host, port)


def _warn(rid: object, reason: str) -> None:
    shown = rid[:80] if isinstance(rid, str) else type(rid).__name__
    key = (shown, reason)
    if key in _warned:
        return
    if len(_warned) >= _MAX_WARNED:
        _warned.clear()
    _warned.add(key)
    log.warning("skipping replica %r: %s", shown, reason)  # %r: a hostile id cannot forge log lines


def _name_or_none(value: object, validate: Any) -> tuple[bool, str | None]:
    """(ok, value): None is fine, a valid name is kept, anything else is not ok."""
    if value is None:
        return True, None
    try:
        return True, validate(value)
    except (InvalidInput, TypeError):
        return False, None


def to_target(record: ReplicaRecord) -> Target | None:
    """The target of a server's record, or None (warned) if a field could inject or break a config."""
    rid = record.id
    if not isinstance(rid, str) or not _ID_RE.fullmatch(rid):
        _warn(rid, "invalid replica id")
        return None
    parsed = parse_address(record.address)
    if parsed is None:
        _warn(rid, "address is not http://HOST:PORT")
        return None
    ok_version, version = _name_or_none(record.loaded, validate_version)
    if not ok_version:
        _warn(rid, "invalid loaded version")
        return None
    ok_alias, alias = _name_or_none(record.alias, validate_alias)
    if not ok_alias:
        _warn(rid, "invalid alias")
        return None
    state = record.state if isinstance(record.state, str) and _STATE_RE.fullmatch(record.state) else None
    host, port = parsed
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Target(rid, host, port, address, f"http://{address}", version, alias, state, valid_host(record.host))


def _select(records: Iterable[ReplicaRecord], keep: Any, alias: str | None, version: str | None) -> list[Target]:
    if alias is not None:
        validate_alias(alias)
    if version is not None:
        validate_version(version)
    found = [
        t
        for t in (to_target(r) for r in records if keep(r))
        if t is not None and (alias is None or t.alias == alias) and (version is None or t.version == version)
    ]
    seen: set[str] = set()
    unique = []
    for t in sorted(found, key=lambda t: t.id):  # one address listed twice would get twice the traffic
        if t.address in seen:
            _warn(t.id, f"address {t.address} is already listed for another replica")
            continue
        seen.add(t.address)
        unique.append(t)
    return sorted(unique, key=lambda t: (t.address, t.id))


def routable(records: Iterable[ReplicaRecord], *, alias: str | None = None, version: str | None = None) -> list[Target]:
    """Servers a balancer may send requests to now: ``record.endpoint()`` is not None (a server with an
    address and a loaded version, state one of ``fleet.SERVING_STATES``; a draining one is not),
    optionally only those following ``alias`` / with ``version`` loaded, sorted by (address, id)."""
    return _select(records, lambda r: r.endpoint() is not None, alias, version)


def monitored(
    records: Iterable[ReplicaRecord], *, alias: str | None = None, version: str | None = None
) -> list[Target]:
    """Every live server with a valid address whatever its state (Prometheus should scrape a failing
    or loading replica too), with the same filters and order as ``routable``."""
    return _select(records, lambda r: r.kind == "server", alias, version)
