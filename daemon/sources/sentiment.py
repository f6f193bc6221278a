"""A local sentiment score for headlines whose provider gives none (VADER, on the same -1..1 scale).

VADER is a lexicon and rule based scorer made for short social/news text; its `compound` score is
already normalized to -1..1, so rules read it exactly like a provider's score and the shared label
bands (`events.sentiment_label`) apply unchanged. It needs no model download and scores a headline
in ~0.2 ms, cheap enough to run at the edge on every unscored headline.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from daemon.events import Headline

__all__ = ["LOCAL_SCORER", "with_local_score"]

LOCAL_SCORER = "vader"


@functools.cache
def _analyzer() -> SentimentIntensityAnalyzer:
    """Built once on first use (reads the 7,500-word lexicon, ~20 ms), then read-only."""
    return SentimentIntensityAnalyzer()


def with_local_score(h: Headline) -> Headline:
    """`h` unchanged when its provider scored it, else with VADER's compound score of its text."""
    if h.sentiment is not None:
        return h
    text = f"{h.title}. {h.summary}" if h.summary else h.title
    score = float(_analyzer().polarity_scores(text)["compound"])
    return replace(h, sentiment=round(score, 4), scored_by=LOCAL_SCORER)
