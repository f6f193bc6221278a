"""The route tree: which channels an alert reaches, and how it is grouped on the way.

Alertmanager's routing, for market alerts. Each route matches labels (the alert's labels plus
`rule` and `severity`); the first matching child wins unless it says `continue`, and a route no
child matches handles the alert itself. A route without `channels` sends to the rule's own
`channels:`, so with no `route:` in alerts.yaml every alert goes where its rule says. Group
settings are inherited down the tree. A route may also ask about the market (`session:`, the
virtual labels `session` and `early_close`, and `earnings: within 1d` on the alert's `symbol`),
from a `market_context.MarketNow` the caller computes once per alert. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemon.alerts import AlertEvent
from daemon.durations import Duration, format_duration, parse_duration
from daemon.notify.market_context import MarketNow, MarketSession, check_sessions
from daemon.rules import Escalate

__all__ = [
    "GroupOpts",
    "Matcher",
    "Route",
    "RouteConfig",
    "Target",
    "compile_routes",
    "parse_matcher",
    "parse_within",
    "routing_labels",
]

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Matcher:
    """`label=value`, `label!=value`, `label=~regex`, `label!~regex` (regex: a full match)."""

    label: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str
    _rx: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.label, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        assert self._rx is not None
        hit = self._rx.fullmatch(got) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"


def make_matcher(label: str, op: str, value: str) -> Matcher:
    if op not in ("=", "!=", "=~", "!~"):
        raise ValueError(f"unknown operator {op!r}; use =, !=, =~ or !~")
    rx = None
    if op in ("=~", "!~"):
        try:
            rx = re.compile(value)
        except re.error as e:
            raise ValueError(f"{label}{op}{value}: the regex does not compile ({e})") from None
    return Matcher(label, op, value, rx)  # type: ignore[arg-type]


def parse_matcher(text: str) -> Matcher:
    """`symbol=NVDA` → Matcher; a clear error for anything else."""
    m = _MATCHER.match(text)
    if not m:
        raise ValueError(
            f"{text!r} is not a matcher; write label=value, label!=value, label=~regex "
            "or label!~regex (e.g. symbol=NVDA, rule=~'spread-.*')"
        )
    label, op, value = m.groups()
    return make_matcher(label, op, value.strip("'\""))


def routing_labels(alert: AlertEvent, market: MarketNow | None = None) -> dict[str, str]:
    """What routes, silences and inhibitions match on: the labels, the rule and the severity,
    and with `market` the virtual labels `session` and `early_close` (reserved, like `rule`)."""
    labels = {**alert.labels, "rule": alert.rule, "severity": alert.severity}
    if market is not None:
        labels.update(market.labels)
    return labels


_WITHIN = re.compile(r"^\s*within\s+(.+?)\s*$")


def parse_within(text: str) -> int:
    """`within 1d` → 86_400_000 (ms); a clear error for anything else."""
    m = _WITHIN.match(text)
    if m is None:
        raise ValueError(f"{text!r}: write within <duration>, e.g. within 1d or within 6h")
    ms = int(parse_duration(m.group(1)).total_seconds() * 1000)
    if ms <= 0:
        raise ValueError(f"{text!r}: the window must be longer than 0, e.g. within 1d")
    return ms


class RouteConfig(BaseModel):
    """One node of `route:` in alerts.yaml."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    match: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Labels that must equal a value (or one of a list)"
    )
    match_re: dict[str, str] = Field(
        default_factory=dict, description="Labels that must fully match a regular expression"
    )
    session: list[MarketSession] | None = Field(
        None,
        description="Only while the NYSE is in one of these sessions (New York time): pre "
        "(04:00 to the open), regular (the open to the close, 13:00 on early-close days), "
        "post (the close to 20:00), closed (nights, weekends), holiday (a weekday the exchange "
        "is shut)",
        json_schema_extra={"minItems": 1, "uniqueItems": True},
    )
    earnings: str | None = Field(
        None,
        description="Only when the alert's symbol has an earnings report within this long of "
        "now, before or after the moment it meets the market (the open for BMO, the close "
        "otherwise): within 1d",
        json_schema_extra={"pattern": r"^\s*within\s+\S.*$"},
    )
    channels: list[str] | None = Field(
        None, description="Where matching alerts go; omitted: the rule's own channels"
    )
    continue_: bool = Field(
        False, alias="continue", description="Keep looking at the next sibling routes too"
    )
    group_by: list[str] | None = Field(
        None, description="Labels that split alerts into groups; [...] = one group for all"
    )
    group_wait: Duration | None = Field(
        None, description="How long a new group waits to collect alerts before its first message"
    )
    group_interval: Duration | None = Field(
        None, description="Least time between two messages about the same group"
    )
    repeat_interval: Duration | None = Field(
        None, description="Re-send a group that is still firing after this long without news"
    )
    digest: Duration | None = Field(
        None, description="One message per this period with every alert routed here (digest)"
    )
    escalate: Escalate | None = Field(
        None,
        description="Alerts handled here (and below, unless a child says otherwise) that stay "
        "firing and unacknowledged are sent on: {after: 10m, to: [sms_oncall], repeat: 3}; a "
        "rule's own escalate: wins",
    )
    routes: list[RouteConfig] = Field(default_factory=list)

    @field_validator("match_re")
    @classmethod
    def _regexes(cls, v: dict[str, str]) -> dict[str, str]:
        for label, rx in v.items():
            make_matcher(label, "=~", rx)
        return v

    @field_validator("session", mode="before")
    @classmethod
    def _sessions(cls, v: object) -> object:
        return check_sessions(v, "session")

    @field_validator("earnings")
    @classmethod
    def _earnings(cls, v: str | None) -> str | None:
        if v is not None:
            parse_within(v)
        return v


