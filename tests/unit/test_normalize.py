"""The edge: bad ticks and headlines are refused with a named reason, and counted."""

from __future__ import annotations

from collections import Counter

import pytest

from daemon.events import Headline, Tick
from daemon.sources.normalize import REASONS, EdgeFilter, title_key

NOW = 1_773_669_600_000  # 2026-03-16 14:00 UTC
SEC = 1000
FUTURE_TOL = 5 * 60 * SEC
OOO_TOL = 5 * SEC


def edge() -> EdgeFilter:
    return EdgeFilter(
        frozenset({"NVDA", "AAPL"}), future_tolerance_ms=FUTURE_TOL, out_of_order_ms=OOO_TOL
    )


@pytest.mark.parametrize(
    ("tick", "reason"),
    [
        (Tick("NVDA", NOW, float("nan")), "nan"),
        (Tick("NVDA", NOW, float("inf")), "nan"),
        (Tick("NVDA", NOW, float("-inf")), "nan"),
        (Tick("NVDA", NOW, 0.0), "non_positive"),
        (Tick("NVDA", NOW, -1.5), "non_positive"),
        (Tick("XOM", NOW, 100.0), "unknown_symbol"),
        (Tick("nvda", NOW, 100.0), "unknown_symbol"),
        (Tick("NVDA", NOW + FUTURE_TOL + 1, 100.0), "future"),
        (Tick("NVDA", NOW, 100.0, bid=101.0, ask=100.5), "bad_quote"),  # crossed
        (Tick("NVDA", NOW, 100.0, bid=float("nan"), ask=100.5), "bad_quote"),
        (Tick("NVDA", NOW, 100.0, bid=0.0), "bad_quote"),
        (Tick("NVDA", NOW, 100.0, ask=-1.0), "bad_quote"),
    ],
)
def test_tick_refused(tick: Tick, reason: str) -> None:
    e = edge()
    assert e.tick_reason(tick, NOW) == reason
    assert e.rejected == Counter({reason: 1})
    assert reason in REASONS


@pytest.mark.parametrize(
    "tick",
    [
        Tick("NVDA", NOW, 100.0),
        Tick("NVDA", NOW + FUTURE_TOL, 100.0),  # at the tolerance: accepted
        Tick("NVDA", NOW, 100.0, bid=100.0, ask=100.0),  # locked, not crossed
        Tick("NVDA", NOW, 100.0, bid=99.9, ask=100.1),
        Tick("AAPL", NOW, 1e-6),
    ],
)
def test_tick_accepted(tick: Tick) -> None:
    e = edge()
    assert e.tick_reason(tick, NOW) is None
    assert not e.rejected


def test_out_of_order_tolerance_per_symbol() -> None:
    e = edge()
    assert e.tick_reason(Tick("NVDA", NOW, 100.0), NOW) is None
    # late within the tolerance: accepted (and does not move the clock back)
    assert e.tick_reason(Tick("NVDA", NOW - OOO_TOL, 100.0), NOW) is None
    assert e.tick_reason(Tick("NVDA", NOW - OOO_TOL - 1, 100.0), NOW) == "out_of_order"
    # another symbol has its own clock
    assert e.tick_reason(Tick("AAPL", NOW - 60 * SEC, 200.0), NOW) is None
    # a tick stamped ahead of now (within the future tolerance) is accepted, but the clock stops
    # at now: a source whose clock runs 10 s fast must not get the next on-time ticks refused
    assert e.tick_reason(Tick("NVDA", NOW + 10 * SEC, 100.0), NOW) is None
    assert e.tick_reason(Tick("NVDA", NOW - OOO_TOL, 100.0), NOW) is None
    assert e.tick_reason(Tick("NVDA", NOW - OOO_TOL - 1, 100.0), NOW) == "out_of_order"
    assert e.rejected == Counter({"out_of_order": 2})


def test_refused_ticks_do_not_move_the_clock() -> None:
    e = edge()
    assert e.tick_reason(Tick("NVDA", NOW, 100.0), NOW) is None
    # refused for its quote, far ahead of the clock: must not make later ticks "out of order"
    assert e.tick_reason(Tick("NVDA", NOW + 60 * SEC, 100.0, bid=2.0, ask=1.0), NOW) == "bad_quote"
    assert e.tick_reason(Tick("NVDA", NOW + SEC, 100.0), NOW) is None


def test_reset_clock() -> None:
    e = edge()
    e.tick_reason(Tick("NVDA", NOW, 100.0), NOW)
    assert e.tick_reason(Tick("NVDA", NOW - 60 * SEC, 100.0), NOW) == "out_of_order"
    e.reset_clock()
    assert e.tick_reason(Tick("NVDA", NOW - 60 * SEC, 100.0), NOW) is None


