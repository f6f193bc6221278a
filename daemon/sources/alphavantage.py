"""Alpha Vantage NEWS_SENTIMENT headlines, polled (PROTOCOLS.md §5).

Two quirks shape this module. Alpha Vantage answers throttling and errors with HTTP 200 and a
`Note` / `Information` / `Error Message` body (the Information text quotes the API key), so every
answer is checked before `feed` is read. And `tickers=A,B` means articles mentioning A *and* B,
not either: a comma list would silently narrow the news, so `scope: tickers` asks once per
ticker, and `scope: market` asks once for the latest news of the whole market and keeps the
items tagged with a symbol the rules need (one call per poll: fits the free tier's daily quota).

Items carry no id; the id is derived from the URL, so the same article is the same headline in
every poll. Polls re-read `overlap` before the last `time_published` seen (Alpha Vantage indexes
some stories late); ids seen in that overlap are kept in the cursor, so a restart neither drops
nor repeats a headline. The edge refuses the same story from another provider by its title.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from daemon.durations import Duration
from daemon.events import Headline
from daemon.sources.base import FatalSourceError, SourceContext
from daemon.sources.poller import Http, Poller, PollerConfig, PollError, Provider, Throttled
from daemon.sources.poller import now_ms as _now_ms

__all__ = [
    "ALPHAVANTAGE",
    "LABEL_SCORES",
    "AlphaVantageNewsConfig",
    "AlphaVantageNewsSource",
    "check_av_payload",
    "parse_av_time",
    "parse_news_feed",
    "parse_news_item",
]

log = logging.getLogger("tickwatch.sources.alphavantage")

ALPHAVANTAGE = Provider("Alpha Vantage", "https://www.alphavantage.co", ("ALPHAVANTAGE_API_KEY",))

AvTopic = Literal[
    "blockchain", "earnings", "ipo", "mergers_and_acquisitions", "financial_markets",
    "economy_fiscal", "economy_monetary", "economy_macro", "energy_transportation", "finance",
    "life_sciences", "manufacturing", "real_estate", "retail_wholesale", "technology",
]  # fmt: skip

#: A score inside each label's band, for items that give a label but no usable score; the
#: extremes sit on the band edge, so `min: 0.35` still matches an item labelled Bullish.
LABEL_SCORES: dict[str, float] = {
    "Bearish": -0.35,
    "Somewhat-Bearish": -0.25,
    "Neutral": 0.0,
    "Somewhat-Bullish": 0.25,
    "Bullish": 0.35,
}

_AV_TIME = re.compile(r"^\d{8}T\d{4}(\d{2})?$")  # strptime alone reads "T1530" as 15:03:00
_SEEN_MAX = 2000  # ids kept in the cursor (those published within the overlap)


# --- pure parsing -----------------------------------------------------------------------------


def check_av_payload(payload: Any, http: Http) -> None:
    """Raise for Alpha Vantage's HTTP-200 answers that are not data (§5.2). Texts are redacted:
    the Information text can hold the key. A rejected key is fatal; throttling is Throttled."""
    if not isinstance(payload, dict):
        return
    for key in ("Note", "Information"):
        if key in payload:
            text = http.redact(str(payload[key]))[:300]
            raise Throttled(f"Alpha Vantage throttled the request ({key}: {text})")
    if "Error Message" in payload:
        text = http.redact(str(payload["Error Message"]))[:300]
        low = text.lower()
        if "apikey" in low or "api key" in low:
            raise FatalSourceError(
                f"Alpha Vantage refused the API key ({text}); check {http.key_hint}"
            )
        raise PollError(f"Alpha Vantage error: {text}")


def parse_av_time(value: Any) -> int | None:
    """`YYYYMMDDTHHMMSS` (UTC, per PROTOCOLS.md; also without seconds) → epoch ms, else None."""
    if not isinstance(value, str) or not _AV_TIME.match(value.strip()):
        return None
    text = value.strip()
    fmt = "%Y%m%dT%H%M%S" if len(text) == 15 else "%Y%m%dT%H%M"
    try:
        return int(datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp() * 1000)
    except ValueError:
        return None


def format_av_time(ms: int, *, seconds: bool = True) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime(
        "%Y%m%dT%H%M%S" if seconds else "%Y%m%dT%H%M"
    )


def _number(value: Any) -> float | None:
    """Scores come as numbers or as strings (§5.1 type quirks); bools, NaN and junk → None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def _score(value: Any, label: Any) -> float | None:
    """The -1..1 score; when missing or out of range, a score inside the label's band."""
    score = _number(value)
    if score is not None and -1.0 <= score <= 1.0:
        return score
    if isinstance(label, str):
        return LABEL_SCORES.get(label.strip().replace("_", "-"))
    return None


