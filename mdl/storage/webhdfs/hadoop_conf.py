"""``webhdfs://<nameservice>``: the NameNodes of an HA nameservice, from a Hadoop client configuration.

As Hadoop's own clients do, a ``storage.url`` whose one host has no port and is named in
``dfs.nameservices`` of ``<conf dir>/hdfs-site.xml`` stands for the NameNodes listed by
``dfs.ha.namenodes.<ns>``, at ``dfs.namenode.http-address.<ns>.<nn>`` (``https-address`` for
``swebhdfs://``). The conf dir is ``storage.hadoop_conf_dir``, else ``$HADOOP_CONF_DIR``.

The file is read with limits (size, no DTD or entities): a broken or hostile file is a ConfigError
naming it, never a hang or a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from xml.parsers import expat
from xml.parsers.expat import ExpatError

from mdl.errors import ConfigError

MAX_SITE_BYTES = 4 * 1024 * 1024  # a real hdfs-site.xml is a few KiB
MAX_DEPTH = 16  # <configuration><property><name> is three levels


def conf_dir(setting: str | None) -> Path | None:
    """The Hadoop client config dir in effect: the setting, else ``$HADOOP_CONF_DIR``, else none."""
    chosen = setting or os.environ.get("HADOOP_CONF_DIR")
    return Path(chosen).expanduser() if chosen else None


def read_site(path: Path) -> dict[str, str]:
    """The ``name -> value`` properties of a Hadoop ``*-site.xml`` (later definitions win, as in Hadoop)."""

    def bad(why: str) -> ConfigError:
        return ConfigError(
            f"cannot read the Hadoop configuration {str(path)!r}: {why}",
            hint="fix storage.hadoop_conf_dir (or HADOOP_CONF_DIR), or list the NameNodes in storage.url",
        )

    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SITE_BYTES + 1)
    except OSError as exc:
        raise bad(exc.strerror or str(exc)) from None
    if len(data) > MAX_SITE_BYTES:
        raise bad(f"larger than {MAX_SITE_BYTES} bytes")
    try:
        return _properties(data)
    except _Refused as exc:
        raise bad(str(exc)) from None
    except (ExpatError, ValueError) as exc:
        raise bad(f"not well-formed XML ({exc})") from None


class _Refused(Exception):
    pass


def _properties(data: bytes) -> dict[str, str]:
    """``<configuration><property><name/><value/></property>...`` read by a streaming parser: no tree
    is built, so no nesting or size the file holds costs more than one pass over it."""
    parser = expat.ParserCreate()
    props: dict[str, str] = {}
    stack: list[str] = []
    current: dict[str, list[str]] = {}

    def start(tag: str, attrs: object) -> None:
        stack.append(tag)
        if len(stack) > MAX_DEPTH:
            raise _Refused(f"elements nested deeper than {MAX_DEPTH} levels")
        if tag == "property":
            current.clear()

    def end(tag: str) -> None:
        stack.pop()
        if tag == "property" and "name" in current and "value" in current:
            props["".join(current["name"]).strip()] = "".join(current["value"]).strip()

    def text(chunk: str) -> None:
        if len(stack) >= 2 and stack[-2] == "property" and stack[-1] in ("name", "value"):
            current.setdefault(stack[-1], []).append(chunk)

    def doctype(*_: object) -> None:
        raise _Refused("it declares a DTD or entities, which mdl does not expand")

    # in any encoding the file declares (UTF-16 too): no DTD, so no entity is ever defined or expanded
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.Parse(data, True)
    return props


def nameservice_namenodes(nameservice: str, https: bool, directory: Path) -> list[str] | None:
    """``host:port`` of each NameNode of ``nameservice`` per ``directory/hdfs-site.xml``; None if the
    file does not exist or does not define that nameservice (then the name is a plain host)."""
    site = directory / "hdfs-site.xml"
    if not site.is_file():
        return None
    props = read_site(site)
    if nameservice not in [n.strip() for n in props.get("dfs.nameservices", "").split(",")]:
        return None
    where = f"{site} (nameservice {nameservice!r})"
    ids = [n.strip() for n in props.get(f"dfs.ha.namenodes.{nameservice}", "").split(",") if n.strip()]
    if not ids:
        raise ConfigError(
            f"{where} lists no NameNodes: dfs.ha.namenodes.{nameservice} is not set",
            hint="set it in hdfs-site.xml, or list the NameNodes in storage.url",
        )
    kind = "https-address" if https else "http-address"
    addresses = []
    for nn in ids:
        key = f"dfs.namenode.{kind}.{nameservice}.{nn}"
        value = props.get(key)
        if not value:
            raise ConfigError(
                f"{where}: NameNode {nn!r} has no {key}",
                hint="set it in hdfs-site.xml (the NameNode's WebHDFS address), or list the NameNodes in storage.url",
            )
        addresses.append(value)
    return addresses
