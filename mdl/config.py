"""Configuration: flag > ``MDL_*`` environment variable > config file (context) > default.

Every key is declared once in ``SETTINGS``; ``config.example.yaml`` documents the same keys and a
unit test keeps the two in step. Each resolved value remembers where it came from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from mdl.errors import ConfigError


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "mdl"


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "mdl"


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mdl"


class Setting(NamedTuple):  # a NamedTuple: cheaper at start-up than a dataclass
    key: str
    type: type
    default: Any | Callable[[], Any]
    help: str
    choices: tuple[str, ...] = ()
    maximum: float | None = None  # the largest value a number may have (finite always)
    minimum: float | None = None  # the smallest value a number may have; None: it must be positive

    @property
    def env(self) -> str:
        return "MDL_" + self.key.replace(".", "_").upper()

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "storage.url",
        str,
        lambda: "file://" + str(data_home() / "models"),
        "where versions live: file:///path (embedded) or webhdfs://nn1:9870[,nn2:9870] (swebhdfs:// for https)",
    ),
    Setting("storage.root", str, "/models", "root of the model tree on HDFS (file:// uses the URL's path)"),
    Setting("storage.user", str, None, "HDFS user for simple auth (default: the OS user)"),
    Setting("storage.auth", str, "simple", "HDFS authentication", ("simple", "kerberos")),
    Setting(
        "storage.principal",
        str,
        None,
        "Kerberos principal to log in as from storage.keytab (default: the ticket cache's, after kinit)",
    ),
    Setting("storage.keytab", str, None, "Kerberos keytab holding storage.principal (no kinit; renewed by itself)"),
    Setting("storage.ca_bundle", str, None, "CA bundle for swebhdfs:// (default: the system's)"),
    Setting(
        "storage.hadoop_conf_dir",
        str,
        None,
        "Hadoop client config dir: webhdfs://<nameservice> resolves through its hdfs-site.xml "
        "(default: $HADOOP_CONF_DIR)",
    ),
    Setting("storage.timeout", float, 30.0, "seconds for connecting to and reading from storage", maximum=86400),
    Setting("storage.retries", int, 3, "retries with backoff for idempotent storage steps", maximum=100),
    Setting(
        "registry.url",
        str,
        lambda: "sqlite://" + str(data_home() / "registry.db"),
        "where pointers live: sqlite:///path.db (embedded) or zk://h1:2181,h2:2181/chroot",
    ),
    Setting(
        "registry.timeout",
        float,
        10.0,
        "seconds to reach the registry (ZooKeeper session timeout; SQLite: how long a locked database is waited for)",
        maximum=86400,
    ),
    Setting(
        "registry.digest_file",
        str,
        None,
        "file holding 'user:password' for ZooKeeper digest auth (or env MDL_REGISTRY_DIGEST)",
    ),
    Setting("registry.read_acl", str, "world", "who may read nodes mdl creates with auth on", ("world", "creator")),
    Setting("transfer.jobs", int, 4, "files transferred in parallel", maximum=64),
    Setting(
        "cache.dir",
        str,
        lambda: str(cache_home() / "blobs"),
        "host-wide store of verified files that watchers and servers on one host share (each file "
        "downloaded once per host, hard-linked); none: off",
    ),
    Setting(
        "output", str, "table", "default output format (wide: tables with more columns)", ("table", "wide", "json")
    ),
    Setting("progress", str, "auto", "progress bars on stderr", ("auto", "always", "never")),
    Setting(
        "retention.keep_last",
        int,
        None,
        "gc keeps the newest N versions of a model (none: no count rule)",
        maximum=1_000_000,
    ),
    Setting(
        "retention.keep_days",
        float,
        None,
        "gc keeps versions younger than D days (none: no age rule)",
        maximum=36500,
        minimum=0,
    ),
    Setting(
        "retention.grace",
        float,
        3600.0,
        "seconds during which a fresh version (or staging debris) is never deleted by gc",
        maximum=31536000,
        minimum=0,
    ),
    Setting(
        "retention.rollback_window",
        int,
        3,
        "the last K versions each alias pointed at are kept by gc and refused by rm without --force",
        maximum=1000,
        minimum=0,
    ),
    Setting(
        "retention.models",
        dict,
        None,
        "per-model overrides of keep_last, keep_days and grace: {model: {key: value}} (JSON in the env variable)",
    ),
)
#: trust.*: signing and verification (mdl.trust); anchors come only from here, never from storage or the registry
SETTINGS += (
    Setting(
        "trust.signing_key",
        str,
        None,
        "PEM private key (EC P-256/384/521) mdl sign and push --sign use; its password, if any, in env "
        "MDL_TRUST_SIGNING_KEY_PASSWORD",
    ),
    Setting(
        "trust.signing_cert_chain",
        str,
        None,
        "PEM: the signing key's certificate (codeSigning) then its intermediates: certificate signatures",
    ),
    Setting("trust.keys", list, None, "PEM public keys whose signatures are trusted (comma-separated in the env)"),
    Setting("trust.ca", list, None, "PEM CA certificates whose code-signing chains are trusted (comma-separated)"),
    Setting(
        "trust.require_signature",
        bool,
        False,
        "pull, watch and serve refuse a version without a valid signature (as --require-signature does)",
    ),
)
#: serve.*: what mdl serve's built-in loaders may load (mdl.server.loaders)
SETTINGS += (
    Setting(
        "serve.pickle",
        str,
        "allow",
        "pickle/joblib versions run code as they load: allow (a warning per version), signed (only versions "
        "signed by a trusted key, see trust.*) or deny",
        ("allow", "signed", "deny"),
    ),
    Setting(
        "serve.drain_delay",
        float,
        2.0,
        "seconds a server keeps answering after it left the registry's list (SIGTERM, --swap resource), so "
        "balancers following it (mdl endpoints --watch) drop it before it stops; 0: none",
        minimum=0,
        maximum=3600,
    ),
    Setting(
        "serve.skops_trusted",
        list,
        None,
        "types a skops model may hold beyond skops' own safe defaults, e.g. mypkg.MyTransformer "
        "(comma-separated in the env)",
    ),
)
_LIST_ITEMS = {"serve.skops_trusted": "type names"}  # what a list setting holds, for its error line
BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
SECTIONS = frozenset(s.key.rsplit(".", 1)[0] for s in SETTINGS if "." in s.key)  # storage, registry...


class Value(NamedTuple):
    value: Any
    origin: str


class Config:
    """Resolved settings with their origins."""

    def __init__(
        self, values: dict[str, Value], path: Path | None, context: str | None, looked_for: Path | None = None
    ) -> None:
        self._values = values
        self.path = path  # the file read, None when there was none
        self.context = context
        self.looked_for = looked_for or path  # where the file was looked for

    def __getitem__(self, key: str) -> Any:
        return self._values[key].value

    def origin(self, key: str) -> str:
        return self._values[key].origin

    def items(self) -> list[tuple[str, Value]]:
        return [(s.key, self._values[s.key]) for s in SETTINGS]


def show_value(value: Any) -> str:
    """A resolved value as ``mdl config`` prints it: - for none, a mapping as JSON (as its env variable takes it)."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        import json

        return json.dumps(value, sort_keys=True)
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _coerce(setting: Setting, raw: Any, where: str) -> Any:
    if raw is None:
        return None
    if setting.type is dict:
        return _coerce_overrides(setting.key, raw, where)
    if setting.type is bool:
        return _coerce_bool(setting.key, raw, where)
    if setting.type is list:
        return _coerce_paths(setting.key, raw, where)
    kind = {str: "string", int: "whole number", float: "number"}.get(setting.type, setting.type.__name__)
    try:
        if setting.type is str:
            if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
                raise TypeError
            value: Any = str(raw)
        elif setting.type is int:
            if (
                isinstance(raw, bool)
                or not isinstance(raw, (int, float, str))
                or (isinstance(raw, float) and not raw.is_integer())
            ):
                raise TypeError
            value = int(raw)
        elif setting.type is float:
            if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
                raise TypeError
            try:
                value = float(raw) + 0.0  # + 0.0: no -0.0
            except OverflowError:  # an int too large for a float
                value = math.inf
        else:  # pragma: no cover - no other types declared
            value = raw
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{setting.key} in {where} must be a {kind}, got {_shown(raw)}") from None
    if setting.type is str and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError(f"{setting.key} in {where} must not contain control characters, got {_show(raw)}")
    if setting.type in (int, float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{setting.key} in {where} must be a finite number, got {_show(raw)}")
        if setting.minimum is None and value <= 0:
            raise ConfigError(f"{setting.key} in {where} must be positive, got {_show(raw)}")
        if setting.minimum is not None and value < setting.minimum:
            raise ConfigError(f"{setting.key} in {where} must be at least {setting.minimum:g}, got {_show(raw)}")
        if setting.maximum is not None and value > setting.maximum:
            raise ConfigError(f"{setting.key} in {where} must be at most {_number(setting.maximum)}, got {_show(raw)}")
    if setting.choices and value not in setting.choices:
        raise ConfigError(f"{setting.key} in {where} must be one of {', '.join(setting.choices)}, got {_show(raw)}")
    return value


_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _coerce_bool(key: str, raw: Any, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _BOOLS:
        return _BOOLS[raw.strip().lower()]
    raise ConfigError(f"{key} in {where} must be true or false, got {_shown(raw)}")


def _coerce_paths(key: str, raw: Any, where: str) -> list[str]:
    """A list of file paths: a YAML list, or one string of comma-separated paths (an env variable)."""
    items = [p.strip() for p in raw.split(",")] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(p, str) and p for p in items):
        raise ConfigError(f"{key} in {where} must be a list of {_LIST_ITEMS.get(key, 'file paths')}, got {_shown(raw)}")
    if any(ord(ch) < 32 or ord(ch) == 127 for p in items for ch in p):
        raise ConfigError(f"{key} in {where} must not contain control characters, got {_show(raw)}")
    return items


OVERRIDABLE = ("keep_last", "keep_days", "grace")  # the retention.* keys retention.models may set per model


def _coerce_overrides(key: str, raw: Any, where: str) -> dict[str, dict[str, Any]]:
    """``retention.models``: model name -> {keep_last, keep_days, grace}, each checked like its
    ``retention.*`` key. A null keep_last/keep_days is kept (no such rule for that model); a null grace
    is dropped (the model inherits retention.grace)."""
    from mdl.errors import InvalidInput
    from mdl.names import RULE, validate_name

    shown = _shown(raw)
    if isinstance(raw, str):  # an env variable holds JSON
        import json

        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            pass
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{key} in {where} must be a mapping of model names, got {shown}",
            hint='e.g. {"fraud-detector": {"keep_last": 50}} (JSON in an environment variable); '
            "see config.example.yaml",
        )
    models: dict[str, dict[str, Any]] = {}
    for name, overrides in raw.items():
        if not isinstance(name, str):
            number = isinstance(name, (int, float)) and not isinstance(name, bool)
            raise ConfigError(
                f"model name {_show(name)} under {key} in {where} must be a string",
                hint=f"quote it: '{_show(name)}'" if number else f"a model name {RULE}",
            )
        try:
            validate_name(name)
        except InvalidInput:
            raise ConfigError(f"{key} in {where} names an invalid model {_show(name)}: a model name {RULE}") from None
        where_key = f"{key}.{name}"
        if overrides is None:  # "name:" with nothing under it
            models[name] = {}
            continue
        if not isinstance(overrides, Mapping):
            raise ConfigError(
                f"{where_key} in {where} must be a mapping of {', '.join(OVERRIDABLE)}, got {_shown(overrides)}"
            )
        checked: dict[str, Any] = {}
        for sub, value in overrides.items():
            if not isinstance(sub, str):
                raise ConfigError(
                    f"configuration key {_show(sub)} in {where} must be a string (under {where_key})",
                    hint="see config.example.yaml for every key",
                )
            if sub not in OVERRIDABLE:
                import difflib

                close = difflib.get_close_matches(sub, OVERRIDABLE, n=1, cutoff=0.6)
                hint = f"a model may set {', '.join(OVERRIDABLE)}"
                raise ConfigError(
                    f"unknown configuration key {_show(f'{where_key}.{sub}')} in {where}",
                    hint=f"did you mean {where_key + '.' + close[0]!r}? {hint}" if close else hint,
                )
            if value is None and sub == "grace":
                continue
            checked[sub] = _coerce(BY_KEY[f"retention.{sub}"]._replace(key=f"{where_key}.{sub}"), value, where)
        models[name] = checked
    return models