@dataclass(frozen=True, slots=True)
class GroupOpts:
    """How alerts on a route are batched. All zero: each transition is sent on its own, now."""

    group_by: tuple[str, ...] | None = None  # None: no grouping; ("...",): one group for all
    group_wait_ms: int = 0
    group_interval_ms: int = 0
    repeat_interval_ms: int = 0
    digest: bool = False

    @property
    def grouped(self) -> bool:
        return self.group_by is not None


@dataclass(frozen=True, slots=True)
class Route:
    """A compiled route: its path in the tree (for `routes test` and group ids)."""

    path: str
    matchers: tuple[Matcher, ...]
    channels: tuple[str, ...] | None
    cont: bool
    opts: GroupOpts
    children: tuple[Route, ...]
    #: `earnings: within ...`: the alert's symbol reports within this many ms of now.
    earnings_ms: int | None = None
    #: What an unacknowledged firing handled here escalates to (inherited down the tree).
    escalate: Escalate | None = None

    def matches(self, labels: Mapping[str, str], market: MarketNow | None = None) -> bool:
        if not all(m.matches(labels) for m in self.matchers):
            return False
        if self.earnings_ms is None:
            return True
        return market is not None and market.earnings_within(
            labels.get("symbol", ""), self.earnings_ms
        )

    def describe(self) -> str:
        """Its matchers as `routes test` shows them."""
        parts = [str(m) for m in self.matchers]
        if self.earnings_ms is not None:
            within = format_duration(timedelta(milliseconds=self.earnings_ms))
            parts.append(f"earnings within {within}")
        return ", ".join(parts) or "(matches everything)"


@dataclass(frozen=True, slots=True)
class Target:
    """One destination of an alert: a channel, reached through a route, grouped as it says."""

    channel: str
    route: Route

    def group_key(self, labels: Mapping[str, str]) -> str:
        """The group this alert joins on this channel: route path plus the group_by values."""
        by = self.route.opts.group_by or ()
        values = ",".join(f"{k}={labels.get(k, '')}" for k in by if k != "...")
        return f"{self.channel}|{self.route.path}|{values}"


def _ms(d: timedelta | None) -> int | None:
    return None if d is None else int(d.total_seconds() * 1000)


