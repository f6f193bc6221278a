"""Fake REST APIs for the pollers: Alpha Vantage `/query`, Finnhub `/calendar/earnings`, and
Alpaca's `/v2/stocks/bars`, with the shapes and *types* of PROTOCOLS.md §2.2, §3.2 and §5.

- Alpha Vantage answers errors and throttling with HTTP 200 (`Note`, `Information` — whose text
  quotes the caller's key, as the real one does — and `Error Message`); a wrong `apikey` is an
  `Error Message` too. `tickers` and `topics` filter with AND semantics, like the real service.
  Relevance and ticker scores are strings, `overall_sentiment_score` a number.
- Finnhub takes the key as `X-Finnhub-Token` or `token=`, answers 401 without it, and also serves
  `/api/v1//calendar/earnings` (finnhub-python's double slash).
- Alpaca checks `APCA-API-KEY-ID`/`APCA-API-SECRET-KEY` (missing → 401, wrong → 403), pages with
  `limit` counted across symbols (ordered by symbol, then time) and an opaque `next_page_token`;
  `/v1beta1/news` pages the same way (limit at most 50).
- Polygon REST (`/v2/aggs/ticker/.../range/...`, `/v2/reference/news`) takes the key as
  `Authorization: Bearer` or `apiKey=`, answers 401 `{"status": "ERROR", "error": ...}` without
  a good one, and pages with an absolute `next_url` whose `cursor` holds the rest of the query.

For these GET APIs `RecordedRequest.body` holds the query parameters.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from daemon.events import sentiment_label
from tests.fakes import FakeHTTPServer, Injection, RecordedRequest

__all__ = [
    "AV_EARNINGS_HEADER",
    "DEFAULT_ALPACA_KEY_ID",
    "DEFAULT_ALPACA_SECRET",
    "DEFAULT_AV_KEY",
    "DEFAULT_FINNHUB_TOKEN",
    "DEFAULT_POLYGON_KEY",
    "FakeAlpacaData",
    "FakeAlphaVantage",
    "FakeFinnhub",
    "FakePolygonRest",
    "alpaca_bar",
    "alpaca_news_item",
    "av_news_item",
    "finnhub_row",
    "polygon_agg",
    "polygon_news_item",
]

DEFAULT_AV_KEY = "AVFAKEKEY7Q2X9"
DEFAULT_FINNHUB_TOKEN = "fhfaketoken4821"
DEFAULT_ALPACA_KEY_ID = "PKFAKEKEYID00001"
DEFAULT_ALPACA_SECRET = "fakeAlpacaSecret0123456789abcdef"
DEFAULT_POLYGON_KEY = "pgFakeKey0123456789abcdefXYZ"
AV_EARNINGS_HEADER = "symbol,name,reportDate,fiscalDateEnding,estimate,currency"


class _GetFake(FakeHTTPServer):
    async def record(self, request: web.Request) -> RecordedRequest:
        rec = await self.read_request(request)
        rec.body = dict(request.query)
        return rec

    def _injected(self, rec: RecordedRequest) -> web.Response | None:
        injection = self.take_injection(rec)
        if injection is None:
            return None
        return self.respond(rec, injection.status, injection.payload, injection.headers)


def _crc(text: str) -> str:
    return f"{zlib.crc32(text.encode()):08x}"


def _fn(name: str) -> Any:
    return lambda rec: rec.body.get("function") == name


# --- Alpha Vantage ----------------------------------------------------------------------------


def av_news_item(
    title: str,
    *,
    published: dt.datetime | str,
    tickers: Mapping[str, float] | None = None,
    overall: float | None = 0.0,
    url: str | None = None,
    source: str = "Benzinga",
    summary: str = "",
    topics: Iterable[str] = ("Earnings",),
    relevance: float = 0.6,
) -> dict[str, Any]:
    """A `feed` item as Alpha Vantage sends it (strings where it sends strings)."""
    when = published if isinstance(published, str) else published.strftime("%Y%m%dT%H%M%S")
    item: dict[str, Any] = {
        "title": title,
        "url": url if url is not None else f"https://news.example.com/{_crc(title)}",
        "time_published": when,
        "authors": ["Newsdesk"],
        "summary": summary,
        "banner_image": "https://news.example.com/banner.png",
        "source": source,
        "category_within_source": "News",
        "source_domain": "news.example.com",
        "topics": [{"topic": t, "relevance_score": "0.999877"} for t in topics],
        "ticker_sentiment": [
            {
                "ticker": t,
                "relevance_score": f"{relevance:.6f}",
                "ticker_sentiment_score": f"{score:.6f}",
                "ticker_sentiment_label": sentiment_label(score),
            }
            for t, score in (tickers or {}).items()
        ],
    }
    if overall is not None:
        item["overall_sentiment_score"] = overall
        item["overall_sentiment_label"] = sentiment_label(overall)
    return item


class FakeAlphaVantage(_GetFake):
    """`/query` for NEWS_SENTIMENT (from `news`) and EARNINGS_CALENDAR (`earnings_csv` as is)."""

    def __init__(self, api_key: str = DEFAULT_AV_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.news: list[Any] = []
        self.earnings_csv = AV_EARNINGS_HEADER + "\n"

    @property
    def base_url(self) -> str:
        return self.origin

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/query", self._query)
        return app

    # -- failure injection ------------------------------------------------------------------
    def note(self, times: int = 1, function: str | None = None) -> None:
        """HTTP 200 `{"Note": ...}`: the older per-minute throttle message."""
        text = (
            "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per "
            "minute and 500 calls per day."
        )
        self.inject(
            Injection(200, {"Note": text}, times, match=_fn(function) if function else None)
        )

    def information(self, times: int = 1, function: str | None = None) -> None:
        """HTTP 200 `{"Information": ...}` quoting the key, as the daily-limit answer does."""
        text = (
            f"We have detected your API key as {self.api_key} and our standard API rate limit "
            "is 25 requests per day. Please subscribe to any of the premium plans."
        )
        self.inject(
            Injection(200, {"Information": text}, times, match=_fn(function) if function else None)
        )

    def error_message(self, text: str = "Invalid API call.", times: int = 1) -> None:
        self.inject(Injection(200, {"Error Message": text}, times))

    def rate_limit(self, retry_after: int | str = 1, times: int = 1) -> None:
        self.inject(Injection(429, "Too Many Requests", times, {"Retry-After": str(retry_after)}))

    def server_error(self, status: int = 503, times: int = 1) -> None:
        self.inject(Injection(status, "<html><body>Service Unavailable</body></html>", times))

    # -- handlers ---------------------------------------------------------------------------
    async def _query(self, request: web.Request) -> web.Response:
        rec = await self.record(request)
        q = rec.body
        if q.get("apikey") != self.api_key:
            text = (
                "the parameter apikey is invalid or missing. Please claim your free API key on "
                "(https://www.alphavantage.co/support/#api-key). It should take less than 20 "
                "seconds."
            )
            return self.respond(rec, 200, {"Error Message": text})
        early = self._injected(rec)
        if early is not None:
            return early
        function = q.get("function")
        if function == "NEWS_SENTIMENT":
            return self._news(rec)
        if function == "EARNINGS_CALENDAR":
            return self._earnings(rec)
        text = "Invalid API call. Please retry or visit the documentation for function."
        return self.respond(rec, 200, {"Error Message": text})

    def _news(self, rec: RecordedRequest) -> web.Response:
        q = rec.body
        wanted = [t for t in q.get("tickers", "").split(",") if t]
        topics = [t for t in q.get("topics", "").split(",") if t]
        time_from = q.get("time_from", "")
        feed = []
        for item in self.news:
            if not isinstance(item, dict):
                feed.append(item)  # junk is sent as is, for the malformed-item tests
                continue
            tagged = {
                e.get("ticker") for e in item.get("ticker_sentiment", []) if isinstance(e, dict)
            }
            on = {str(t.get("topic", "")).lower().replace(" ", "_") for t in item.get("topics", [])}
            published = str(item.get("time_published", ""))
            if not all(t in tagged for t in wanted) or not all(t in on for t in topics):
                continue
            if time_from and _well_formed(published) and published[:13] < time_from[:13]:
                continue
            feed.append(item)
        feed.sort(key=lambda i: str(i.get("time_published", "")) if isinstance(i, dict) else "")
        if q.get("sort", "LATEST") == "LATEST":
            feed.reverse()
        feed = feed[: int(q.get("limit", "50"))]
        payload = {
            "items": str(len(feed)),
            "sentiment_score_definition": "x <= -0.35: Bearish; -0.35 < x <= -0.15: "
            "Somewhat-Bearish; -0.15 < x < 0.15: Neutral; 0.15 <= x < 0.35: Somewhat_Bullish; "
            "x >= 0.35: Bullish",
            "relevance_score_definition": "0 < x <= 1, with a higher score indicating higher "
            "relevance.",
            "feed": feed,
        }
        return self.respond(rec, 200, payload)

    def _earnings(self, rec: RecordedRequest) -> web.Response:
        symbol = rec.body.get("symbol")
        text = self.earnings_csv
        if symbol:
            lines = text.splitlines()
            text = "\n".join(lines[:1] + [ln for ln in lines[1:] if ln.split(",")[0] == symbol])
        rec.status = 200
        return web.Response(status=200, text=text, content_type="text/csv")


def _well_formed(published: str) -> bool:
    try:
        dt.datetime.strptime(published, "%Y%m%dT%H%M%S")
    except ValueError:
        return False
    return True


# --- Finnhub ----------------------------------------------------------------------------------


def finnhub_row(
    symbol: str, date: dt.date | str, hour: str = "amc", eps_estimate: float | None = 1.5
) -> dict[str, Any]:
    """An `earningsCalendar` row (future report: actuals are null)."""
    day = date if isinstance(date, str) else date.isoformat()
    return {
        "date": day,
        "epsActual": None,
        "epsEstimate": eps_estimate,
        "hour": hour,
        "quarter": 2,
        "revenueActual": None,
        "revenueEstimate": 117900000000,
        "symbol": symbol,
        "year": 2026,
    }


class FakeFinnhub(_GetFake):
    """`/api/v1/calendar/earnings` over `calendar` rows, filtered by symbol and from/to."""

    def __init__(self, token: str = DEFAULT_FINNHUB_TOKEN) -> None:
        super().__init__()
        self.token = token
        self.calendar: list[Any] = []

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api/v1"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/calendar/earnings", self._earnings)
        app.router.add_get("/api/v1//calendar/earnings", self._earnings)
        return app

    def rate_limit(self, retry_after: int | None = None, times: int = 1) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"error": "API limit reached. Please try again later. Remaining Limit: 0"}
        self.inject(Injection(429, body, times, headers))

    async def _earnings(self, request: web.Request) -> web.Response:
        rec = await self.record(request)
        token = request.headers.get("X-Finnhub-Token") or rec.body.get("token")
        if token != self.token:
            return self.respond(rec, 401, {"error": "Invalid API key"})
        early = self._injected(rec)
        if early is not None:
            return early
        q = rec.body
        rows = []
        for row in self.calendar:
            if isinstance(row, dict):
                if q.get("symbol") and row.get("symbol") != q["symbol"]:
                    continue
                day = str(row.get("date", ""))
                if (q.get("from") and day < q["from"]) or (q.get("to") and day > q["to"]):
                    continue
            rows.append(row)
        return self.respond(rec, 200, {"earningsCalendar": rows})


# --- Alpaca market data -----------------------------------------------------------------------


def alpaca_bar(
    t: dt.datetime | str,
    close: float,
    volume: int = 100,
    *,
    open: float | None = None,
    high: float | None = None,
    low: float | None = None,
) -> dict[str, Any]:
    """A bar as `/v2/stocks/bars` sends it (`t` RFC-3339 UTC, the bar's *start*); open, high
    and low are the close unless given."""
    stamp = t if isinstance(t, str) else t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    o, h, lo = (close if v is None else v for v in (open, high, low))
    return {"t": stamp, "o": o, "h": h, "l": lo, "c": close, "v": volume,
            "n": 7, "vw": close}  # fmt: skip


def alpaca_news_item(
    id: int,
    headline: str,
    created_at: dt.datetime | str,
    symbols: Iterable[str] = (),
    *,
    summary: str = "",
    source: str = "benzinga",
    url: str | None = None,
) -> dict[str, Any]:
    """An article as `/v1beta1/news` sends it (PROTOCOLS.md §2.2: the stream's fields + images)."""
    stamp = (
        created_at
        if isinstance(created_at, str)
        else created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    return {
        "id": id,
        "headline": headline,
        "author": "Benzinga Newsdesk",
        "created_at": stamp,
        "updated_at": stamp,
        "summary": summary,
        "content": "",
        "url": url if url is not None else f"https://www.benzinga.com/news/{id}",
        "images": [],
        "symbols": list(symbols),
        "source": source,
    }


def _when(value: str, *, end: bool) -> dt.datetime:
    if len(value) == 10:  # YYYY-MM-DD: the whole day
        day = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        return day + dt.timedelta(days=1) - dt.timedelta(microseconds=1) if end else day
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class FakeAlpacaData(_GetFake):
    """`/v2/stocks/bars` over `bars` (symbol → bars), paged like the real one."""

    def __init__(
        self, key_id: str = DEFAULT_ALPACA_KEY_ID, secret_key: str = DEFAULT_ALPACA_SECRET
    ) -> None:
        super().__init__()
        self.key_id = key_id
        self.secret_key = secret_key
        self.bars: dict[str, list[Any]] = {}
        #: `/v1beta1/news` articles (see `alpaca_news_item`)
        self.news: list[Any] = []
        #: answer at most this many bars or articles per page, whatever `limit` asked for
        self.page_size: int | None = None

    @property
    def base_url(self) -> str:
        return self.origin

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v2/stocks/bars", self._bars)
        app.router.add_get("/v1beta1/news", self._news)
        return app

    def _refused(self, request: web.Request, rec: RecordedRequest) -> web.Response | None:
        key = request.headers.get("APCA-API-KEY-ID")
        secret = request.headers.get("APCA-API-SECRET-KEY")
        if not key or not secret:
            return self.respond(rec, 401, {"message": "unauthorized."})
        if key != self.key_id or secret != self.secret_key:
            return self.respond(rec, 403, {"message": "forbidden"})
        return self._injected(rec)

    async def _news(self, request: web.Request) -> web.Response:
        rec = await self.record(request)
        early = self._refused(request, rec)
        if early is not None:
            return early
        q = rec.body
        limit = int(q.get("limit", "10"))
        if not 1 <= limit <= 50:
            return self.respond(rec, 422, {"message": "invalid limit: must be 1..50"})
        wanted = {s for s in q.get("symbols", "").split(",") if s}
        start = _when(q["start"], end=False) if q.get("start") else None
        end = _when(q["end"], end=True) if q.get("end") else None
        items = []
        for item in self.news:
            if isinstance(item, dict):
                if wanted and not wanted & set(item.get("symbols") or []):
                    continue
                t = _when(str(item.get("created_at")), end=False)
                if (start and t < start) or (end and t > end):
                    continue
            items.append(item)
        items.sort(key=lambda i: str(i.get("created_at")) if isinstance(i, dict) else "")
        if q.get("sort", "desc").lower() == "desc":
            items.reverse()
        page, token = self._page(q, items, limit)
        return self.respond(rec, 200, {"news": page, "next_page_token": token})

    def _page(self, q: Mapping[str, str], rows: list[Any], limit: int) -> tuple[list[Any], Any]:
        size = min(limit, self.page_size) if self.page_size else limit
        offset = int(base64.b64decode(q["page_token"]).decode()) if q.get("page_token") else 0
        more = offset + size < len(rows)
        token = base64.b64encode(str(offset + size).encode()).decode() if more else None
        return rows[offset : offset + size], token

    def rate_limit(self, retry_after: int | None = 1, times: int = 1) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.inject(Injection(429, {"message": "too many requests."}, times, headers))

    def server_error(self, times: int = 1) -> None:
        self.inject(Injection(500, {"message": "internal server error"}, times))

    async def _bars(self, request: web.Request) -> web.Response:
        rec = await self.record(request)
        early = self._refused(request, rec)
        if early is not None:
            return early
        q = rec.body
        if not q.get("symbols") or not q.get("timeframe"):
            return self.respond(rec, 400, {"message": "symbols and timeframe are required"})
        limit = int(q.get("limit", "1000"))
        if not 1 <= limit <= 10_000:
            return self.respond(rec, 422, {"message": "invalid limit: must be 1..10000"})
        start = _when(q["start"], end=False) if q.get("start") else None
        end = _when(q["end"], end=True) if q.get("end") else None
        flat: list[tuple[str, Any]] = []
        for symbol in sorted(set(q["symbols"].split(","))):
            rows = self.bars.get(symbol, [])
            for bar in sorted(rows, key=lambda b: str(b.get("t")) if isinstance(b, dict) else ""):
                if isinstance(bar, dict) and isinstance(bar.get("t"), str):
                    try:
                        t = _when(bar["t"], end=False)
                    except ValueError:
                        t = None
                    if t is not None and ((start and t < start) or (end and t > end)):
                        continue
                flat.append((symbol, bar))
        page, token = self._page(q, flat, limit)
        grouped: dict[str, list[Any]] = {}
        for symbol, bar in page:
            grouped.setdefault(symbol, []).append(bar)
        return self.respond(rec, 200, {"bars": grouped, "next_page_token": token})


# --- Polygon REST -----------------------------------------------------------------------------


def polygon_agg(
    t: dt.datetime | int, close: float, volume: float = 100, **ohl: float
) -> dict[str, Any]:
    """A `/v2/aggs` result: `t` epoch ms of the window's *start*; `o`/`h`/`l` default to `c`."""
    ms = t if isinstance(t, int) else int(t.timestamp() * 1000)
    return {"v": volume, "vw": close, "o": ohl.get("open", close), "c": close,
            "h": ohl.get("high", close), "l": ohl.get("low", close), "t": ms, "n": 3}  # fmt: skip


def polygon_news_item(
    id: str,
    title: str,
    published: dt.datetime | str,
    tickers: Iterable[str] = (),
    *,
    description: str = "",
    publisher: str = "Benzinga",
) -> dict[str, Any]:
    """A `/v2/reference/news` result (`published_utc` RFC-3339 UTC, `id` a string)."""
    stamp = (
        published
        if isinstance(published, str)
        else published.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    return {
        "id": id,
        "publisher": {"name": publisher, "homepage_url": "https://www.benzinga.com/"},
        "title": title,
        "author": "Newsdesk",
        "published_utc": stamp,
        "article_url": f"https://www.benzinga.com/news/{id}",
        "tickers": list(tickers),
        "description": description,
        "keywords": ["markets"],
        "insights": [
            {"ticker": t, "sentiment": "neutral", "sentiment_reasoning": "..."} for t in tickers
        ],
    }


def _epoch_ms(value: str, *, end: bool) -> int:
    if value.isdigit():
        return int(value)
    day = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    return int(((day + dt.timedelta(days=1)) if end else day).timestamp() * 1000) - (
        1 if end else 0
    )


class FakePolygonRest(_GetFake):
    """`/v2/aggs/ticker/{ticker}/range/{n}/{span}/{from}/{to}` over `bars` (ticker → aggs) and
    `/v2/reference/news` over `news`, paged by `next_url` like the real one."""

    def __init__(self, api_key: str = DEFAULT_POLYGON_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.bars: dict[str, list[dict[str, Any]]] = {}
        self.news: list[dict[str, Any]] = []
        #: answer at most this many results per page, whatever `limit` asked for
        self.page_size: int | None = None

    @property
    def base_url(self) -> str:
        return self.origin

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(
            "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{start}/{end}", self._aggs
        )
        app.router.add_get("/v2/reference/news", self._news)
        return app

    def rate_limit(self, retry_after: int | None = 1, times: int = 1) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {
            "status": "ERROR",
            "request_id": "f00",
            "error": "You've exceeded the maximum requests per minute, please wait or upgrade "
            "your subscription to continue. https://polygon.io/pricing",
        }
        self.inject(Injection(429, body, times, headers))

    def server_error(self, times: int = 1) -> None:
        self.inject(Injection(502, "<html><body>Bad Gateway</body></html>", times))

    def _refused(self, request: web.Request, rec: RecordedRequest) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        key = key or rec.body.get("apiKey")
        if not key:
            body = {"status": "ERROR", "request_id": "a1", "error": "API Key was not provided"}
            return self.respond(rec, 401, body)
        if key != self.api_key:
            return self.respond(rec, 401, {"status": "ERROR", "request_id": "a2",
                                           "error": "Unknown API Key"})  # fmt: skip
        return self._injected(rec)

    def _query(self, rec: RecordedRequest) -> dict[str, str]:
        """The query, with what a `cursor` carries (the real cursor is opaque too)."""
        q = {k: v for k, v in rec.body.items() if k != "apiKey"}
        if "cursor" in q:
            q = {**json.loads(base64.urlsafe_b64decode(q.pop("cursor")).decode()), **q}
        return q

    def _page(
        self, rec: RecordedRequest, q: dict[str, str], rows: list[Any], limit: int
    ) -> tuple[list[Any], str | None]:
        size = min(limit, self.page_size) if self.page_size else limit
        offset = int(q.get("offset", "0"))
        if offset + size >= len(rows):
            return rows[offset:], None
        rest = {**q, "offset": str(offset + size)}
        cursor = base64.urlsafe_b64encode(json.dumps(rest).encode()).decode()
        return rows[offset : offset + size], f"{self.origin}{rec.path}?cursor={cursor}"

    async def _aggs(self, request: web.Request) -> web.Response:
        rec = await self.record(request)
        early = self._refused(request, rec)
        if early is not None:
            return early
        m = request.match_info
        if m["multiplier"] != "1" or m["timespan"] != "minute":
            return self.respond(rec, 400, {"status": "ERROR", "error": "fake: 1/minute only"})
        q = self._query(rec)
        limit = int(q.get("limit", "5000"))
        if not 1 <= limit <= 50_000:
            return self.respond(rec, 400, {"status": "ERROR", "error": "limit: 1..50000"})
        lo, hi = _epoch_ms(m["start"], end=False), _epoch_ms(m["end"], end=True)
        rows = sorted(
            (a for a in self.bars.get(m["ticker"], []) if lo <= int(a["t"]) <= hi),
            key=lambda a: int(a["t"]),
            reverse=q.get("sort", "asc") == "desc",
        )
        page, next_url = self._page(rec, q, rows, limit)
        payload: dict[str, Any] = {
            "ticker": m["ticker"],
            "queryCount": len(page),
            "resultsCount": len(page),
            "adjusted": q.get("adjusted", "true") == "true",
            "status": "OK",
            "request_id": "r1",
            "count": len(page),
        }
        if page:  # the real API leaves `results` out when there are none
            payload["results"] = page
        if next_url:
            payload["next_url"] = next_url
        return self.respond(rec, 200, payload)

    async def _news(self, request: web.Request) -> web.Response:
        rec = await self.record(request)
        early = self._refused(request, rec)
        if early is not None:
            return early
        q = self._query(rec)
        limit = int(q.get("limit", "10"))
        if not 1 <= limit <= 1000:
            return self.respond(rec, 400, {"status": "ERROR", "error": "limit: 1..1000"})
        ticker = q.get("ticker")
        rows = []
        for item in self.news:
            published = str(item.get("published_utc", ""))
            if ticker and ticker not in item.get("tickers", []):
                continue
            if q.get("published_utc.gte") and published < q["published_utc.gte"]:
                continue
            if q.get("published_utc.lt") and published >= q["published_utc.lt"]:
                continue
            rows.append(item)
        rows.sort(key=lambda i: str(i.get("published_utc")), reverse=q.get("order") != "asc")
        page, next_url = self._page(rec, q, rows, limit)
        payload: dict[str, Any] = {"results": page, "status": "OK", "request_id": "n1",
                                   "count": len(page)}  # fmt: skip
        if next_url:
            payload["next_url"] = next_url
        return self.respond(rec, 200, payload)
