"""The scoring step of the pipeline: model scores plus tickers, as ``news.scored`` records."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from riskpulse.models.language import identify
from riskpulse.models.scorer import Scorer
from riskpulse.settings import Settings

from riskpulse.records import NewsItem, ScoredNews
from . import metrics
from .tickers import Watchlist

log = logging.getLogger(__name__)


@dataclass
class ScoringService:
    scorer: Scorer
    watchlist: Watchlist

    @classmethod
    def from_settings(cls, settings: Settings) -> "ScoringService":
        scorer = Scorer(settings.model_dir, backend=settings.backend, batch_size=min(settings.batch_max_size, 64),
                        max_length=settings.max_length, spin=settings.ort_spin,
                        compile=settings.torch_compile)
        if scorer.engine.name == "null":
            log.warning("RISKPULSE_BACKEND=null: every headline is scored neutral without a model; for measuring "
                        "the stream only, never for news anyone reads")
        log.info("scoring service ready", extra={"backend": scorer.engine.name, "model_version": scorer.model_version})
        return cls(scorer, Watchlist.load(settings.watchlist))

    def score_items(self, items: Sequence[NewsItem], now: datetime) -> list[ScoredNews]:
        scores = self.scorer.score([item.headline for item in items])
        out = []
        for item, s in zip(items, scores):
            assert item.id is not None and item.published_at is not None  # completed by validation
            language = identify(item.headline, item.lang)
            status = "scored" if language.supported else "no_text" if language.how == "no_text" else "unsupported_language"
            if status != "scored":
                metrics.UNSCORED.labels(status).inc()
            out.append(ScoredNews(
                id=item.id, headline=item.headline, source=item.source, url=item.url, body=item.body,
                published_at=item.published_at, lang=language.code, sentiment_status=status,  # type: ignore[arg-type]
                tickers=self.watchlist.extract(item.headline + " " + (item.body or "")[:2000], item.tickers),
                topic=s.topic, topic_confidence=s.topic_confidence, sentiment=s.sentiment,  # type: ignore[arg-type]
                sentiment_probs=s.sentiment_probs, sentiment_score=s.sentiment_score,  # type: ignore[arg-type]
                duplicate_of=None, model_version=s.model_version, scored_at=now))
        return out
