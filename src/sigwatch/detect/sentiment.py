"""Post sentiment with VADER: the compound score in [-1, 1] (negative to positive)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    # Loading the lexicon reads two files shipped inside the package; done once per process.
    return SentimentIntensityAnalyzer()


def sentiment_score(text: str) -> float:
    """VADER's compound score of the text, rounded to 4 places."""
    scores = _analyzer().polarity_scores(text)
    return round(float(scores["compound"]), 4)
