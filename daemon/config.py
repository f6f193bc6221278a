"""Load and validate alerts.yaml and the rule files it includes: the one place config is parsed.

`load_config` returns a `Config` or raises `ConfigError` carrying *every* problem found, each as
`file:line: path: message` with a hint on how to fix it. Secrets come from `${VAR}` expansion
only, live in `SecretStr` fields, and `Config.dump()` redacts them.
"""

from __future__ import annotations

import csv
import difflib
import functools
import glob
import logging
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    SecretStr,
    ValidationError,
    field_validator,
)

from daemon.durations import Duration
from daemon.events import EarningsEvent
from daemon.notify.base import ChannelConfig
from daemon.notify.delivery import DeliveryOptions, DeliverySettings
from daemon.notify.inhibit import InhibitRule
from daemon.notify.registry import channel_config_models
from daemon.notify.routing import RouteConfig
from daemon.notify.templates import check_messages
from daemon.rulecache import RuleFileCache
from daemon.rules.compile import Plan, compile_rules
from daemon.rules.expr import ExprError, compile_expr
from daemon.rules.groups import expand
from daemon.rules.schema import CrossesCond, Rule, RuleFile
from daemon.rules.template import check_template
from daemon.sources.calendar import load_anchors_csv, load_earnings_csv
from daemon.sources.registry import source_config_models
from daemon.yamlsrc import Path_, Problem, YamlSource, load_yaml

__all__ = ["Config", "ConfigError", "RedisSettings", "Settings", "load_config", "mask_url"]

log = logging.getLogger("tickwatch.config")

SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,14}$")
GROUP = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RedisSettings(_Model):
    """Where state lives. No `url` means: start the embedded server with data in `data_dir`."""

    url: str | None = Field(None, description="redis://host:port/db; empty = embedded server")
    prefix: str = Field("tw", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    data_dir: Path = Path("var")
    stream_maxlen: int = Field(1_000_000, ge=1000, description="Approximate cap per stream")

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, v: Any) -> Any:
        if v in ("", None):
            return None
        if not re.match(r"^(redis|rediss|unix)://", str(v)):
            raise ValueError(f"{v!r} is not a Redis URL; write redis://host:6379/0")
        return v


class HttpSettings(_Model):
    """`/healthz` and `/metrics` for the on-call engineer and Prometheus (daemon/http.py)."""

    listen: str | None = Field(
        None,
        description='"host:port" to serve /healthz and /metrics on, e.g. "127.0.0.1:9464"; '
        "port 0 picks a free one (logged); unset: no HTTP server. Keep it on loopback unless a "
        "proxy guards it",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str | None) -> str | None:
        if not v:  # unset, or an empty ${TICKWATCH_HTTP_LISTEN:-}
            return None
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"{v!r} is not host:port; write 127.0.0.1:9464")
        return v

    @property
    def address(self) -> tuple[str, int]:
        assert self.listen is not None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class EdgeSettings(_Model):
    """How strict the edge is with incoming events."""

    future_tolerance: Duration = Field(default=timedelta(minutes=5))
    out_of_order_tolerance: Duration = Field(default=timedelta(seconds=5))


class CalendarSettings(_Model):
    """Where scheduled events come from."""

    earnings: Path | None = Field(None, description="CSV: symbol,date,when[,note]")


class EvaluatorSettings(_Model):
    batch: int = Field(1000, ge=1, le=50_000, description="Events read per batch")
    warmup: Duration = Field(
        default=timedelta(hours=1), description="History replayed into windows at start"
    )


def _union(models: tuple[type[BaseModel], ...]) -> Any:
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007


if typing.TYPE_CHECKING:
    from daemon.sources.base import SourceConfig

    ChannelUnion = ChannelConfig
else:
    SourceConfig = _union(source_config_models())
    ChannelUnion = _union(channel_config_models())


