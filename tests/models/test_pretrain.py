"""In-domain pretraining: the encoder learns the training texts' dialect, and only theirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs PyTorch")

from riskpulse.models.pretrain import INFO, mlm_loss, pretrain  # noqa: E402
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


def test_the_masked_positions_only_loss_and_gradients_equal_the_full_forwards() -> None:
    """The speed-up (the vocabulary head on masked positions only) must not change what is learned."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    config = BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForMaskedLM(config)  # no dropout: both forwards see the same network
    ids = torch.randint(5, 300, (4, 12))
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 0], labels[3, 11] = 17, 42, 299
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}

    full = model(**batch).loss
    full_grads = torch.autograd.grad(full, [p for p in model.parameters() if p.requires_grad], allow_unused=True)
    fast = mlm_loss(model, batch)
    fast_grads = torch.autograd.grad(fast, [p for p in model.parameters() if p.requires_grad], allow_unused=True)
    assert torch.allclose(full, fast, atol=1e-6)
    for a, b in zip(full_grads, fast_grads):
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-6)
    nothing = mlm_loss(model, {**batch, "labels": torch.full_like(ids, -100)})
    assert float(nothing) == 0.0  # a batch with nothing masked teaches nothing, and is not NaN
