"""The headline condition: `HeadlineMatcher` (keywords, symbols, sources, sentiment, regex)."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

import regex

from daemon.events import Headline
from daemon.rules.schema import HeadlineCond

__all__ = ["HeadlineMatcher", "HeadlineRegex"]

log = logging.getLogger("tickwatch.rules")


def _keyword_pattern(entry: str) -> re.Pattern[str]:
    alts = [re.escape(a.strip()) for a in entry.split("|")]
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)


class HeadlineRegex:
    """A trader's regular expression, run by the `regex` package with a time limit.

    Python's `re` can backtrack for minutes on a pattern like `(a+)+b`; rule text is untrusted,
    so a search that runs past `timeout` counts as no match (and is logged) instead of stalling
    the evaluator.
    """

    def __init__(self, pattern: str, timeout: float = 0.05):
        self.pattern = regex.compile(pattern, regex.IGNORECASE)
        self.timeout = timeout

    def search(self, text: str) -> bool:
        try:
            return self.pattern.search(text, timeout=self.timeout) is not None
        except TimeoutError:
            log.warning("regex %r gave up after %.0f ms", self.pattern.pattern, self.timeout * 1000)
            return False


class HeadlineMatcher:
    """Keyword, symbol, source and sentiment filters over a headline. Never evaluates user text."""

    kind: ClassVar[str] = "headline"

    def __init__(self, cond: HeadlineCond, symbols: list[str]):
        self.symbols = tuple(symbols)
        self.any_of = [_keyword_pattern(k) for k in cond.any_of]
        self.all_of = [_keyword_pattern(k) for k in cond.all_of]
        self.none_of = [_keyword_pattern(k) for k in cond.none_of]
        self.sentiment = cond.sentiment
        self.sources = {s.lower() for s in cond.sources} if cond.sources else None
        self.regex = HeadlineRegex(cond.regex) if cond.regex else None
        self.per = cond.per

    def watched(self, h: Headline) -> list[str]:
        """The symbols `h` tags that this rule watches (all it tags, for a keyword-only rule)."""
        return [s for s in h.symbols if s in self.symbols] if self.symbols else list(h.symbols)

    def match(self, h: Headline) -> list[tuple[str, float | None]]:
        """(symbol, sentiment) for each alert `h` raises: none, one, or one per symbol.

        By default (`per: symbol`) each symbol the headline tags is judged on its own, with that
        ticker's sentiment where the provider scored it, so "MSFT up, GOOGL down" can alert on
        one and not the other. `per: headline` raises one alert, under the first symbol.
        """
        if self.sources is not None and h.source.lower() not in self.sources:
            return []
        matched = self.watched(h)
        if self.symbols and not matched:
            return []
        text = f"{h.title}\n{h.summary}"
        if self.any_of and not any(p.search(text) for p in self.any_of):
            return []
        if not all(p.search(text) for p in self.all_of):
            return []
        if any(p.search(text) for p in self.none_of):
            return []
        if self.regex is not None and not self.regex.search(text):
            return []
        if self.per == "headline":
            matched = matched[:1]
        hits = [(s, h.sentiment_for(s)) for s in matched] or [("", h.sentiment)]
        if self.sentiment is None:
            return hits
        accepts = self.sentiment.accepts
        return [(s, score) for s, score in hits if accepts(score)]