class Settings(_Model):
    """alerts.yaml."""

    redis: RedisSettings = Field(default_factory=lambda: RedisSettings())
    edge: EdgeSettings = Field(default_factory=lambda: EdgeSettings())
    evaluator: EvaluatorSettings = Field(default_factory=lambda: EvaluatorSettings())
    calendar: CalendarSettings = Field(default_factory=lambda: CalendarSettings())
    http: HttpSettings = Field(default_factory=lambda: HttpSettings())
    symbols: list[str] = Field(default_factory=list, description="Extra symbols to accept")
    groups: dict[str, list[str]] = Field(default_factory=dict)
    sources: list[SourceConfig] = Field(default_factory=list)
    channels: dict[str, ChannelUnion] = Field(default_factory=dict)
    include: list[str] = Field(default_factory=list, description="Rule file globs")
    ops_channels: list[str] = Field(
        default_factory=list, description="Where the daemon reports its own trouble (bad reload)"
    )
    route: RouteConfig | None = Field(
        None,
        description="Alertmanager-style route tree; omitted: each alert goes to its rule's "
        "channels, one message per transition",
    )
    inhibit_rules: list[InhibitRule] = Field(
        default_factory=list, description="A firing alert mutes lesser ones with equal labels"
    )
    delivery: DeliveryOptions = Field(
        default_factory=lambda: DeliveryOptions(),
        description="How long a notification may keep failing before it is dead-lettered",
    )
    max_alert_age: Duration = Field(
        default=timedelta(minutes=15),
        description="After downtime, older transitions are recorded, not sent (one summary "
        "notice says what was skipped)",
    )
    rules: list[Rule] = Field(default_factory=list)
    anchors: dict[str, dict[date, PositiveFloat]] = Field(
        default_factory=dict,
        description="Prices that returns since a date are measured from, per symbol and date: "
        "{XMAG: {2026-01-01: 25.0}} is XMAG as 2026 began (the 2025 close). History that "
        "reaches back past the date wins",
    )
    anchors_csv: Path | None = Field(None, description="Anchor prices as CSV: symbol,date,price")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@dataclass(frozen=True, slots=True)
class LoadedRule:
    rule: Rule
    file: str
    line: int


