"""The two REST history clients, Alpaca's and Polygon's: a symbol's bars and headlines, paged.

Prices are unadjusted (Alpaca `adjustment=raw`, Polygon `adjusted=false`), as the daemon saw
them live.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from daemon.events import Headline
from daemon.sources import Bar, Http, TimestampParser, by_page_token, fetch_raw_bars, pages
from daemon.sources import news_headline as alpaca_news_headline

log = logging.getLogger("tickwatch.backtest.fetch")

POLYGON_BASE = "https://api.polygon.io"
_MAX_PAGES = 2000  # a runaway next_url / next_page_token must not loop forever


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_polygon_aggs(payload: Any, symbol: str) -> tuple[list[Bar], int, str | None]:
    """One `/v2/aggs/ticker/.../range/...` page → (bars, malformed skipped, next_url)."""
    if not isinstance(payload, dict):
        raise ValueError("the answer is not a JSON object")
    results = payload.get("results") or []  # absent when there are none
    if not isinstance(results, list):
        raise ValueError("'results' is not a list")
    bars: list[Bar] = []
    bad = 0
    for row in results:
        start = row.get("t") if isinstance(row, dict) else None
        close = _finite(row.get("c")) if isinstance(row, dict) else None
        if not isinstance(start, int) or isinstance(start, bool) or close is None:
            bad += 1
            continue
        o, h, lo = (_finite(row.get(k)) for k in ("o", "h", "l"))
        bars.append(
            Bar(symbol, start, close, _finite(row.get("v")) or 0.0,
                close if o is None else o, close if h is None else h, close if lo is None else lo)
        )  # fmt: skip
    nxt = payload.get("next_url")
    return bars, bad, nxt if isinstance(nxt, str) and nxt else None


def parse_polygon_news(
    payload: Any, timestamps: TimestampParser | None = None
) -> tuple[list[Headline], int, str | None]:
    """One `/v2/reference/news` page → (headlines `polygon:<id>`, malformed skipped, next_url)."""
    if not isinstance(payload, dict):
        raise ValueError("the answer is not a JSON object")
    results = payload.get("results") or []
    if not isinstance(results, list):
        raise ValueError("'results' is not a list")
    ts = timestamps or TimestampParser()
    out: list[Headline] = []
    bad = 0
    for item in results:
        try:
            publisher = item.get("publisher") or {}
            out.append(
                Headline(
                    id=f"polygon:{item['id']}",
                    ts_ms=ts.ms(str(item["published_utc"])),
                    title=str(item["title"]),
                    summary=str(item.get("description") or ""),
                    symbols=tuple(str(t) for t in item.get("tickers") or []),
                    source=str(publisher.get("name") or "polygon"),
                    url=str(item.get("article_url") or ""),
                )
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            bad += 1
    nxt = payload.get("next_url")
    return out, bad, nxt if isinstance(nxt, str) and nxt else None


class _Client:
    """One provider's two requests: a symbol's bars and headlines between two times."""

    def __init__(self, session: aiohttp.ClientSession, http: Http, base_url: str) -> None:
        self.session, self.http, self.base_url = session, http, base_url.rstrip("/")
        self.timestamps = TimestampParser()

    async def bars(self, symbol: str, start_ms: int, end_ms: int) -> list[Bar]:
        raise NotImplementedError

    async def news(self, symbol: str, start_ms: int, end_ms: int) -> list[Headline]:
        raise NotImplementedError


class _Alpaca(_Client):
    def __init__(self, session: aiohttp.ClientSession, http: Http, base_url: str,
                 key_id: str, secret_key: str, feed: str) -> None:  # fmt: skip
        super().__init__(session, http, base_url)
        self.key_id, self.secret_key, self.feed = key_id, secret_key, feed

    async def bars(self, symbol: str, start_ms: int, end_ms: int) -> list[Bar]:
        bars, bad = await fetch_raw_bars(
            self.session, self.http, base_url=self.base_url, key_id=self.key_id,
            secret_key=self.secret_key, symbols=[symbol],
            start=datetime.fromtimestamp(start_ms / 1000, UTC),
            end=datetime.fromtimestamp((end_ms - 1000) / 1000, UTC),  # `end` is inclusive
            timeframe="1Min", feed=self.feed, limit=10_000,
        )  # fmt: skip
        if bad:
            log.warning("Alpaca bars of %s: %d malformed bar(s) skipped", symbol, bad)
        return bars

    async def news(self, symbol: str, start_ms: int, end_ms: int) -> list[Headline]:
        headers = {"APCA-API-KEY-ID": self.key_id, "APCA-API-SECRET-KEY": self.secret_key}
        params = {
            "symbols": symbol,
            "start": _iso(start_ms),
            "end": _iso(end_ms - 1000),
            "limit": "50",
            "sort": "asc",
            "include_content": "false",
            "exclude_contentless": "false",
        }
        url = f"{self.base_url}/v1beta1/news"
        out, bad = await pages(self.http, self.session, url, params, headers=headers,
                               parse=self._news_page, follow=by_page_token,
                               what="Alpaca /v1beta1/news", max_pages=_MAX_PAGES)  # fmt: skip
        if bad:
            log.warning("Alpaca news of %s: %d malformed article(s) skipped", symbol, bad)
        return out

    def _news_page(self, payload: Any) -> tuple[list[Headline], int, str | None]:
        items = payload.get("news") if isinstance(payload, dict) else None
        if not isinstance(items, list):
            raise ValueError("the answer has no 'news' list")
        out: list[Headline] = []
        bad = 0
        for m in items:
            try:
                out.append(alpaca_news_headline(m, self.timestamps.ms(str(m["created_at"]))))
            except (AttributeError, KeyError, TypeError, ValueError):
                bad += 1
        token = payload.get("next_page_token")
        return out, bad, token if isinstance(token, str) and token else None


class _Polygon(_Client):
    def __init__(self, session: aiohttp.ClientSession, http: Http, base_url: str,
                 api_key: str) -> None:  # fmt: skip
        super().__init__(session, http, base_url)
        self.headers = {"Authorization": f"Bearer {api_key}"}

    def _follow(self, next_url: str) -> str:
        """`next_url` on our base URL: the key goes nowhere else (a proxy, a test's fake)."""
        n, b = urlsplit(next_url), urlsplit(self.base_url)
        if (n.scheme, n.netloc) == (b.scheme, b.netloc):
            return next_url
        path = (
            n.path if n.path.startswith(b.path.rstrip("/") + "/") else b.path.rstrip("/") + n.path
        )
        return urlunsplit((b.scheme, b.netloc, path, n.query, ""))

    async def _pages(
        self,
        url: str,
        params: dict[str, str],
        parse: Callable[[Any], tuple[list[Any], int, str | None]],
    ) -> tuple[list[Any], int]:
        def follow(_url: str, _params: dict[str, str] | None, nxt: str) -> tuple[str, None]:
            return self._follow(nxt), None  # the cursor in next_url holds the query

        return await pages(self.http, self.session, url, params, headers=self.headers,
                           parse=parse, follow=follow, what=f"Polygon {urlsplit(url).path}",
                           max_pages=_MAX_PAGES)  # fmt: skip

    async def bars(self, symbol: str, start_ms: int, end_ms: int) -> list[Bar]:
        url = (
            f"{self.base_url}/v2/aggs/ticker/{quote(symbol, safe='')}/range/1/minute/"
            f"{start_ms}/{end_ms - 1}"  # both ends inclusive
        )
        params = {"adjusted": "false", "sort": "asc", "limit": "50000"}
        bars, bad = await self._pages(url, params, lambda p: parse_polygon_aggs(p, symbol))
        if bad:
            log.warning("Polygon bars of %s: %d malformed bar(s) skipped", symbol, bad)
        return bars

    async def news(self, symbol: str, start_ms: int, end_ms: int) -> list[Headline]:
        params = {
            "ticker": symbol,
            "published_utc.gte": _iso(start_ms),
            "published_utc.lt": _iso(end_ms),
            "order": "asc",
            "sort": "published_utc",
            "limit": "1000",
        }
        url = f"{self.base_url}/v2/reference/news"
        news, bad = await self._pages(url, params, lambda p: parse_polygon_news(p, self.timestamps))
        if bad:
            log.warning("Polygon news of %s: %d malformed article(s) skipped", symbol, bad)
        return news
