"""Market-aware routing: the session at an instant, earnings windows, `session:` and
`earnings:` routes, session quiet hours, and the dispatcher putting them together."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from pydantic import ValidationError

from daemon.alerts import AlertEvent
from daemon.events import NEW_YORK, EarningsEvent, dt_to_ms
from daemon.notify.base import ChannelConfig
from daemon.notify.dispatch import Dispatcher
from daemon.notify.inhibit import Inhibitor
from daemon.notify.market_context import MarketContext, MarketNow
from daemon.notify.pipeline import decide
from daemon.notify.quiet import QuietHours
from daemon.notify.route_tree import (
    RouteConfig,
    compile_routes,
    explain,
    parse_within,
    routing_labels,
    targets,
)
from daemon.notify.silences import Silence

HOUR = 3_600_000
DAY = 24 * HOUR
EARNINGS = [
    EarningsEvent("NVDA", dt.date(2026, 2, 25), "amc"),  # meets the market 02-25 16:00
    EarningsEvent("AAPL", dt.date(2026, 1, 29), "amc"),
    EarningsEvent("JPM", dt.date(2026, 4, 14), "bmo"),  # meets the market 04-14 09:30
]


def ny(*a: int) -> int:
    return dt_to_ms(dt.datetime(*a, tzinfo=NEW_YORK))  # type: ignore[misc]


def alert(symbol: str = "NVDA", severity: str = "warning", ts_ms: int = 0) -> AlertEvent:
    return AlertEvent(
        rule="move", key=f"move{{symbol={symbol}}}", state="firing", seq=1, ts_ms=ts_ms,
        severity=severity, summary="s", channels=("desk",), labels={"symbol": symbol},  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture(scope="module")
def ctx() -> MarketContext:
    return MarketContext(EARNINGS)


# --- the session at an instant ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("when", "session", "early"),
    [
        ((2026, 3, 16, 8, 0), "pre", False),  # a Monday
        ((2026, 3, 16, 3, 59), "closed", False),
        ((2026, 3, 16, 9, 29), "pre", False),
        ((2026, 3, 16, 9, 30), "regular", False),
        ((2026, 3, 16, 10, 0), "regular", False),
        ((2026, 3, 16, 16, 0), "post", False),
        ((2026, 3, 16, 16, 30), "post", False),
        ((2026, 3, 16, 21, 0), "closed", False),
        ((2026, 3, 14, 10, 0), "closed", False),  # a Saturday
        ((2026, 3, 15, 12, 0), "closed", False),  # a Sunday
        ((2026, 7, 3, 10, 0), "holiday", False),  # Independence Day, observed
        ((2026, 7, 3, 22, 0), "holiday", False),  # all day
        ((2026, 11, 26, 10, 0), "holiday", False),  # Thanksgiving
        ((2026, 11, 27, 12, 59), "regular", True),  # the day after: closes at 13:00
        ((2026, 11, 27, 13, 30), "post", True),
        ((2026, 11, 27, 14, 0), "post", True),
        ((2026, 11, 27, 8, 0), "pre", True),
        ((2026, 12, 24, 12, 0), "regular", True),  # Christmas Eve
        ((2026, 12, 25, 12, 0), "holiday", False),
    ],
)
def test_the_session_at_an_instant(
    ctx: MarketContext, when: tuple[int, ...], session: str, early: bool
) -> None:
    m = ctx.at(ny(*when))
    assert (m.session, m.early_close) == (session, early)
    assert m.labels == {"session": session, "early_close": "true" if early else "false"}


def test_the_minute_cache_never_serves_a_stale_session(ctx: MarketContext) -> None:
    """Boundaries are whole minutes: one second apart across one, the answers differ."""
    assert ctx.at(ny(2026, 3, 16, 9, 29, 59)).session == "pre"
    assert ctx.at(ny(2026, 3, 16, 9, 30, 0)).session == "regular"
    assert ctx.at(ny(2026, 3, 16, 9, 29, 30)).session == "pre"  # back in time too


# --- earnings windows ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("symbol", "when", "within", "inside"),
    [
        ("NVDA", (2026, 2, 25, 10, 0), DAY, True),  # 6 h before the report
        ("NVDA", (2026, 2, 26, 15, 59), DAY, True),  # just under a day after
        ("NVDA", (2026, 2, 26, 16, 1), DAY, False),
        ("NVDA", (2026, 2, 24, 15, 59), DAY, False),  # just over a day before
        ("NVDA", (2026, 2, 24, 15, 59), 2 * DAY, True),
        ("NVDA", (2026, 2, 25, 10, 0), 1 * HOUR, False),
        ("AAPL", (2026, 2, 25, 10, 0), DAY, False),  # another symbol's report
        ("AAPL", (2026, 1, 30, 9, 0), DAY, True),
        ("JPM", (2026, 4, 13, 18, 0), DAY, True),  # BMO: meets the market at the open
        ("JPM", (2026, 4, 15, 9, 31), DAY, False),
        ("MSFT", (2026, 2, 25, 10, 0), 30 * DAY, False),  # no report known
    ],
)
def test_earnings_within(
    ctx: MarketContext, symbol: str, when: tuple[int, ...], within: int, inside: bool
) -> None:
    assert ctx.at(ny(*when)).earnings_within(symbol, within) is inside


def test_new_earnings_replace_the_old() -> None:
    c = MarketContext()
    now = ny(2026, 2, 25, 10)
    assert not c.at(now).earnings_within("NVDA", DAY)
    assert c.set_earnings(EARNINGS) is True
    assert c.at(now).earnings_within("NVDA", DAY)
    assert c.set_earnings(list(EARNINGS)) is False  # the same: nothing rebuilt
    c.set_earnings([])
    assert not c.at(now).earnings_within("NVDA", DAY)


# --- routes ------------------------------------------------------------------------------------
THREE = {
    "routes": [
        {"earnings": "within 1d", "match": {"severity": "critical"}, "channels": ["oncall"],
         "continue": True},
        {"session": ["regular"], "channels": ["sms"]},
        {"session": ["pre", "post", "closed", "holiday"], "channels": ["slack"]},
    ]
}  # fmt: skip


def channels(a: AlertEvent, m: MarketNow | None) -> list[str]:
    return [t.channel for t in targets(compile_routes(RouteConfig.model_validate(THREE)), a, m)]


def test_session_and_earnings_routes(ctx: MarketContext) -> None:
    session = ctx.at(ny(2026, 2, 25, 10))
    evening = ctx.at(ny(2026, 2, 25, 18))
    later = ctx.at(ny(2026, 3, 4, 11))
    assert channels(alert("NVDA", "critical"), session) == ["oncall", "sms"]
    assert channels(alert("NVDA", "critical"), evening) == ["oncall", "slack"]
    assert channels(alert("NVDA"), session) == ["sms"]  # not critical
    assert channels(alert("MSFT", "critical"), session) == ["sms"]  # no report near
    assert channels(alert("NVDA", "critical"), later) == ["sms"]  # the report is a week past
    assert channels(alert("NVDA"), ctx.at(ny(2026, 7, 3, 11))) == ["slack"]  # a holiday
    # without a market, no session label and no earnings: the root handles it
    assert channels(alert("NVDA", "critical"), None) == ["desk"]


def test_session_is_a_label_for_match_and_silences(ctx: MarketContext) -> None:
    m = ctx.at(ny(2026, 11, 27, 12))
    root = compile_routes(
        RouteConfig.model_validate(
            {"routes": [{"match": {"early_close": "true", "session": "regular"},
                         "channels": ["half-day"]}]}
        )
    )  # fmt: skip
    assert [t.channel for t in targets(root, alert(), m)] == ["half-day"]
    assert [t.channel for t in targets(root, alert(), ctx.at(ny(2026, 11, 25, 12)))] == ["desk"]
    labels = routing_labels(alert(), m)
    assert labels["session"] == "regular" and labels["symbol"] == "NVDA"
    s = Silence("s1", ("session=~pre|post",), "ann", "no extended hours", 0, 2**50, 0)
    assert not s.matches(labels, m.now_ms)
    assert s.matches(routing_labels(alert(), ctx.at(ny(2026, 11, 27, 14))), m.now_ms)


def test_explain_shows_session_and_earnings(ctx: MarketContext) -> None:
    root = compile_routes(RouteConfig.model_validate(THREE))
    m = ctx.at(ny(2026, 2, 25, 10))
    lines = explain(root, routing_labels(alert("NVDA", "critical"), m), m)
    assert lines[0].startswith("route root.0 [severity=critical, earnings within 1d] -> oncall")
    assert lines[1].startswith("route root.1 [session=~(?:regular)] -> sms")


@pytest.mark.parametrize(
    ("cfg", "error"),
    [
        (
            {"session": ["lunch"]},
            "'lunch' is not a session; use pre, regular, post, closed, holiday",
        ),
        ({"session": []}, "list one or more of pre, regular"),
        ({"session": ["pre", "pre"]}, "listed twice"),
        ({"earnings": "1d"}, "write within <duration>"),
        ({"earnings": "within 5 minutes"}, "not a duration"),
        ({"earnings": "within 0s"}, "longer than 0"),
    ],
)
def test_route_fields_are_validated(cfg: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        RouteConfig.model_validate(cfg)


def test_route_fields_accept_the_short_forms() -> None:
    assert RouteConfig.model_validate({"session": "post"}).session == ["post"]
    assert parse_within("within 1d") == DAY
    assert parse_within(" within 1h30m ") == 90 * 60_000


# --- quiet hours by session ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("when", "quiet"),
    [
        ((2026, 3, 16, 8, 0), True),
        ((2026, 3, 16, 10, 0), False),
        ((2026, 3, 16, 16, 30), True),
        ((2026, 3, 14, 10, 0), True),
        ((2026, 11, 26, 10, 0), True),
        ((2026, 11, 27, 12, 0), False),
        ((2026, 11, 27, 14, 0), True),  # after the early close
    ],
)
def test_quiet_hours_by_session(when: tuple[int, ...], quiet: bool) -> None:
    q = QuietHours.model_validate({"sessions": ["pre", "post", "closed", "holiday"]})
    assert q.quiet(ny(*when)) is quiet  # the session from the calendar
    assert q.quiet(0, "regular") is False and q.quiet(0, "holiday") is True  # or as told


@pytest.mark.parametrize(
    ("cfg", "error"),
    [
        ({"sessions": ["post"], "start": "22:00", "end": "07:00"}, "not both"),
        ({"sessions": ["post"], "timezone": "Europe/London"}, "not both"),
        ({}, "give start and end"),
        ({"start": "22:00"}, "give start and end"),
        ({"sessions": ["night"]}, "'night' is not a session"),
        ({"sessions": []}, "list one or more"),
    ],
)
def test_quiet_hours_take_one_form(cfg: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        QuietHours.model_validate(cfg)


def test_only_critical_goes_out_in_session_quiet_time(ctx: MarketContext) -> None:
    quiet = {"sessions": ["pre", "post", "closed", "holiday"]}
    chans = {"desk": ChannelConfig.model_validate({"type": "x", "quiet_hours": quiet})}
    now = ny(2026, 3, 16, 18)

    def outcome(severity: str, at: int) -> str:
        (d,) = decide(
            alert(severity=severity, ts_ms=at), root=compile_routes(None), now_ms=at,
            max_age_ms=HOUR, inhibitor=Inhibitor([]), firing={}, silences=[], channels=chans,
            market=ctx.at(at),
        )  # fmt: skip
        return d.outcome

    assert outcome("warning", now) == "quiet"
    assert outcome("critical", now) == "send"
    assert outcome("warning", ny(2026, 3, 16, 11)) == "send"


# --- the dispatcher (the backtest's and the router's path) ----------------------------------------
def test_the_dispatcher_routes_on_the_market_at_each_time() -> None:
    root = compile_routes(RouteConfig.model_validate(THREE))
    chans = {c: ChannelConfig(type="x") for c in ("oncall", "sms", "slack", "desk")}
    d = Dispatcher(root, Inhibitor([]), chans, HOUR, MarketContext(EARNINGS))
    got = []
    for at, symbol in [((2026, 2, 25, 11), "NVDA"), ((2026, 2, 25, 17), "NVDA"),
                       ((2026, 3, 2, 11), "NVDA"), ((2026, 3, 2, 17), "AAPL")]:  # fmt: skip
        now = ny(*at)
        r = d.route(alert(symbol, "critical", now), now)
        got.append(sorted(n.channel for n in r.singles))
        assert r.firing_set is not None and "session" not in r.firing_set  # the alert's own
    assert got == [["oncall", "sms"], ["oncall", "slack"], ["sms"], ["slack"]]


def test_the_lookup_is_cheap_next_to_decide(ctx: MarketContext) -> None:
    """Per alert: the context costs a fraction of `decide` (printed: `-s` shows the numbers)."""
    root = compile_routes(RouteConfig.model_validate(THREE))
    chans = {c: ChannelConfig(type="x") for c in ("oncall", "sms", "slack", "desk")}
    base = ny(2026, 2, 25, 10)
    n = 20_000

    def per_alert(with_market: bool) -> float:
        t = time.perf_counter()
        for i in range(n):
            now = base + i * 1000
            a = alert("NVDA", "critical", now)
            decide(
                a, root=root, now_ms=now, max_age_ms=HOUR, inhibitor=Inhibitor([]), firing={},
                silences=[], channels=chans, market=ctx.at(now) if with_market else None,
            )  # fmt: skip
        return (time.perf_counter() - t) / n * 1e6

    t0 = time.perf_counter()
    for i in range(n):
        ctx.at(base + i * 1000).earnings_within("NVDA", DAY)
    lookup = (time.perf_counter() - t0) / n * 1e6
    without, with_ = per_alert(False), per_alert(True)
    print(f"\ncontext lookup {lookup:.2f} us; decide {without:.2f} us without, {with_:.2f} with")
    assert lookup < without