def _number(value: float) -> str:
    """A limit in an error line: 31536000, not 3.1536e+07."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _shown(raw: Any) -> str:
    """A wrong value in an error line: its kind for containers, else its ``repr``."""
    return "a mapping" if isinstance(raw, Mapping) else "a list" if isinstance(raw, list) else _show(raw)


def _short(text: str, limit: int = 80) -> str:
    """A value quoted in an error line: one line, not too long."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any) -> str:
    """``repr`` of a value for an error line (shortened; ints too long to print are described)."""
    try:
        return _short(repr(value))
    except ValueError:  # an int of more than 4300 digits
        return "a number of more than 4000 digits"


def _flatten(doc: Mapping[Any, Any], where: str, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in doc.items():
        if not isinstance(k, str):
            raise ConfigError(
                f"configuration key {_show(k)} in {where} must be a string"
                + (f" (under {prefix[:-1]})" if prefix else ""),
                hint="see config.example.yaml for every key",
            )
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and key in BY_KEY and BY_KEY[key].type is dict:
            flat[key] = _coerce(BY_KEY[key], v, where)
        elif isinstance(v, Mapping):
            if key in BY_KEY:
                _coerce(BY_KEY[key], v, where)  # raises: "must be a ..., got a mapping"
            if key not in SECTIONS:
                raise _unknown_key(key, where)
            flat.update(_flatten(v, where, key + "."))
        elif key in BY_KEY:
            if v is not None:  # "key:" with no value leaves the setting unset
                flat[key] = _coerce(BY_KEY[key], v, where)  # checked even where env or a flag overrides it
        elif key in SECTIONS and v is None:
            continue  # a section whose keys are all commented out
        elif key in SECTIONS:
            raise ConfigError(
                f"{key} in {where} must be a mapping of {key}.* keys, got {_show(v)}",
                hint="see config.example.yaml for every key",
            )
        else:
            raise _unknown_key(key, where)
    return flat


def _unknown_key(key: str, where: str) -> ConfigError:
    """The error for a key mdl does not know, suggesting the closest known one (a typo, most likely)."""
    import difflib

    known = [*BY_KEY, *SECTIONS]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    if not close and "." not in key:  # a key of its section written at the top level: "url" for storage.url
        close = [k for k in BY_KEY if k.rsplit(".", 1)[-1] == key][:1]
    hint = "see config.example.yaml for every key"
    return ConfigError(
        f"unknown configuration key {key!r} in {where}", hint=f"did you mean {close[0]!r}? {hint}" if close else hint
    )


def _read_file(path: Path) -> dict[str, Any]:
    import yaml  # only commands that read a config file pay for it

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {str(path)!r} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
        ) from None
    try:
        doc = yaml.safe_load(text)
    except Exception as exc:
        # a 13th month, an int of 5000 digits) and RecursionError (absurd nesting): all are "not YAML"
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{at}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys")
    return doc


