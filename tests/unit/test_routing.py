"""The pipeline's pure stages on their own: routes, inhibition, quiet hours, silences, groups."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from daemon.alerts import AlertEvent
from daemon.events import dt_to_ms
from daemon.notify.base import ChannelConfig
from daemon.notify.grouping import Group
from daemon.notify.inhibit import Inhibitor, InhibitRule
from daemon.notify.pipeline import STAGES, decide
from daemon.notify.quiet import QuietHours
from daemon.notify.route_tree import (
    RouteConfig,
    compile_routes,
    explain,
    parse_matcher,
    routing_labels,
    targets,
)
from daemon.notify.silences import Silence

NY = ZoneInfo("America/New_York")
MIN = 60_000
T0 = dt_to_ms(dt.datetime(2026, 4, 9, 13, 37, tzinfo=NY))  # a Thursday


def alert(
    rule: str = "spread",
    severity: str = "warning",
    state: str = "firing",
    channels: tuple[str, ...] = ("desk",),
    ts_ms: int = T0,
    seq: int = 1,
    **labels: str,
) -> AlertEvent:
    key = rule + ("{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}" if labels
                  else "")  # fmt: skip
    return AlertEvent(
        rule=rule, key=key, state=state, seq=seq, ts_ms=ts_ms,  # type: ignore[arg-type]
        severity=severity, summary="s", channels=channels, labels=labels,  # type: ignore[arg-type]
    )  # fmt: skip


def tree(**cfg: Any) -> Any:
    return compile_routes(RouteConfig.model_validate(cfg))


# --- matchers and routes ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "labels", "hit"),
    [
        ("symbol=NVDA", {"symbol": "NVDA"}, True),
        ("symbol=NVDA", {"symbol": "NVDAX"}, False),
        ("symbol!=NVDA", {"symbol": "MSFT"}, True),
        ("symbol!=NVDA", {}, True),
        ("rule=~spread-.*", {"rule": "spread-ytd"}, True),
        ("rule=~spread", {"rule": "spread-ytd"}, False),  # a full match
        ("rule!~spread-.*", {"rule": "capex"}, True),
        ("symbol = 'BRK.B'", {"symbol": "BRK.B"}, True),
    ],
)
def test_matchers(text: str, labels: dict[str, str], hit: bool) -> None:
    assert parse_matcher(text).matches(labels) is hit


@pytest.mark.parametrize("bad", ["symbol", "=NVDA", "symbol=~(", "9x=1"])
def test_bad_matchers_say_how_to_write_one(bad: str) -> None:
    with pytest.raises(ValueError, match=r"matcher|regex"):
        parse_matcher(bad)


def test_no_route_means_the_rules_own_channels() -> None:
    root = compile_routes(None)
    assert [t.channel for t in targets(root, alert(channels=("desk", "phone")))] == [
        "desk",
        "phone",
    ]


def test_first_match_wins_unless_continue() -> None:
    root = tree(
        routes=[
            {"match": {"severity": "critical"}, "channels": ["phone"], "continue": True},
            {"match": {"symbol": ["NVDA", "MSFT"]}, "channels": ["megacap"]},
            {"match_re": {"symbol": "N.*"}, "channels": ["never"]},
        ]
    )
    crit = alert(severity="critical", symbol="NVDA")
    assert [t.channel for t in targets(root, crit)] == ["phone", "megacap"]
    assert [t.channel for t in targets(root, alert(symbol="MSFT"))] == ["megacap"]
    # nothing matches: the root handles it, with the rule's channels
    assert [t.channel for t in targets(root, alert(symbol="XMAG"))] == ["desk"]
    assert explain(root, routing_labels(crit))[0].startswith("route root.0 [severity=critical]")


def test_nested_routes_inherit_grouping() -> None:
    root = tree(
        group_by=["rule"],
        group_wait="30s",
        routes=[{"match": {"severity": "info"}, "routes": [{"match": {"rule": "x"}}]}],
    )
    (t,) = targets(root, alert(rule="x", severity="info"))
    assert t.route.path == "root.0.0"
    assert t.route.opts.group_by == ("rule",) and t.route.opts.group_wait_ms == 30_000
    assert t.group_key(routing_labels(alert(rule="x"))) == "desk|root.0.0|rule=x"


# --- inhibition ---------------------------------------------------------------------------------
def test_critical_mutes_warning_for_the_same_symbol_only() -> None:
    inh = Inhibitor([InhibitRule(source=["severity=critical"], target=["severity=warning"],
                                 equal=["symbol"])])  # fmt: skip
    crit = alert("down-8", "critical", symbol="NVDA")
    firing = {crit.key: routing_labels(crit)}
    warn = alert("down-3", symbol="NVDA")
    assert inh.muted_by(warn.key, routing_labels(warn), firing) == crit.key
    other = alert("down-3", symbol="MSFT")
    assert inh.muted_by(other.key, routing_labels(other), firing) is None
    # an alert never mutes itself
    assert inh.muted_by(crit.key, routing_labels(crit), firing) is None


# --- quiet hours -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hhmm", "day", "quiet"),
    [
        ((23, 0), 9, True),
        ((6, 59), 10, True),
        ((7, 0), 10, False),
        ((12, 0), 9, False),
        ((23, 0), 11, False),
        ((1, 0), 12, False),
    ],
)
def test_quiet_hours_span_midnight_and_weekdays(
    hhmm: tuple[int, int], day: int, quiet: bool
) -> None:
    q = QuietHours.model_validate(
        {"start": "22:00", "end": "07:00", "weekdays": ["mon", "tue", "wed", "thu"]}
    )
    now = dt_to_ms(dt.datetime(2026, 4, day, *hhmm, tzinfo=NY))  # 9 = Thu, 11 = Sat
    assert q.quiet(now) is quiet


def test_quiet_hours_refuse_a_bad_zone() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        QuietHours.model_validate({"start": "22:00", "end": "07:00", "timezone": "Mars/Base"})


# --- silences -------------------------------------------------------------------------------------
def test_silence_needs_author_reason_and_an_end() -> None:
    with pytest.raises(ValueError, match="author"):
        Silence("s1", ("symbol=NVDA",), " ", "why", T0, T0 + MIN, T0)
    with pytest.raises(ValueError, match="reason"):
        Silence("s1", ("symbol=NVDA",), "ann", "", T0, T0 + MIN, T0)
    with pytest.raises(ValueError, match="end after"):
        Silence("s1", ("symbol=NVDA",), "ann", "why", T0, T0, T0)
    s = Silence("s1", ("symbol=NVDA", "rule=~down-.*"), "ann", "earnings", T0, T0 + MIN, T0)
    labels = routing_labels(alert("down-3", symbol="NVDA"))
    assert s.matches(labels, T0) and not s.matches(labels, T0 + MIN)
    assert Silence.from_json(s.to_json()) == s


# --- groups -----------------------------------------------------------------------------------
def test_group_waits_then_batches_by_interval_then_repeats() -> None:
    root = tree(group_by=["rule"], group_wait="30s", group_interval="5m", repeat_interval="1h")
    (t,) = targets(root, alert())
    g = Group("k", "desk", t.route.opts)
    a, b = alert(symbol="NVDA"), alert(symbol="MSFT", severity="critical")
    g.add(a, T0)
    assert g.flush(T0 + 29_000) is None
    g.add(b, T0 + 10_000)
    n = g.flush(T0 + 30_000)
    assert n is not None and n.kind == "group"
    assert [x.key for x in n.alerts] == [b.key, a.key]  # most severe first
    # news within group_interval waits for it
    g.add(alert(symbol="NVDA", state="resolved"), T0 + 60_000)
    assert g.flush(T0 + 60_000) is None
    n2 = g.flush(T0 + 30_000 + 5 * MIN)
    assert n2 is not None and [x.state for x in n2.alerts] == ["resolved"]
    assert n2.key != n.key  # each flush is its own idempotent message
    # still firing, no news: a repeat after repeat_interval
    assert g.flush(T0 + 30_000 + 5 * MIN + 59 * MIN) is None
    n3 = g.flush(T0 + 30_000 + 5 * MIN + 60 * MIN)
    assert n3 is not None and n3.meta.get("repeat") == "1" and [x.key for x in n3.alerts] == [b.key]
    restored = Group.from_json(g.to_json(), t.route.opts)
    assert restored.firing.keys() == g.firing.keys() and restored.flushes == 3


def test_digest_is_one_group_for_everything() -> None:
    root = tree(routes=[{"match": {"severity": "info"}, "digest": "15m"}])
    ts = [targets(root, alert(rule=r, severity="info")) for r in ("a", "b")]
    keys = {t[0].group_key(routing_labels(alert(rule=r))) for t, r in zip(ts, "ab", strict=True)}
    assert len(keys) == 1 and ts[0][0].route.opts.digest


# --- the pipeline, in order -----------------------------------------------------------------------
def run(
    a: AlertEvent, *, now: int = T0, told: list[str] | None = None, **kw: Any
) -> list[tuple[str, str]]:
    args: dict[str, Any] = {
        "root": compile_routes(None), "now_ms": now, "max_age_ms": 15 * MIN,
        "inhibitor": Inhibitor([]), "firing": {}, "silences": [],
        "channels": {"desk": ChannelConfig(type="x"), "phone": ChannelConfig(type="x")},
    }  # fmt: skip
    args.update(kw)
    return [(d.channel, d.outcome) for d in decide(a, told_channels=told, **args)]


def test_stage_order_is_written_once() -> None:
    assert STAGES[:6] == ("age", "route", "inhibit", "time window", "silence", "group")


def test_decisions() -> None:
    two = ("desk", "phone")
    assert run(alert(channels=two)) == [("desk", "send"), ("phone", "send")]
    assert run(alert(channels=two), now=T0 + 16 * MIN) == [("desk", "stale"), ("phone", "stale")]
    hours = {"start": "13:00", "end": "14:00"}
    quiet = {
        "desk": ChannelConfig(type="x"),
        "phone": ChannelConfig.model_validate({"type": "x", "quiet_hours": hours}),
    }
    assert run(alert(channels=two), channels=quiet) == [("desk", "send"), ("phone", "quiet")]
    assert run(alert(channels=two, severity="critical"), channels=quiet)[1] == ("phone", "send")
    s = Silence("s1", ("rule=spread",), "ann", "known", T0 - MIN, T0 + MIN, T0)
    assert run(alert(), silences=[s]) == [("desk", "silenced")]
    inh = Inhibitor([InhibitRule(source=["severity=critical"], target=["severity=warning"])])
    crit = alert("crash", "critical")
    assert run(alert(), inhibitor=inh, firing={crit.key: routing_labels(crit)}) == [
        ("desk", "inhibited")
    ]
    # a resolve goes only where the firing went (even if the routes changed since)
    resolved = alert(channels=two, state="resolved")
    assert run(resolved, told=["phone"]) == [("phone", "send")]
    assert run(resolved, told=[]) == []
    grouped = tree(group_by=["symbol"])
    assert run(alert(), root=grouped) == [("desk", "group")]