def headline_id(url: str, title: str, published: str) -> str:
    """Stable across polls: the URL's hash (or the title's and time's when there is no URL)."""
    basis = url.strip() or f"{title}\n{published}"
    return "av:" + hashlib.sha1(basis.encode("utf-8")).hexdigest()[:20]


def parse_news_item(
    item: Any, *, source: str = "alphavantage", min_relevance: float = 0.0
) -> Headline | None:
    """One `feed` item → Headline, or None when it cannot be read (no object, no valid time).

    Tickers below `min_relevance` are not tagged. An empty title passes through: the edge
    refuses it with its own reason.
    """
    if not isinstance(item, dict):
        return None
    published = item.get("time_published")
    ts_ms = parse_av_time(published)
    if ts_ms is None:
        return None
    title = item.get("title")
    url = item.get("url")
    summary = item.get("summary")
    title = title.strip() if isinstance(title, str) else ""
    url = url.strip() if isinstance(url, str) else ""
    symbols: list[str] = []
    per_ticker: dict[str, float] = {}
    entries = item.get("ticker_sentiment")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("ticker"), str):
            continue
        ticker = entry["ticker"].strip().upper()
        relevance = _number(entry.get("relevance_score"))
        if not ticker or (min_relevance > 0 and (relevance is None or relevance < min_relevance)):
            continue
        if ticker not in per_ticker and ticker not in symbols:
            symbols.append(ticker)
        score = _score(entry.get("ticker_sentiment_score"), entry.get("ticker_sentiment_label"))
        if score is not None:
            per_ticker[ticker] = score
    publisher = item.get("source")
    return Headline(
        id=headline_id(url, title, str(published)),
        ts_ms=ts_ms,
        title=title,
        summary=summary.strip() if isinstance(summary, str) else "",
        symbols=tuple(symbols),
        source=publisher.strip() if isinstance(publisher, str) and publisher.strip() else source,
        url=url,
        sentiment=_score(item.get("overall_sentiment_score"), item.get("overall_sentiment_label")),
        ticker_sentiment=per_ticker,
    )


def parse_news_feed(
    payload: Mapping[str, Any], *, source: str = "alphavantage", min_relevance: float = 0.0
) -> tuple[list[Headline], int]:
    """(headlines, how many items were skipped as malformed). Call `check_av_payload` first."""
    feed = payload.get("feed")
    if not isinstance(feed, list):
        raise ValueError("the answer has no 'feed' list")
    out: list[Headline] = []
    bad = 0
    for item in feed:
        h = parse_news_item(item, source=source, min_relevance=min_relevance)
        if h is None:
            bad += 1
        else:
            out.append(h)
    return out, bad


# --- the source -------------------------------------------------------------------------------


class AlphaVantageNewsConfig(PollerConfig):
    type: Literal["alphavantage_news"]
    api_key: SecretStr = Field(description="Write ${ALPHAVANTAGE_API_KEY}; never the key itself")
    scope: Literal["tickers", "market"] = Field(
        "tickers",
        description="tickers: one request per symbol the rules need (Alpha Vantage ANDs a "
        "comma list); market: one request for the whole market's latest news, filtered here "
        "(fits the free tier's 25 requests a day)",
    )
    topics: list[AvTopic] = Field(
        default_factory=list,
        description="Only news on these topics (Alpha Vantage requires all listed topics)",
    )
    limit: int = Field(
        1000,
        ge=1,
        le=1000,
        description="Most items per request (time_from already bounds it; Alpha Vantage max 1000)",
    )
    lookback: Duration = Field(
        default=timedelta(hours=1), description="How far back the very first poll reads"
    )
    overlap: Duration = Field(
        default=timedelta(hours=1),
        description="Re-read this much before the newest item seen (late-indexed stories)",
    )
    min_relevance: float = Field(
        0.0, ge=0, le=1, description="Tag a ticker only when its relevance_score is at least this"
    )

    @field_validator("lookback", "overlap")
    @classmethod
    def _window(cls, v: timedelta) -> timedelta:
        if v < timedelta(0) or v > timedelta(days=30):
            raise ValueError("must be between 0 and 30d")
        return v


