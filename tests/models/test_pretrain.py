"""In-domain pretraining: the encoder learns the training texts' dialect, and only theirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs PyTorch")

from riskpulse.models.pretrain import INFO, pretrain  # noqa: E402
from riskpulse.models.train import recipe_by_name, train  # noqa: E402

pytestmark = pytest.mark.training


def test_a_pretrained_encoder_learns_the_texts_and_fine_tunes_only_on_its_cut(tmp_path: Path, data_dir: Path) -> None:
    out = pretrain(data_dir, tmp_path / "encoder", epochs=1.0, limit_per_source=64, batch_size=16, lr=1e-4,
                   threads=2)
    info = json.loads((out / INFO).read_text())
    loss = info["dev_masked_lm_loss"]
    assert loss["after"] < loss["before"]  # it learned the headlines' language, measured on dev texts it never read
    assert info["split_seed"] == 13 and info["texts"] > 0 and (out / "tokenizer.json").exists()

    model = train(data_dir, tmp_path / "model", recipe_by_name("tiny", int8_epochs=0.0), progress=False,
                  base_model=out)
    card = json.loads((model / "card.json").read_text())
    assert card["base_model"]["pretrained"]["texts"] == info["texts"]
    with pytest.raises(ValueError, match="include this model's held-out rows"):
        train(data_dir, tmp_path / "other-cut", recipe_by_name("tiny", int8_epochs=0.0, split_seed=14),
              progress=False, base_model=out)
