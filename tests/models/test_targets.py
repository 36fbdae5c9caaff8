"""Lever 3's targets and dev score, in plain numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch", reason="training needs PyTorch")

from riskpulse.models.targets import dev_score, label_loss, sentiment_targets  # noqa: E402

FRAME = pd.DataFrame({
    "text": list("abcdef"),
    "topic": [-1, -1, -1, -1, 3, -1],
    "sentiment": [0, 1, 2, 1, -1, 2],
    "source": ["phrasebank", "phrasebank", "phrasebank", "tw-sentiment", "tw-topic", "sentfin"],
    "agreement": [50, 66, 100, 0, 0, 0],
})


def test_agreement_softens_only_phrasebank_rows_below_full_agreement() -> None:
    q = sentiment_targets(FRAME, 3, soft_agreement=True).numpy()
    assert q[0].tolist() == pytest.approx([0.5, 0.25, 0.25])
    assert q[1].tolist() == pytest.approx([0.17, 0.66, 0.17])
    assert q[2].tolist() == [0, 0, 1] and q[3].tolist() == [0, 1, 0] and q[5].tolist() == [0, 0, 1]
    assert q[4].tolist() == [0, 0, 0]  # no sentiment label: no target
    hard = sentiment_targets(FRAME, 3, soft_agreement=False).numpy()
    assert hard[0].tolist() == [1, 0, 0] and hard[1].tolist() == [0, 1, 0]


def test_the_label_loss_with_one_hot_targets_is_plain_cross_entropy() -> None:
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    y = torch.tensor(FRAME.sentiment.to_numpy())
    one_hot = sentiment_targets(FRAME, 3, soft_agreement=False)
    assert label_loss(logits, y, one_hot).item() == pytest.approx(label_loss(logits, y).item(), rel=1e-6)
    soft = sentiment_targets(FRAME, 3, soft_agreement=True)
    assert label_loss(logits, y, soft).item() != pytest.approx(label_loss(logits, y).item(), rel=1e-3)
    assert label_loss(logits, torch.full((6,), -1)).item() == 0.0


def test_the_dev_score_by_target_weighs_the_four_sets_equally() -> None:
    # sentiment right on rows 0 (PhraseBank 50%), 2 (PhraseBank all-agree), 5; wrong on 1 and 3; topic right
    sentiment = np.eye(3)[[0, 0, 2, 0, 0, 2]]
    topic = np.eye(20)[[0, 0, 0, 0, 3, 0]]
    pooled = dev_score(FRAME, topic, sentiment, "pooled")
    assert pooled["sentiment_acc"] == pytest.approx(3 / 5) and pooled["mean"] == pytest.approx((1 + 3 / 5) / 2)
    by_target = dev_score(FRAME, topic, sentiment, "by_target")
    assert by_target["phrasebank"] == pytest.approx(2 / 3) and by_target["phrasebank_allagree"] == 1.0
    assert by_target["tw_sentiment"] == 0.0 and by_target["tw_topic"] == 1.0
    assert by_target["mean"] == pytest.approx((2 / 3 + 1 + 0 + 1) / 4)