class AlphaVantageNewsSource(Poller):
    kind = "alphavantage_news"
    config_model = AlphaVantageNewsConfig
    provider_info = ALPHAVANTAGE
    config: AlphaVantageNewsConfig

    def __init__(self, config: AlphaVantageNewsConfig, ctx: SourceContext) -> None:
        super().__init__(config, ctx)
        self._full_logged = False

    async def poll(self) -> None:
        cfg = self.config
        wanted = self.wanted_symbols()
        if not wanted:
            log.debug("source %s: no symbols to poll news for", self.name)
            return
        saved = await self.ctx.store.cursor(self.name)
        cursor_ms = parse_av_time(saved.get("time_published"))
        seen = {i for i in saved.get("seen", "").split(",") if i}
        overlap_ms = int(cfg.overlap.total_seconds() * 1000)
        if cursor_ms is not None:
            start_ms = cursor_ms - overlap_ms
        else:
            start_ms = _now_ms() - int(cfg.lookback.total_seconds() * 1000)
        requests: Sequence[str | None] = [None]
        if cfg.scope == "tickers":  # start where a throttled poll stopped: no ticker starves
            first = wanted.index(saved["next"]) if saved.get("next") in wanted else 0
            requests = wanted[first:] + wanted[:first]
        found: dict[str, Headline] = {}
        bad = 0
        failure: PollError | None = None
        stopped_at = ""
        for ticker in requests:
            try:
                heads, n_bad = await self._fetch(ticker, start_ms)
            except PollError as e:
                failure = e  # keep what earlier requests brought; the cursor stays put
                stopped_at = ticker or ""
                break
            bad += n_bad
            for h in heads:
                found.setdefault(h.id, h)
        want = set(wanted)
        fresh = sorted(
            (h for h in found.values() if h.id not in seen and want.intersection(h.symbols)),
            key=lambda h: (h.ts_ms, h.id),
        )
        if failure is None:
            newest = max([cursor_ms or 0, *(h.ts_ms for h in found.values())])
            recent = [h.id for h in found.values() if h.ts_ms >= newest - overlap_ms]
            cursor = {"seen": ",".join(recent[-_SEEN_MAX:]), "next": ""}
            if newest:
                cursor["time_published"] = format_av_time(newest)
        else:  # same window next time; remember what this partial poll already wrote
            ids = [*seen, *(h.id for h in fresh)]
            cursor = {"seen": ",".join(ids[-_SEEN_MAX:]), "next": stopped_at}
        self.malformed += bad
        n = await self.emit(
            headlines=fresh, cursor=cursor, pre_rejected={"malformed": bad} if bad else None
        )
        log.debug(
            "source %s: %d item(s), %d new, %d accepted, %d malformed",
            self.name,
            len(found),
            len(fresh),
            n,
            bad,
        )
        if failure is not None:
            raise failure

    async def _fetch(self, ticker: str | None, start_ms: int) -> tuple[list[Headline], int]:
        cfg = self.config
        params = {
            "function": "NEWS_SENTIMENT",
            "time_from": format_av_time(start_ms, seconds=False),
            "sort": "LATEST",
            "limit": str(cfg.limit),
            "apikey": cfg.api_key.get_secret_value(),
        }
        if ticker is not None:
            params["tickers"] = ticker
        if cfg.topics:
            params["topics"] = ",".join(cfg.topics)
        payload = await self.http.get_json(self.session(), f"{self.base_url}/query", params=params)
        check_av_payload(payload, self.http)
        if not isinstance(payload, dict):
            raise PollError("Alpha Vantage NEWS_SENTIMENT: the answer is not a JSON object")
        try:
            heads, bad = parse_news_feed(payload, source=self.name, min_relevance=cfg.min_relevance)
        except ValueError as e:
            raise PollError(f"Alpha Vantage NEWS_SENTIMENT: {e}") from None
        if len(heads) + bad >= cfg.limit and not self._full_logged:
            self._full_logged = True  # once: it is a setting to change, not an event
            log.warning(
                "source %s: a request returned the full limit (%d items); older news since the "
                "last poll may be missing: raise `limit` or poll more often",
                self.name,
                cfg.limit,
            )
        return heads, bad