def load(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: str | Path | None = None,
    context: str | None = None,
) -> Config:
    """Resolve every setting. ``flags`` maps keys to values given on the command line."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    explicit = config_path or env.get("MDL_CONFIG")
    path = Path(explicit) if explicit else config_home() / "config.yaml"
    if explicit and not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    doc = _read_file(path) if path.exists() else {}
    where = str(path)
    contexts = doc.pop("contexts", None)
    current = doc.pop("current-context", None)
    if contexts is None:
        contexts = {}
    if not isinstance(contexts, dict):
        raise ConfigError(f"contexts in {where} must be a mapping of context names, got {_show(contexts)}")
    if current is not None and not isinstance(current, str):
        raise ConfigError(f"current-context in {where} must be a context name (a string), got {_show(current)}")
    top = _flatten(doc, where)
    flat_contexts: dict[str, dict[str, Any]] = {}
    for cname, ctx in contexts.items():  # every context is checked, not only the chosen one
        if not isinstance(cname, str) or not cname or any(ord(ch) < 32 or ord(ch) == 127 for ch in cname):
            raise ConfigError(
                f"context name {_show(cname)} in {where} must be a non-empty string without control characters"
            )
        if not isinstance(ctx, (dict, type(None))):
            raise ConfigError(f"context {cname!r} in {where} must be a mapping, got {_show(ctx)}")
        flat_contexts[cname] = _flatten(ctx or {}, f"{where} (context {cname})")
    chosen = context or env.get("MDL_CONTEXT") or current
    ctx_values: dict[str, Any] = {}
    if chosen:
        if chosen not in flat_contexts:
            known = ", ".join(sorted(flat_contexts)) or "none"
            raise ConfigError(
                f"context {_show(chosen)} is not defined in {where} (defined: {known})",
                hint="mdl config shows the file in use; --context / MDL_CONTEXT pick a context",
            )
        ctx_values = flat_contexts[chosen]

    values: dict[str, Value] = {}
    for s in SETTINGS:
        if s.key in flags:
            values[s.key] = Value(_coerce(s, flags[s.key], "a flag"), "flag")
        elif env.get(s.env) not in (None, ""):
            values[s.key] = Value(_coerce(s, env[s.env], f"env {s.env}"), f"env {s.env}")
        elif s.key in ctx_values:
            origin = f"file {where} (context {chosen})"
            values[s.key] = Value(_coerce(s, ctx_values[s.key], origin[5:]), origin)
        elif s.key in top:
            values[s.key] = Value(_coerce(s, top[s.key], where), f"file {where}")
        else:
            values[s.key] = Value(s.default_value(), "default")
    return Config(values, path if path.exists() else None, chosen, looked_for=path)
