"""webhdfs://<nameservice> through a Hadoop client config: resolution, and files that are broken or hostile."""

from __future__ import annotations

import time

import pytest

from mdl.errors import ConfigError
from mdl.storage.webhdfs import parse_url

SITE = """<?xml version="1.0"?>
<configuration>
  <property><name>dfs.nameservices</name><value>other, prod</value></property>
  <property><name>dfs.ha.namenodes.prod</name><value>nn1, nn2</value></property>
  <property><name>dfs.namenode.http-address.prod.nn1</name><value>m1.example:9870</value></property>
  <property><name>dfs.namenode.http-address.prod.nn2</name><value>m2.example:9870</value></property>
  <property><name>dfs.namenode.https-address.prod.nn1</name><value>m1.example:9871</value></property>
  <property><name>dfs.namenode.https-address.prod.nn2</name><value>m2.example:9871</value></property>
</configuration>
"""


@pytest.fixture
def conf(tmp_path, monkeypatch):
    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)
    (tmp_path / "hdfs-site.xml").write_text(SITE)
    return tmp_path


def test_a_nameservice_stands_for_its_namenodes(conf):
    assert parse_url("webhdfs://prod", str(conf)) == ("http", ["http://m1.example:9870", "http://m2.example:9870"])
    assert parse_url("swebhdfs://prod", str(conf)) == ("https", ["https://m1.example:9871", "https://m2.example:9871"])


def test_hadoop_conf_dir_from_the_environment(conf, monkeypatch):
    monkeypatch.setenv("HADOOP_CONF_DIR", str(conf))
    assert parse_url("webhdfs://prod")[1] == ["http://m1.example:9870", "http://m2.example:9870"]


def test_hosts_that_are_not_nameservices_stay_hosts(conf, tmp_path):
    assert parse_url("webhdfs://prod:9870", str(conf))[1] == ["http://prod:9870"]  # a port: a host
    assert parse_url("webhdfs://nn1", str(conf))[1] == ["http://nn1:9870"]  # not in dfs.nameservices
    assert parse_url("webhdfs://prod,nn2", str(conf))[1] == ["http://prod:9870", "http://nn2:9870"]
    assert parse_url("webhdfs://prod", str(tmp_path / "missing"))[1] == ["http://prod:9870"]  # no file


@pytest.mark.parametrize(
    "drop, message",
    [
        ("dfs.ha.namenodes.prod", "lists no NameNodes: dfs.ha.namenodes.prod is not set"),
        ("dfs.namenode.http-address.prod.nn2", "NameNode 'nn2' has no dfs.namenode.http-address.prod.nn2"),
    ],
)
def test_an_incomplete_nameservice_is_a_config_error_naming_the_key(conf, drop, message):
    lines = [line for line in SITE.splitlines() if f"<name>{drop}</name>" not in line]
    (conf / "hdfs-site.xml").write_text("\n".join(lines))
    with pytest.raises(ConfigError) as e:
        parse_url("webhdfs://prod", str(conf))
    assert message in e.value.message and "hdfs-site.xml" in e.value.message and e.value.hint


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE c [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + "]><configuration><property><name>dfs.nameservices</name><value>&j;</value></property></configuration>"
)


@pytest.mark.parametrize(
    "content, why",
    [
        (BILLION_LAUGHS, "declares a DTD or entities"),
        ('<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]><configuration>&x;</configuration>', "DTD"),
        ("<configuration><property><name>dfs.nameservices", "not well-formed XML"),
        ("\x00\xff garbage", "not well-formed XML"),
    ],
    ids=["billion-laughs", "external-entity", "truncated", "binary"],
)
def test_a_hostile_or_broken_site_file_is_a_quick_config_error(conf, content, why):
    (conf / "hdfs-site.xml").write_text(content, errors="surrogateescape")
    started = time.monotonic()
    with pytest.raises(ConfigError) as e:
        parse_url("webhdfs://prod", str(conf))
    assert time.monotonic() - started < 2
    assert why in e.value.message and str(conf / "hdfs-site.xml") in e.value.message


def test_deep_nesting_is_refused_without_building_a_tree(conf):
    (conf / "hdfs-site.xml").write_text("<c>" * 100_000 + "</c>" * 100_000)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="nested deeper than 16 levels"):
        parse_url("webhdfs://prod", str(conf))
    assert time.monotonic() - started < 2


def test_a_huge_site_file_is_refused_unread(conf):
    (conf / "hdfs-site.xml").write_bytes(b"<configuration>" + b" " * (5 * 1024 * 1024) + b"</configuration>")
    with pytest.raises(ConfigError, match="larger than"):
        parse_url("webhdfs://prod", str(conf))


def test_an_unreadable_site_file_is_a_config_error(conf):
    (conf / "hdfs-site.xml").unlink()
    (conf / "hdfs-site.xml").mkdir()  # is_file() is False: treated as absent, the name stays a host
    assert parse_url("webhdfs://prod", str(conf))[1] == ["http://prod:9870"]


def test_entities_are_refused_in_any_encoding(conf):
    (conf / "hdfs-site.xml").write_text(BILLION_LAUGHS.replace('<?xml version="1.0"?>', ""), encoding="utf-16")
    with pytest.raises(ConfigError, match="declares a DTD or entities"):
        parse_url("webhdfs://prod", str(conf))