def _opts(cfg: RouteConfig, parent: GroupOpts) -> GroupOpts:
    if cfg.digest is not None:
        every = _ms(cfg.digest) or 0
        return GroupOpts(("...",), every, every, 0, digest=True)
    group_by = tuple(cfg.group_by) if cfg.group_by is not None else parent.group_by
    wait = _ms(cfg.group_wait)
    interval = _ms(cfg.group_interval)
    repeat = _ms(cfg.repeat_interval)
    return GroupOpts(
        group_by,
        parent.group_wait_ms if wait is None else wait,
        parent.group_interval_ms if interval is None else interval,
        parent.repeat_interval_ms if repeat is None else repeat,
        digest=False,
    )


def compile_routes(
    cfg: RouteConfig | None,
    path: str = "root",
    parent: GroupOpts | None = None,
    parent_escalate: Escalate | None = None,
) -> Route:
    """The tree as matchers and inherited options; no `route:` at all is an empty root."""
    cfg = cfg or RouteConfig()
    escalate = cfg.escalate if cfg.escalate is not None else parent_escalate
    opts = _opts(cfg, parent or GroupOpts())
    matchers: list[Matcher] = []
    for label, want in cfg.match.items():
        if isinstance(want, list):
            alts = "|".join(re.escape(w) for w in want)
            matchers.append(make_matcher(label, "=~", f"(?:{alts})"))
        else:
            matchers.append(make_matcher(label, "=", want))
    matchers += [make_matcher(label, "=~", rx) for label, rx in cfg.match_re.items()]
    if cfg.session is not None:
        alts = "|".join(cfg.session)
        matchers.append(make_matcher("session", "=~", f"(?:{alts})"))
    children = tuple(
        compile_routes(child, f"{path}.{i}", opts, escalate) for i, child in enumerate(cfg.routes)
    )
    channels = tuple(cfg.channels) if cfg.channels is not None else None
    earnings_ms = parse_within(cfg.earnings) if cfg.earnings is not None else None
    return Route(path, tuple(matchers), channels, cfg.continue_, opts, children, earnings_ms,
                 escalate)  # fmt: skip


def _walk(node: Route, labels: Mapping[str, str], market: MarketNow | None) -> list[Route]:
    """Alertmanager's matching: children first, the first match stops unless it continues."""
    out: list[Route] = []
    for child in node.children:
        if child.matches(labels, market):
            out += _walk(child, labels, market)
            if not child.cont:
                break
    return out or [node]


def find_route(root: Route, path: str) -> Route | None:
    """The route at `path` ("root.0.1") of this tree, or None (a reload removed it)."""
    if root.path == path:
        return root
    for child in root.children:
        if path == child.path or path.startswith(child.path + "."):
            found = find_route(child, path)
            if found is not None:
                return found
    return None


def matched(root: Route, labels: Mapping[str, str], market: MarketNow | None = None) -> list[Route]:
    """The routes that handle an alert with these routing labels (none if the root refuses)."""
    return _walk(root, labels, market) if root.matches(labels, market) else []


def targets(root: Route, alert: AlertEvent, market: MarketNow | None = None) -> list[Target]:
    """Every (channel, route) the alert goes to, each channel once (the first route wins).

    Without `market` the session labels are absent and `earnings:` routes never match."""
    labels = routing_labels(alert, market)
    out: dict[str, Target] = {}
    for r in matched(root, labels, market):
        for ch in r.channels if r.channels is not None else alert.channels:
            out.setdefault(ch, Target(ch, r))
    return list(out.values())


def explain(root: Route, labels: Mapping[str, str], market: MarketNow | None = None) -> list[str]:
    """The matched route paths with their matchers, for `tickwatch routes test`."""
    lines = []
    for r in matched(root, labels, market):
        what = r.describe()
        chans = ", ".join(r.channels) if r.channels is not None else "the rule's channels"
        grouping = (
            "digest" if r.opts.digest else f"grouped by {list(r.opts.group_by)}"
            if r.opts.group_by is not None else "sent one by one"
        )  # fmt: skip
        lines.append(f"route {r.path} [{what}] -> {chans}; {grouping}")
    return lines
