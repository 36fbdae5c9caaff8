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

# Rows per model call on a CPU engine. A micro-batch of arrivals is sorted by length and cut into
# calls of this many, so each call pads to a length near its own rows' instead of the longest of
# the micro-batch. Fewer rows pad less and cost more calls: on the shipped model, 2 cores
# (bench/bench_rows_per_call.py, 2026-12-06), calls of 4 carry 1.45x the headlines/s of calls of 16
# for micro-batches of 16 (the worker at half load) and 1.19x for 32; calls of 8 1.08x for 64 (full
# load). A GPU keeps the whole micro-batch in one call: its cost grows little with padding.
CPU_ROWS_PER_CALL = 8  # micro-batches of more than CPU_SMALL_BATCH items
CPU_ROWS_PER_SMALL_CALL = 4
CPU_SMALL_BATCH = 32


def rows_per_call(engine_name: str, batch_max_size: int, items: int | None = None) -> int:
    """How many headlines the worker's scorer sends to the engine at once, for a micro-batch of
    ``items`` (None: a full one); see CPU_ROWS_PER_CALL."""
    on_cpu = "CPUExecutionProvider" in engine_name or engine_name.startswith("torch:cpu") or engine_name == "null"
    if not on_cpu:
        return min(batch_max_size, 64)
    items = batch_max_size if items is None else items
    return min(batch_max_size, CPU_ROWS_PER_SMALL_CALL if items <= CPU_SMALL_BATCH else CPU_ROWS_PER_CALL)


@dataclass
class ScoringService:
    scorer: Scorer
    watchlist: Watchlist
    batch_max_size: int = 64  # the worker's micro-batch: how many rows each engine call takes follows it (rows_per_call)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ScoringService":
        scorer = Scorer(settings.model_dir, backend=settings.backend, max_length=settings.max_length,
                        threads=settings.model_threads, spin=settings.ort_spin, compile=settings.torch_compile)
        scorer.batch_size = rows_per_call(scorer.engine.name, settings.batch_max_size)  # known once the engine is
        if scorer.engine.name == "null":
            log.warning("RISKPULSE_BACKEND=null: every headline is scored neutral without a model; for measuring "
                        "the stream only, never for news anyone reads")
        log.info("scoring service ready", extra={"backend": scorer.engine.name, "model_version": scorer.model_version,
                                                 "rows_per_call": scorer.batch_size})
        return cls(scorer, Watchlist.load(settings.watchlist), settings.batch_max_size)

    def score_items(self, items: Sequence[NewsItem], now: datetime) -> list[ScoredNews]:
        self.scorer.batch_size = rows_per_call(self.scorer.engine.name, self.batch_max_size, len(items))
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
