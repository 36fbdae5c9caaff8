"""The network: one encoder pass, mean pooling, two linear heads (topic, sentiment).

Torch-only; imported by training, export and the torch backend, never by the ONNX path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

from .labels import SENTIMENTS, TOPICS


def _without_pooler(make: Any, *args: Any, **kwargs: Any) -> PreTrainedModel:
    """The encoder without its pooling layer where the architecture has one (BERT, RoBERTa): we pool ourselves."""
    try:
        return make(*args, add_pooling_layer=False, **kwargs)
    except TypeError:
        return make(*args, **kwargs)


class TwoHeadClassifier(nn.Module):
    def __init__(self, config: PretrainedConfig, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = _without_pooler(AutoModel.from_config, config)
        self.dropout = nn.Dropout(dropout)
        self.topic_head = nn.Linear(config.hidden_size, len(TOPICS))
        self.sentiment_head = nn.Linear(config.hidden_size, len(SENTIMENTS))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        pooled = self.dropout(pooled)
        return self.topic_head(pooled), self.sentiment_head(pooled)

    def forward_with_layers(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                            layers: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """The two heads' logits and the mean-pooled hidden states of ``layers`` (1 = the first
        encoder layer's output): what hidden-state distillation compares (models/distill.py)."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        count = mask.sum(1).clamp(min=1.0)
        pooled = [(out.hidden_states[layer] * mask).sum(1) / count for layer in layers]
        last = self.dropout((out.last_hidden_state * mask).sum(1) / count)
        return self.topic_head(last), self.sentiment_head(last), pooled

    @classmethod
    def from_base(cls, base_dir: Path, num_layers: int | None = None) -> "TwoHeadClassifier":
        """Start from a pretrained encoder (any ``AutoModel``; BERT-family is what export is tested on);
        ``num_layers`` keeps only the first N layers (tiny test models, BERT-family only)."""
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # the unused pooler weights are expected: we pool ourselves
        base = _without_pooler(AutoModel.from_pretrained, str(base_dir))
        config = base.config
        if num_layers is not None and num_layers < config.num_hidden_layers:
            if not hasattr(base, "encoder") or not hasattr(base.encoder, "layer"):
                raise ValueError(f"keeping {num_layers} layers needs a BERT-family encoder, not {config.model_type}")
            base.encoder.layer = base.encoder.layer[:num_layers]
            config.num_hidden_layers = num_layers
        model = cls(config)
        model.encoder.load_state_dict(base.state_dict())
        return model

    @classmethod
    def load(cls, model_dir: Path) -> "TwoHeadClassifier":
        from safetensors.torch import load_file

        config = AutoConfig.from_pretrained(str(model_dir))
        model = cls(config)
        model.load_state_dict(load_file(str(Path(model_dir) / "model.safetensors")))
        return model.eval()

    def save(self, model_dir: Path) -> None:
        from safetensors.torch import save_file

        self.encoder.config.save_pretrained(str(model_dir))
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(Path(model_dir) / "model.safetensors"))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