@dataclass
class Config:
    settings: Settings
    rules: list[LoadedRule]
    base_dir: Path
    files: list[str] = field(default_factory=list)
    #: alerts.yaml path → the environment variables its value came from.
    env_vars: dict[Path_, list[str]] = field(default_factory=dict)
    #: Earnings reports from the calendar file, sorted by date.
    earnings: list[EarningsEvent] = field(default_factory=list)
    #: Configured anchor prices (`anchors:` and `anchors_csv:`), by (symbol, date).
    anchors: dict[tuple[str, date], float] = field(default_factory=dict)
    #: The file this was loaded from, and the environment used: a reload reads them again.
    path: Path = Path("alerts.yaml")
    env: typing.Mapping[str, str] | None = None
    #: Rule files as parsed, for the next reload (see `RuleFileCache`).
    file_cache: RuleFileCache = field(default_factory=lambda: RuleFileCache())

    def reload(self) -> Config:
        """Load the same files again (raises ConfigError, leaving this Config untouched).

        Rule files that did not change since this config read them are not parsed again
        (`RuleFileCache`): a reload after an edit of one file costs that file."""
        return load_config(self.path, self.env, cache=self.file_cache)

    @property
    def watched_globs(self) -> list[str]:
        """Absolute globs of every file this config is made of (for the file watcher)."""
        return [str(self.path.resolve())] + [
            str((self.base_dir / g).resolve()) for g in self.settings.include
        ]

    def env_vars_of_channel(self, name: str) -> dict[str, str]:
        """Field (as written in YAML) → the environment variable that supplies it."""
        prefix = ("channels", name)
        return {
            str(path[2]): names[0]
            for path, names in self.env_vars.items()
            if path[:2] == prefix and len(path) == 3
        }

    def expand(self, ref: str | list[str] | None) -> list[str]:
        """Symbols named by a symbol, a group, or a list of either, in order, de-duplicated."""
        return expand(self.settings.groups, ref)

    def compile(
        self,
        rules: typing.Iterable[Rule] | None = None,
        earnings: typing.Sequence[EarningsEvent] | None = None,
    ) -> Plan:
        """The evaluation plan for this config's rules (or `rules`), with its groups and
        calendar (or `earnings`): `compile_rules` itself takes no Config, so the engine
        never imports this module."""
        return compile_rules(
            (lr.rule for lr in self.rules) if rules is None else rules,
            groups=self.settings.groups,
            earnings=self.earnings if earnings is None else earnings,
            anchors=self.anchors,
            versions=self.file_cache.versions,
        )

    @functools.cached_property
    def universe(self) -> frozenset[str]:
        """Every symbol the daemon accepts: listed, grouped, or named by a rule (computed once:
        a loaded config does not change)."""
        syms = set(self.settings.symbols)
        for members in self.settings.groups.values():
            syms.update(members)
        for lr in self.rules:
            syms.update(rule_symbols(lr.rule, self))
        return frozenset(syms)

    def channel(self, name: str) -> ChannelConfig:
        cfg: ChannelConfig = self.settings.channels[name]
        return cfg

    def secret_values(self) -> list[str]:
        """Every secret in the config (channels' and sources' tokens, keys, Apprise URLs), for
        the log filter that scrubs them should one ever reach a log line."""
        out: list[str] = []

        def walk(value: Any) -> None:
            if isinstance(value, SecretStr):
                if value.get_secret_value():
                    out.append(value.get_secret_value())
            elif isinstance(value, BaseModel):
                for _, v in value:
                    walk(v)
            elif isinstance(value, list | tuple):
                for v in value:
                    walk(v)
            elif isinstance(value, dict):
                for v in value.values():
                    walk(v)

        walk(list(self.settings.channels.values()))
        walk(self.settings.sources)
        return out

    @property
    def delivery(self) -> DeliverySettings:
        s = self.settings
        return DeliverySettings(
            route=s.route,
            inhibit_rules=list(s.inhibit_rules),
            max_alert_age_ms=int(s.max_alert_age.total_seconds() * 1000),
            channels=dict(s.channels),
            data_clock=all(src.type == "replay" for src in s.sources),
            give_up_after=s.delivery.give_up_after,
        )

    def dump(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets and URL passwords masked."""
        data = self.settings.model_dump(mode="json", by_alias=True, exclude={"rules"})
        url = data["redis"].get("url")
        if url:
            data["redis"]["url"] = mask_url(url)
        data["rules"] = [lr.rule.name for lr in self.rules]
        return data


def mask_url(url: str) -> str:
    """A Redis URL fit for logs: userinfo and `?password=` masked."""
    # userinfo ends at the last '@' before the path; unix:// URLs pass ?password=
    url = re.sub(r"//[^/?#]*@", "//***@", url)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", url)


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every reason, located."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        n = len(problems)
        super().__init__(
            "\n".join(str(p) for p in problems) + f"\n{n} problem{'s' * (n != 1)} found"
        )


def rule_symbols(rule: Rule, cfg: Config) -> list[str]:
    """The symbols `rule` reads, its groups expanded with `cfg`'s."""
    return [sym for ref in rule.symbol_refs for sym in cfg.expand(ref)]


#: Starts the message of a problem that is tickwatch's fault, not the file's (see load_config).
INTERNAL_ERROR = "internal error"


def load_config(
    path: str | Path,
    env: typing.Mapping[str, str] | None = None,
    *,
    cache: RuleFileCache | None = None,
    include: typing.Sequence[str] | None = None,
) -> Config:
    """Parse, validate and cross-check alerts.yaml and its rule files.

    Returns a `Config` or raises `ConfigError`, whatever the files hold: a running daemon keeps
    its rules on a `ConfigError`, and `tickwatch check` prints it. An exception no check turned
    into a problem is a tickwatch bug; it too becomes a `ConfigError` (and its traceback is
    logged) rather than stopping the daemon that was reloading.

    `include` (rule files or globs, relative to alerts.yaml or absolute) stands for the
    config's own `include:` and rules: `tickwatch backtest --rules` tries other rule files
    with the same settings.
    """
    try:
        return _load_config(
            Path(path), env, cache if cache is not None else RuleFileCache(), include
        )
    except ConfigError:
        raise
    except Exception as e:
        log.error("checking %s failed unexpectedly", path, exc_info=e)
        raise ConfigError(
            [
                Problem(
                    str(path),
                    0,
                    "",
                    f"{INTERNAL_ERROR} while checking the config ({type(e).__name__}: {e}); "
                    "nothing was loaded. Please report it as a tickwatch bug, with the files",
                )
            ]
        ) from e


def _load_config(
    path: Path,
    env: typing.Mapping[str, str] | None,
    cache: RuleFileCache,
    include: typing.Sequence[str] | None = None,
) -> Config:
    base = path.parent
    problems: list[Problem] = []
    src, found = load_yaml(path, _display(path, base), env)
    problems += found
    if src.data is None:
        raise ConfigError(problems)
    if not isinstance(src.data, dict):
        raise ConfigError([*problems, src.problem((), "expected a mapping of settings")])
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(src.data)
    except ValidationError as e:
        problems += translate(e, src, Settings)

    # Rule files are read even when alerts.yaml has problems, so one run reports everything.
    includes = settings.include if settings else _raw_includes(src.data)
    if include is not None:
        includes = list(include)
    loaded: list[LoadedRule] = []
    if settings is not None and include is None:
        for i, rule in enumerate(settings.rules):
            loaded.append(LoadedRule(rule, src.file, src.line_of(("rules", i))))
    sources: dict[str, YamlSource] = {src.file: src}
    # aligned with `loaded`: a rule's path in its file (names may repeat; that is an error)
    rule_paths: list[Path_] = [("rules", i) for i in range(len(loaded))]
    files = [src.file]
    included = {src.file}
    for pattern_i, pattern in enumerate(includes):
        try:
            matches = sorted(glob.glob(str(base / pattern)))
        except (OSError, ValueError) as e:  # a NUL or an over-long pattern, an unreadable dir
            problems.append(src.problem(("include", pattern_i), f"cannot list {pattern!r}: {e}"))
            continue
        if not matches:
            problems.append(src.problem(("include", pattern_i), f"no file matches {pattern!r}"))
        for file in matches:
            display = _display(Path(file), base)
            if display in included:
                continue  # matched by an earlier pattern too: load each file once
            included.add(display)
            hit = cache.get(display, Path(file))
            if hit is not None:
                fsrc, rf = hit
            else:
                stamp = cache.stamp(Path(file))
                fsrc, found = load_yaml(Path(file), display, env)
                problems += found
                if fsrc.data is None or found:
                    continue
                try:
                    rf = RuleFile.model_validate(cache.reusable(display, fsrc.data))
                except ValidationError as e:
                    problems += translate(e, fsrc, RuleFile)
                    continue
                cache.put(display, stamp, fsrc, rf)
            sources[fsrc.file] = fsrc
            files.append(fsrc.file)
            for i, rule in enumerate(rf.rules):
                loaded.append(LoadedRule(rule, fsrc.file, fsrc.line_of(("rules", i))))
                rule_paths.append(("rules", i))
    cache.keep_only(included)
    if settings is None:
        raise ConfigError(problems)
    cfg = Config(settings, loaded, base, files, src.env_vars, path=path, env=env, file_cache=cache)

    if settings.calendar.earnings is not None:
        cal = base / settings.calendar.earnings
        no_events: list[EarningsEvent] = []
        cfg.earnings, found = _read_csv(
            load_earnings_csv, cal, base, "the earnings calendar", no_events
        )
        problems += found
    if settings.anchors_csv is not None:
        anchors_path = base / settings.anchors_csv
        no_anchors: dict[tuple[str, date], float] = {}
        cfg.anchors, found = _read_csv(
            load_anchors_csv, anchors_path, base, "the anchor prices", no_anchors
        )
        problems += found
    for sym, by_day in settings.anchors.items():  # written in alerts.yaml: wins over the CSV
        for day, price in by_day.items():
            cfg.anchors[(sym, day)] = price
    problems += _cross_check(cfg, src, sources, rule_paths)
    if problems:
        raise ConfigError(problems)
    return cfg


def _raw_includes(data: dict[str, Any]) -> list[str]:
    inc = data.get("include")
    return [p for p in inc if isinstance(p, str)] if isinstance(inc, list) else []


def _display(path: Path, base: Path) -> str:
    """Paths in messages are relative to the working directory when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):  # elsewhere; a gone cwd; a symlink loop
        return str(path)


_T = typing.TypeVar("_T")


def _read_csv(
    loader: typing.Callable[[Path, str], tuple[_T, list[Problem]]],
    path: Path,
    base: Path,
    what: str,
    empty: _T,
) -> tuple[_T, list[Problem]]:
    """A calendar CSV named in alerts.yaml, with what its loader leaves uncaught as a problem."""
    display = _display(path, base)
    try:
        return loader(path, display)
    except UnicodeDecodeError as e:
        line = e.object[: e.start].count(b"\n") + 1 if isinstance(e.object, bytes) else 0
        msg = (
            f"cannot read {what}: not UTF-8 text (byte 0x{e.object[e.start]:02X}): save it as UTF-8"
        )
        return empty, [Problem(display, line, "", msg)]
    except (OSError, ValueError, csv.Error) as e:  # a NUL in the path, a NUL in the file
        return empty, [Problem(display, 0, "", f"cannot read {what}: {e}")]


def _cross_check(
    cfg: Config,
    main: YamlSource,
    sources: dict[str, YamlSource],
    rule_paths: list[Path_],
) -> list[Problem]:
    s = cfg.settings
    problems: list[Problem] = []
    for sym_i, sym in enumerate(s.symbols):
        if not SYMBOL.match(sym):
            problems.append(main.problem(("symbols", sym_i), _bad_symbol(sym)))
    for gname, members in s.groups.items():
        if not GROUP.match(gname):
            problems.append(
                main.problem(("groups", gname), f"group name {gname!r} must be lower-case")
            )
        for m_i, m in enumerate(members):
            if not SYMBOL.match(m):
                problems.append(main.problem(("groups", gname, m_i), _bad_symbol(m)))
    names = [c.name for c in s.sources]
    for i, n in enumerate(names):
        if names.index(n) != i:
            problems.append(main.problem(("sources", i, "name"), f"duplicate source name {n!r}"))

    for c_i, ch in enumerate(s.ops_channels):
        if ch not in s.channels:
            problems.append(
                main.problem(
                    ("ops_channels", c_i),
                    f"unknown channel {ch!r}{_did_you_mean(ch, s.channels)}",
                )
            )
    if s.route is not None:
        problems += _check_routes(main, s.route, ("route",), s.channels)
    seen: dict[str, str] = {}
    channel_types = {name: ch.type for name, ch in s.channels.items()}
    cache = cfg.file_cache
    passed = cache.passed_under((s.groups, channel_types))
    for lr, rpath in zip(cfg.rules, rule_paths, strict=True):
        rsrc = sources[lr.file]
        rule = lr.rule
        if rule.name in seen:
            problems.append(
                rsrc.problem(
                    (*rpath, "name"),
                    f"rule name {rule.name!r} is already used at {seen[rule.name]}; "
                    "rule names must be unique",
                )
            )
        seen.setdefault(rule.name, f"{lr.file}:{lr.line}")
        if id(rule) in passed:  # a cached rule, unchanged, checked against these settings
            continue
        found = _check_rule(rule, rsrc, rpath, s, channel_types)
        problems += found
        if not found and id(rule) in cache.versions:
            passed.add(id(rule))
    return problems


def _check_rule(
    rule: Rule, rsrc: YamlSource, rpath: Path_, s: Settings, channel_types: dict[str, str]
) -> list[Problem]:
    """What one rule refers to that the settings do not have, or writes that cannot work."""
    problems: list[Problem] = []
    kinds: list[str] = []
    for wpath, w in rule.when.walk_paths((*rpath, "when")):
        kind = w.kind
        kinds.append(kind)
        if kind in ("all", "any", "not"):
            continue
        if kind == "expr":
            try:
                compile_expr(w.expr or "")
            except ExprError as e:
                col = f" (column {e.column})" if getattr(e, "column", None) else ""
                problems.append(rsrc.problem((*wpath, "expr"), f"{e}{col}"))
            continue
        cond = w.condition
        if isinstance(cond, CrossesCond) and cond.expr is not None:
            try:
                compile_expr(cond.expr, condition=False)
            except ExprError as e:
                col = f" (column {e.column})" if getattr(e, "column", None) else ""
                problems.append(rsrc.problem((*wpath, kind, "expr"), f"{e}{col}"))
        parts: list[tuple[Any, Path_]] = [(cond, (*wpath, kind))]
        if getattr(cond, "spread", None) is not None:
            parts.append((cond.spread, (*wpath, kind, "spread")))  # type: ignore[union-attr]
        for part, at in parts:
            for attr in ("symbols", "a", "b"):
                ref = getattr(part, attr, None)
                refs = [] if ref is None else [ref] if isinstance(ref, str) else ref
                for r_i, r in enumerate(refs):
                    where: Path_ = (*at, attr)
                    if isinstance(ref, list):
                        where = (*where, r_i)
                    msg = _check_ref(r, s.groups, allow_group=attr == "symbols")
                    if msg:
                        problems.append(rsrc.problem(where, msg))
    for c_i, ch in enumerate(rule.channels):
        if ch not in s.channels:
            known = ", ".join(sorted(s.channels)) or "(none configured)"
            problems.append(
                rsrc.problem(
                    (*rpath, "channels", c_i),
                    f"unknown channel {ch!r}{_did_you_mean(ch, s.channels)}; "
                    f"channels in alerts.yaml: {known}",
                )
            )
    for attr in ("message", "resolved_message"):
        template = getattr(rule, attr)
        msg = check_template(template, kinds) if template is not None else None
        if msg:
            problems.append(rsrc.problem((*rpath, attr), msg))
    for key, msg in check_messages(rule.messages, channel_types):
        problems.append(rsrc.problem((*rpath, "messages", key), msg))
    return problems


def _check_routes(
    main: YamlSource, route: RouteConfig, path: Path_, channels: dict[str, ChannelUnion]
) -> list[Problem]:
    problems = []
    for c_i, ch in enumerate(route.channels or []):
        if ch not in channels:
            problems.append(
                main.problem(
                    (*path, "channels", c_i), f"unknown channel {ch!r}{_did_you_mean(ch, channels)}"
                )
            )
    for i, child in enumerate(route.routes):
        problems += _check_routes(main, child, (*path, "routes", i), channels)
    return problems


def _bad_symbol(sym: str) -> str:
    return f"{sym!r} is not a ticker symbol; write it upper-case, e.g. NVDA or BRK.B"


def _check_ref(ref: str, groups: dict[str, list[str]], *, allow_group: bool) -> str | None:
    if ref in groups:
        return None if allow_group else f"{ref!r} is a group; this field takes one symbol"
    if SYMBOL.match(ref):
        return None
    if GROUP.match(ref):
        known = ", ".join(sorted(groups)) or "(none defined)"
        return f"unknown group {ref!r}{_did_you_mean(ref, groups)}; groups in alerts.yaml: {known}"
    return _bad_symbol(ref)


def _did_you_mean(word: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- pydantic errors -> located problems ----------------------------------------------------


def translate(err: ValidationError, src: YamlSource, model: type[BaseModel]) -> list[Problem]:
    """Turn pydantic's errors into `Problem`s with file:line and a readable message."""
    out: list[Problem] = []
    seen: set[str] = set()
    for e in err.errors():
        path = _data_path(src.data, e["loc"])
        msg = _message(e, model)
        problem = src.problem(path, msg)
        if str(problem) not in seen:
            seen.add(str(problem))
            out.append(problem)
    return out


def _data_path(data: Any, loc: tuple[int | str, ...]) -> Path_:
    """The part of pydantic's `loc` that names real data (drops union tags and wrappers).

    A key absent from the data is kept only as the last element: that is the missing or
    unknown field the message is about; anywhere else it is a union tag.
    """
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
            path.append(part)
        elif i == len(loc) - 1 and isinstance(part, str) and not _is_tag(part):
            path.append(part)
    return tuple(path)


def _is_tag(part: str) -> bool:
    return part.startswith(("function-", "union[", "tagged-union[")) or part in (
        "str",
        "list[str]",
        "date",
    )


def _message(e: Any, model: type[BaseModel]) -> str:
    etype = e["type"]
    loc = e["loc"]
    inp = e.get("input")
    if etype == "extra_forbidden":
        key = str(loc[-1])
        allowed = _fields_at(model, loc[:-1])
        hint = _did_you_mean(key, allowed)
        listing = f"; allowed here: {', '.join(sorted(allowed))}" if allowed else ""
        return f"unknown field {key!r}{hint}{listing}"
    if etype == "missing":
        return f"missing required field {loc[-1]!r}"
    if etype in ("value_error", "assertion_error"):
        return str(e["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if etype == "union_tag_invalid":
        ctx = e.get("ctx", {})
        return f"type {ctx.get('tag')!r} is not one of {ctx.get('expected_tags')}"
    if etype == "union_tag_not_found":
        return "missing required field 'type'"
    if etype == "literal_error":
        return f"{inp!r} is not allowed; use {e['ctx']['expected']}"
    if etype == "string_pattern_mismatch":
        return f"{inp!r} does not match the pattern {e['ctx']['pattern']}"
    if etype in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping (key: value), got {_short(inp)}"
    return f"{_short(inp)}: {e['msg']}"


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) < 60 else text[:57] + "..."


def _fields_at(model: Any, loc: tuple[int | str, ...]) -> list[str]:
    """Field names (by alias) of the model found by walking `loc` from `model`."""
    node: Any = model
    for part in loc:
        node = _step(node, part)
        if node is None:
            return []
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [f.alias or n for n, f in node.model_fields.items()]
    return []


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        models = [a for a in get_args(tp) if a is not type(None)]
        models = [_unwrap(a) for a in models]
        if len(models) == 1:
            return models[0]
        return tuple(models)
    return tp


def _step(node: Any, part: int | str) -> Any:
    node = _unwrap(node)
    if isinstance(node, tuple):  # a union: pick the member named by a tag, or the only model
        named = [m for m in node if isinstance(m, type) and _tag_of(m) == part]
        if named:
            return named[0]
        for m in node:
            found = _step(m, part)
            if found is not None:
                return found
        return None
    origin = get_origin(node)
    if origin is list and isinstance(part, int):
        return get_args(node)[0]
    if origin is dict:
        return get_args(node)[1]
    if isinstance(node, type) and issubclass(node, BaseModel):
        for n, f in node.model_fields.items():
            if part in (n, f.alias):
                return f.annotation
    return None


def _tag_of(model: type) -> str | None:
    if issubclass(model, BaseModel) and "type" in model.model_fields:
        ann = model.model_fields["type"].annotation
        args = get_args(ann)
        if args:
            return str(args[0])
    return None
