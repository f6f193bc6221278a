"""Headline matching beyond keywords: regex, sentiment labels, per-symbol alerts, local scoring."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from daemon.events import Headline, sentiment_label
from daemon.rules.conditions import HeadlineRegex
from daemon.rules.evaluate import Engine
from daemon.sources.base import SourceContext
from daemon.sources.normalize import EdgeFilter
from daemon.sources.sentiment import LOCAL_SCORER, with_local_score
from daemon.sources.synthetic import ScriptedEvent, SyntheticConfig, SyntheticSource
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore
from tests.conftest import MakeEngine

T0 = 1_774_000_000_000

RULES = """\
rules:
  - name: capex
    when:
      headline:
        symbols: mag7
        regex: '\\b(raise[sd]?|cut[s]?)\\b.{0,40}\\bcapex\\b'
        sentiment: {label: [Bullish, Bearish]}
    channels: [console]
  - name: capex-once
    when:
      headline:
        symbols: mag7
        any_of: [capex]
        per: headline
    channels: [console]
"""


def news(title: str, symbols: tuple[str, ...], **kw: Any) -> Headline:
    fields: dict[str, Any] = {"sentiment": 0.5, "source": "wire", "ts_ms": T0}
    fields.update(kw)
    return Headline(id=title, title=title, symbols=symbols, **fields)


def keys_of(eng: Engine, h: Headline) -> list[str]:
    return sorted(e.key for e in eng.on_headline(h))


@pytest.mark.parametrize(
    ("score", "label"),
    [
        (-1.0, "Bearish"),
        (-0.35, "Bearish"),
        (-0.3499, "Somewhat-Bearish"),
        (-0.15, "Somewhat-Bearish"),
        (-0.1499, "Neutral"),
        (0.1499, "Neutral"),
        (0.15, "Somewhat-Bullish"),
        (0.3499, "Somewhat-Bullish"),
        (0.35, "Bullish"),
    ],
)
def test_label_bands_are_alpha_vantages(score: float, label: str) -> None:
    assert sentiment_label(score) == label


def test_regex_and_label_filter(make_engine: MakeEngine) -> None:
    eng = make_engine(RULES)
    hit = news("Microsoft raises its fiscal 2027 capex", ("MSFT",), sentiment=0.4)
    assert "capex{symbol=MSFT}" in keys_of(eng, hit)
    # the regex wants raise/cut before capex, within 40 characters
    assert "capex{symbol=NVDA}" not in keys_of(
        eng, news("Nvidia capex raises eyebrows", ("NVDA",), sentiment=0.6)
    )
    # Somewhat-Bullish is not in [Bullish, Bearish]
    assert "capex{symbol=AAPL}" not in keys_of(
        eng, news("Apple raises capex", ("AAPL",), sentiment=0.2)
    )
    (ev,) = [e for e in eng.on_headline(news("Apple cuts capex", ("AAPL",), sentiment=-0.5))
             if e.rule == "capex"]  # fmt: skip
    assert ev.values["sentiment_label"] == "Bearish"


def test_one_alert_per_tagged_symbol_each_on_its_own_sentiment(make_engine: MakeEngine) -> None:
    eng = make_engine(RULES)
    h = news(
        "Microsoft raises capex while Nvidia cuts capex",
        ("MSFT", "NVDA", "XOM"),
        sentiment=0.0,
        ticker_sentiment={"MSFT": 0.6, "NVDA": 0.2},
    )
    events = eng.on_headline(h)
    per_symbol = sorted(e.key for e in events if e.rule == "capex")
    # MSFT Bullish fires; NVDA Somewhat-Bullish does not; XOM is not watched
    assert per_symbol == ["capex{symbol=MSFT}"]
    (msft,) = [e for e in events if e.rule == "capex"]
    assert msft.values["symbols"] == "MSFT NVDA"
    # per: headline: one alert, under the first watched symbol
    assert [e.key for e in events if e.rule == "capex-once"] == ["capex-once{symbol=MSFT}"]


def test_both_symbols_alert_when_both_pass(make_engine: MakeEngine) -> None:
    eng = make_engine(RULES)
    h = news("MSFT and NVDA raise capex", ("MSFT", "NVDA"), sentiment=0.7)
    assert [k for k in keys_of(eng, h) if k.startswith("capex{")] == [
        "capex{symbol=MSFT}",
        "capex{symbol=NVDA}",
    ]


def test_catastrophic_regex_gives_up_instead_of_stalling() -> None:
    rx = HeadlineRegex(r"(a+)+$", timeout=0.05)
    t = time.perf_counter()
    assert rx.search("a" * 40 + "!") is False  # exponential backtracking in plain `re`
    assert time.perf_counter() - t < 5  # a stall would take minutes; this is not a speed test
    assert rx.search("aaa") is True


def test_bad_regex_is_a_load_error_with_a_line(tmp_path: Path, make_engine: MakeEngine) -> None:
    from daemon.config import ConfigError

    bad = RULES.replace("\\b(raise[sd]?|cut[s]?)", "(raise")
    assert bad != RULES
    with pytest.raises(ConfigError) as exc:
        make_engine(bad)
    text = str(exc.value)
    assert "r.yaml:" in text and "regex" in text and "does not compile" in text


def test_local_scorer_fills_only_missing_scores() -> None:
    scored = with_local_score(news("Microsoft shares soar on strong AI demand", (), sentiment=None))
    assert scored.scored_by == LOCAL_SCORER
    assert scored.sentiment is not None and scored.sentiment > 0.15
    gloomy = with_local_score(news("Amazon warns of weak cloud demand, shares plunge", (),
                                   sentiment=None))  # fmt: skip
    assert gloomy.sentiment is not None and gloomy.sentiment < -0.15
    provided = news("Microsoft shares soar", (), sentiment=-0.2)
    assert with_local_score(provided) is provided


async def test_unscored_headlines_are_scored_at_the_edge(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    cfg = SyntheticConfig(
        type="synthetic",
        name="syn",
        prices={"MSFT": 400.0},
        events=[
            ScriptedEvent(after=0, headline="Microsoft posts terrible losses", symbols=["MSFT"])
        ],
    )
    ctx = SourceContext(StreamStore(redis, keys), EdgeFilter(frozenset({"MSFT"})), tmp_path)
    await SyntheticSource(cfg, ctx).step()
    ((_, entries),) = await redis.xread({keys.news: "0"})
    h = Headline.from_fields(entries[0][1])
    assert h.scored_by == LOCAL_SCORER and h.sentiment is not None and h.sentiment < 0