def test_counts_per_reason() -> None:
    e = edge()
    ticks = [
        Tick("NVDA", NOW, float("nan")),
        Tick("NVDA", NOW, 0.0),
        Tick("NVDA", NOW, -3.0),
        Tick("XOM", NOW, 1.0),
        Tick("XOM", NOW, 2.0),
        Tick("SPY", NOW, 3.0),
        Tick("NVDA", NOW, 100.0),
        Tick("NVDA", NOW + FUTURE_TOL + SEC, 100.0),
        Tick("AAPL", NOW, 100.0, bid=2.0, ask=1.0),
    ]
    reasons = [e.tick_reason(t, NOW) for t in ticks]
    assert reasons.count(None) == 1
    assert e.rejected == Counter(
        {"nan": 1, "non_positive": 2, "unknown_symbol": 3, "future": 1, "bad_quote": 1}
    )
    assert sum(e.rejected.values()) == len(ticks) - 1


def test_nan_checked_before_symbol() -> None:
    # one reason per refusal, the first that applies: a NaN from an unknown symbol is "nan"
    e = edge()
    assert e.tick_reason(Tick("XOM", NOW, float("nan")), NOW) == "nan"


# --- headlines -----------------------------------------------------------------------------


def headline(hid: str, title: str | None = None, ts_ms: int = NOW) -> Headline:
    """A headline whose default title differs per id (equal titles are one story)."""
    title = f"Nvidia raises guidance ({hid})" if title is None else title
    return Headline(id=hid, ts_ms=ts_ms, title=title, symbols=("NVDA",))


@pytest.mark.parametrize("title", ["", "   ", "\n\t"])
def test_empty_headline_refused(title: str) -> None:
    e = edge()
    assert e.headline_reason(headline("h1", title), NOW) == "empty_headline"
    assert e.rejected == Counter({"empty_headline": 1})


def test_duplicate_headline_refused() -> None:
    e = edge()
    assert e.headline_reason(headline("h1"), NOW) is None
    assert e.headline_reason(headline("h2"), NOW) is None
    assert e.headline_reason(headline("h1", "Same id, new title"), NOW) == "duplicate_headline"
    assert e.headline_reason(headline("h1"), NOW) == "duplicate_headline"
    assert e.rejected == Counter({"duplicate_headline": 2})


def test_future_headline_refused_and_not_remembered() -> None:
    e = edge()
    assert e.headline_reason(headline("h1", ts_ms=NOW + FUTURE_TOL + 1), NOW) == "future"
    assert e.headline_reason(headline("h1", ts_ms=NOW + FUTURE_TOL), NOW) is None
    # an empty headline is not remembered either: the same id with a title later is accepted
    assert e.headline_reason(headline("h2", " "), NOW) == "empty_headline"
    assert e.headline_reason(headline("h2"), NOW) is None
    assert e.rejected == Counter({"future": 1, "empty_headline": 1})


# --- the same story from another provider ----------------------------------------------------

HOUR = 3_600_000


def test_title_key_folds_case_punctuation_spacing_and_unicode() -> None:
    assert title_key("NVIDIA  Raises Capex—Guidance!") == "nvidia raises capex guidance"
    assert title_key("Apple’s “AI” push") == title_key("apple's 'AI' push") == "apple s ai push"
    assert title_key("ＡＢＣ_def") == "abc def"
    assert title_key(" ?! ") == ""


def test_same_title_under_another_id_within_24h_is_a_duplicate() -> None:
    e = edge()
    assert e.headline_reason(headline("alpaca:1", "Nvidia raises guidance"), NOW) is None
    again = headline("av:9f2", "NVIDIA raises guidance.", ts_ms=NOW - 23 * HOUR)
    assert e.headline_reason(again, NOW) == "duplicate_headline"
    # a day later the same words are a new story (and become the one remembered)
    later = headline("av:a01", "Nvidia raises guidance", ts_ms=NOW + 24 * HOUR)
    assert e.headline_reason(later, NOW + 24 * HOUR) is None
    assert e.rejected == Counter({"duplicate_headline": 1})


def test_titles_with_no_words_are_not_matched_by_title() -> None:
    e = edge()
    assert e.headline_reason(headline("h1", "!!!"), NOW) is None
    assert e.headline_reason(headline("h2", "!!!"), NOW) is None


def test_restore_forgets_titles_of_a_batch_that_was_not_written() -> None:
    e = edge()
    assert e.headline_reason(headline("h1", "Old story", ts_ms=NOW - 30 * HOUR), NOW) is None
    snap = e.snapshot()
    assert e.headline_reason(headline("h2", "New story"), NOW) is None
    assert e.headline_reason(headline("h3", "Old story"), NOW) is None  # > 24 h: new again
    e.restore(snap)
    assert e.headline_reason(headline("h2b", "New story"), NOW) is None  # forgotten
    # "Old story" is back to its first sighting, 30 h ago: 25 h ago is within 24 h of it
    old = headline("h4", "old story", ts_ms=NOW - 25 * HOUR)
    assert e.headline_reason(old, NOW) == "duplicate_headline"
