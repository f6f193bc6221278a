"""FeedArbiter: which feed speaks for a symbol (pure logic, time passed in)."""

from __future__ import annotations

from daemon.sources.arbiter import FeedArbiter


def arbiter(standby_after: float = 10.0) -> FeedArbiter:
    """`sip` preferred (0), `iex` the hot backup (1), both carrying AAPL and MSFT, both up."""
    a = FeedArbiter(standby_after)
    a.cover("sip", 0, {"AAPL", "MSFT"})
    a.cover("iex", 1, {"AAPL", "MSFT"})
    a.up("sip")
    a.up("iex")
    return a


def test_the_preferred_feed_is_always_kept_and_the_backup_waits_while_it_delivers() -> None:
    a = arbiter()
    assert a.admit("sip", "AAPL", 100.0)
    assert not a.admit("iex", "AAPL", 100.1)
    assert not a.admit("iex", "AAPL", 109.9)
    assert a.admit("sip", "AAPL", 110.0)


def test_a_dropped_preferred_feed_hands_over_at_once() -> None:
    a = arbiter()
    a.admit("sip", "AAPL", 100.0)
    assert not a.admit("iex", "AAPL", 100.5)
    a.down("sip")
    assert a.admit("iex", "AAPL", 100.6)
    # back up but not yet delivering: a quiet-symbol check needs recent traffic from it
    a.up("sip")
    assert a.admit("iex", "AAPL", 100.7)
    a.admit("sip", "AAPL", 101.0)
    assert not a.admit("iex", "AAPL", 101.1)


def test_a_connected_feed_that_stops_carrying_a_symbol_loses_it_after_standby() -> None:
    a = arbiter(standby_after=10)
    a.admit("sip", "AAPL", 100.0)
    for t in range(101, 111):
        a.admit("sip", "MSFT", float(t))  # sip alive, but AAPL silent on it
        a.admit("iex", "AAPL", float(t) + 0.5)
    # sip's last AAPL is 10.5 s old and iex has been seeing AAPL: iex speaks for AAPL
    assert a.admit("iex", "AAPL", 110.6)
    assert not a.admit("iex", "MSFT", 110.7)  # MSFT still flows on sip


def test_a_quiet_symbol_stays_with_a_live_preferred_feed() -> None:
    """No feed saw TSLA lately: the preferred feed is alive, so the backup's print waits."""
    a = FeedArbiter(10)
    a.cover("sip", 0, {"AAPL", "TSLA"})
    a.cover("iex", 1, {"AAPL", "TSLA"})
    a.up("sip")
    a.up("iex")
    a.admit("sip", "AAPL", 100.0)
    assert not a.admit("iex", "TSLA", 105.0)
    # the preferred feed idle too (no message at all for 10 s): the backup's ticks are kept
    assert a.admit("iex", "TSLA", 120.0)


def test_heartbeats_count_as_alive() -> None:
    a = arbiter()
    a.alive("sip", 100.0)
    assert not a.admit("iex", "AAPL", 105.0)
    assert a.admit("iex", "AAPL", 111.0)


def test_a_symbol_outside_the_preferred_feeds_set_is_never_held_back() -> None:
    a = arbiter()
    a.cover("iex", 1, {"AAPL", "MSFT", "NVDA"})
    a.admit("sip", "AAPL", 100.0)
    assert a.admit("iex", "NVDA", 100.1)


def test_wildcard_coverage_and_equal_priorities() -> None:
    a = FeedArbiter(10)
    a.cover("all", 0, {"*"})
    a.cover("x", 5, {"AAPL"})
    a.cover("y", 5, {"AAPL"})
    for n in ("all", "x", "y"):
        a.up(n)
    a.admit("all", "AAPL", 1.0)
    assert not a.admit("x", "AAPL", 1.1)
    a.down("all")
    assert a.admit("x", "AAPL", 1.2)
    assert a.admit("y", "AAPL", 1.3)  # equal priority: both kept


def test_unknown_feeds_and_priority_changes() -> None:
    a = arbiter()
    assert a.admit("never-registered", "AAPL", 1.0)
    a.admit("sip", "AAPL", 1.0)
    a.cover("iex", -1, {"AAPL"})  # iex now preferred over sip
    assert a.admit("iex", "AAPL", 1.1)
    assert not a.admit("sip", "AAPL", 1.2)
    assert a.snapshot()["iex"] == {"priority": -1, "up": True, "symbols": 1}
