"""The settings models of alerts.yaml and `Config`, the loaded configuration they make."""

from __future__ import annotations

import functools
import re
import typing
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    SecretStr,
    create_model,
    field_validator,
)

from daemon.deadman import DeadmanSettings
from daemon.durations import Duration
from daemon.events import EarningsEvent
from daemon.notify import (
    NOTIFIERS,
    ChannelConfig,
    DeliveryOptions,
    DeliverySettings,
    InhibitRule,
    RouteConfig,
)
from daemon.plugins import PluginRegistry
from daemon.rulecache import RuleFileCache
from daemon.rules import Plan, Rule, compile_rules, expand
from daemon.sources import SOURCES, SourceConfig
from daemon.yamlsrc import Path_


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
        if not re.match(r"^(redis|rediss|unix|redis\+cluster|rediss\+cluster)://", str(v)):
            raise ValueError(f"{v!r} is not a Redis URL; write redis://host:6379/0, or "
                             "redis+cluster://host:7000 for a Redis Cluster")  # fmt: skip
        return v


#: Where the daemon serves HTTP unless `http.listen` says otherwise.
DEFAULT_LISTEN = "127.0.0.1:9464"


class HttpSettings(_Model):
    """The daemon's HTTP server (daemon/web/): health, metrics, the desk's webhooks."""

    listen: str | None = Field(
        None,
        description=f'"host:port" to serve on; unset or empty: {DEFAULT_LISTEN}; "off": no '
        "HTTP server; port 0 picks a free one (logged). Keep it on loopback unless a proxy "
        "guards it (beyond loopback every request needs the token)",
    )
    token: SecretStr | None = Field(
        None,
        description="Bearer token, from the environment (e.g. ${TICKWATCH_API_TOKEN:-}): what "
        "the API's writes need, and every request when served beyond loopback",
    )

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, v: Any) -> str | None:
        if v is None or v == "":  # unset, or an empty ${TICKWATCH_HTTP_LISTEN:-}: the default
            return None
        if v is False or str(v).strip().lower() in ("off", "false", "no", "none"):
            return "off"
        text = str(v)
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"{text!r} is not host:port; write 127.0.0.1:9464, or off")
        return text

    @field_validator("token", mode="before")
    @classmethod
    def _token(cls, v: Any) -> Any:
        return None if v in (None, "") else v  # an empty ${TICKWATCH_API_TOKEN:-}: no token

    @property
    def enabled(self) -> bool:
        return self.listen != "off"

    @property
    def explicit(self) -> bool:
        """Whether alerts.yaml names the address (then failing to bind it stops the start)."""
        return self.listen is not None

    @property
    def address(self) -> tuple[str, int]:
        assert self.enabled
        host, _, port = (self.listen or DEFAULT_LISTEN).rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def shown(self) -> str:
        return self.listen or DEFAULT_LISTEN


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


# Parse alerts.yaml with `settings_model_for(data)`: this class types `sources` and `channels`
# by their base models, the subclass made there by each kind's own model.
class Settings(_Model):
    """alerts.yaml."""

    redis: RedisSettings = Field(default_factory=lambda: RedisSettings())
    edge: EdgeSettings = Field(default_factory=lambda: EdgeSettings())
    evaluator: EvaluatorSettings = Field(default_factory=lambda: EvaluatorSettings())
    calendar: CalendarSettings = Field(default_factory=lambda: CalendarSettings())
    http: HttpSettings = Field(default_factory=lambda: HttpSettings())
    deadman: DeadmanSettings | None = Field(
        None, description="Dead-man's switch: ping a URL every minute while healthy; unset: off"
    )
    symbols: list[str] = Field(default_factory=list, description="Extra symbols to accept")
    groups: dict[str, list[str]] = Field(default_factory=dict)
    sources: list[SourceConfig] = Field(default_factory=list)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
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


def settings_model_for(data: Any) -> type[Settings]:
    """The `Settings` model for raw alerts.yaml `data`, typed by the kinds it names only.

    Only the channel and source types a config uses are imported (a Slack-only desk never
    loads twilio or websockets). A `type:` that is missing, unknown or a plugin that cannot
    load makes the model cover every kind, so the error lists every type allowed."""
    channels = data.get("channels") if isinstance(data, dict) else None
    sources = data.get("sources") if isinstance(data, dict) else None
    ch = _kinds(channels.values() if isinstance(channels, dict) else (), NOTIFIERS)
    src = _kinds(sources if isinstance(sources, list) else (), SOURCES)
    if ch is not None and src is not None:
        try:
            return settings_model(ch, src)
        except KeyError:  # a plugin named by an entry point that does not load (logged)
            pass
    return full_settings_model()


def full_settings_model() -> type[Settings]:
    """`Settings` covering every channel and source kind (imports them all): the JSON Schema."""
    return settings_model(tuple(NOTIFIERS.every()), tuple(SOURCES.every()))


@functools.cache
def settings_model(channel_kinds: tuple[str, ...], source_kinds: tuple[str, ...]) -> type[Settings]:
    """`Settings` whose `channels` and `sources` are the union of these kinds' models."""
    channel: Any = _union(tuple(NOTIFIERS.config_model(k) for k in channel_kinds), ChannelConfig)
    source: Any = _union(tuple(SOURCES.config_model(k) for k in source_kinds), SourceConfig)
    return create_model(
        "Settings",
        __base__=Settings,
        __module__=__name__,
        __doc__=Settings.__doc__,
        sources=(list[source], Field(default_factory=list)),
        channels=(dict[str, channel], Field(default_factory=dict)),
    )


def _kinds(items: typing.Iterable[Any], registry: PluginRegistry[Any]) -> tuple[str, ...] | None:
    """The distinct `type:`s named, built-ins first; None if one is missing or names no
    built-in and no entry point (a typo: the full model words the error)."""
    named = {item.get("type") if isinstance(item, dict) else None for item in items}
    known: typing.Collection[str] = registry.builtin_paths
    if not all(isinstance(k, str) and k in known for k in named):
        known = registry.names()
        if not all(isinstance(k, str) and k in known for k in named):
            return None
    return tuple(k for k in known if k in named)


def _union(models: tuple[type[BaseModel], ...], empty: type[BaseModel]) -> Any:
    if not models:
        return empty
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007


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
        from daemon.config.load import load_config  # the loader imports this module

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
        walk(self.settings.deadman)
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
            escalations={lr.rule.name: lr.rule.escalate for lr in self.rules if lr.rule.escalate},
            earnings=list(self.earnings),
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


def rule_symbols(rule: Rule, cfg: Config) -> list[str]:
    """The symbols `rule` reads, its groups expanded with `cfg`'s."""
    return [sym for ref in rule.symbol_refs for sym in cfg.expand(ref)]
