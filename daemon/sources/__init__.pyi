"""The names of `daemon.sources` the other stages use, imported lazily on first use.

For type checkers; at run time `__init__.py` reads this file (lazy_loader.attach_stub)."""

from .alpaca import news_headline as news_headline
from .alpaca_rest import ALPACA as ALPACA
from .alpaca_rest import AlpacaBackfillSource as AlpacaBackfillSource
from .alpaca_rest import Bar as Bar
from .alpaca_rest import fetch_raw_bars as fetch_raw_bars
from .alpaca_rest import run_backfills as run_backfills
from .arbiter import FeedArbiter as FeedArbiter
from .base import FatalSourceError as FatalSourceError
from .base import Source as Source
from .base import SourceContext as SourceContext
from .dated_csv import load_anchors_csv as load_anchors_csv
from .dated_csv import load_earnings_csv as load_earnings_csv
from .earnings import EarningsCalendarSource as EarningsCalendarSource
from .earnings import load_earnings as load_earnings
from .earnings import merge_earnings as merge_earnings
from .feed import FeedSource as FeedSource
from .feed import TimestampParser as TimestampParser
from .normalize import REASONS as REASONS
from .normalize import EdgeFilter as EdgeFilter
from .poller import Backoff as Backoff
from .poller import Http as Http
from .poller import PollError as PollError
from .registry import SOURCES as SOURCES
from .registry import source_class as source_class
from .rest import by_page_token as by_page_token
from .rest import pages as pages
from .source_config import SourceConfig as SourceConfig
from .tables import TickColumns as TickColumns
from .tables import headlines_from_frame as headlines_from_frame
from .tables import make_ticks as make_ticks
from .tables import tick_columns as tick_columns
from .tables import ts_ms_of as ts_ms_of

__all__ = [
    "ALPACA",
    "REASONS",
    "SOURCES",
    "AlpacaBackfillSource",
    "Backoff",
    "Bar",
    "EarningsCalendarSource",
    "EdgeFilter",
    "FatalSourceError",
    "FeedArbiter",
    "FeedSource",
    "Http",
    "PollError",
    "Source",
    "SourceConfig",
    "SourceContext",
    "TickColumns",
    "TimestampParser",
    "by_page_token",
    "fetch_raw_bars",
    "headlines_from_frame",
    "load_anchors_csv",
    "load_earnings",
    "load_earnings_csv",
    "make_ticks",
    "merge_earnings",
    "news_headline",
    "pages",
    "run_backfills",
    "source_class",
    "tick_columns",
    "ts_ms_of",
]
