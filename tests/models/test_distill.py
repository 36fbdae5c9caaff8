"""Ensemble distillation: the loss, the teachers' targets, and the guard against a leaking teacher."""

from __future__ import annotations

import json
from dataclasses import replace
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="training needs PyTorch")

from riskpulse.models.distill import distill_ensemble_loss, teacher_targets  # noqa: E402
from riskpulse.models.train import recipe_by_name, train  # noqa: E402


def test_the_loss_mixes_labels_and_teachers_and_fills_missing_labels() -> None:
    student = (torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.5, 0.5, 0.0]]))
    agreeing = tuple(torch.log_softmax(s / 2.0, -1) for s in student)
    no_label = (torch.tensor([-1]), torch.tensor([-1]))
    labels = (torch.tensor([0]), torch.tensor([2]))
    # the teachers say what the student says: nothing to learn from them
    assert distill_ensemble_loss(student, agreeing, labels, weight=1.0, temperature=2.0).item() == pytest.approx(0, abs=1e-6)
    # no teachers' share: plain cross-entropy on the labels
    ce = sum(torch.nn.functional.cross_entropy(s, y) for s, y in zip(student, labels))
    assert distill_ensemble_loss(student, agreeing, labels, weight=0.0, temperature=2.0).item() == pytest.approx(ce.item())
    # a row without labels still learns from teachers that disagree with it
    other = (torch.log_softmax(torch.tensor([[-1.0, 0.0, 3.0]]), -1), torch.log_softmax(torch.tensor([[0.0, 3.0, 0.0]]), -1))
    assert distill_ensemble_loss(student, other, no_label, weight=0.5, temperature=2.0).item() > 0.1


def test_teacher_targets_average_the_teachers(tiny_model: Path, tmp_path: Path) -> None:
    card = json.loads((tiny_model / "card.json").read_text())
    texts = ["Shares of Acme plunge after profit warning", "Central bank holds rates"]
    one = teacher_targets([tiny_model], texts, card["recipe"]["seed"], card["data"]["files"], temperature=2.0)
    two = teacher_targets([tiny_model, tiny_model], texts, card["recipe"]["seed"], card["data"]["files"], temperature=2.0)
    for a, b in zip(one, two):
        assert a.shape[0] == 2 and abs(float(a.sum())) > 0
        assert (abs(a - b) < 1e-5).all()
        assert (abs(torch.from_numpy(a).exp().sum(-1) - 1) < 1e-4).all()


def test_a_teacher_from_another_cut_or_data_is_refused(tiny_model: Path, tmp_path: Path, data_dir: Path) -> None:
    other_cut = tmp_path / "other-cut"
    shutil.copytree(tiny_model, other_cut)
    card = json.loads((other_cut / "card.json").read_text())
    card["recipe"]["seed"] = card["recipe"].get("split_seed", card["recipe"]["seed"]) + 1
    card["recipe"].pop("split_seed", None)  # an older card: the seed was the cut
    (other_cut / "card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="trained on this model's held-out rows"):
        train(data_dir, tmp_path / "student", recipe_by_name("tiny", int8_epochs=0.0, teachers=(str(other_cut),)),
              progress=False)
    assert not (tmp_path / "student").exists()

    other_data = tmp_path / "other-data"
    shutil.copytree(tiny_model, other_data)
    card = json.loads((other_data / "card.json").read_text())
    name = next(iter(card["data"]["files"]))
    card["data"]["files"][name] = "0" * 64
    (other_data / "card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="other versions of"):
        teacher_targets([other_data], ["x"], card["recipe"]["split_seed"], json.loads(
            (tiny_model / "card.json").read_text())["data"]["files"], temperature=2.0)


def test_a_student_trains_from_teachers_and_records_them(tiny_model: Path, tmp_path: Path, data_dir: Path) -> None:
    out = train(data_dir, tmp_path / "student", recipe_by_name("tiny", int8_epochs=0.0, seed=14, teachers=(str(tiny_model),)),
                progress=False)
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["teachers"] == [str(tiny_model)]
    assert card["recipe"]["seed"] == 14 and card["recipe"]["split_seed"] == 13
    assert card["metrics"]["phrasebank-test"]["n"] > 0


def test_kept_predictions_teach_as_the_teacher_does_and_hold_no_text(tiny_model: Path, tmp_path: Path,
                                                                     data_dir: Path) -> None:
    from riskpulse.cli import main
    from riskpulse.models.data import load_splits
    from riskpulse.models.teacher_predictions import ARRAYS, TeacherPredictions

    card = json.loads((tiny_model / "card.json").read_text())
    cut, files = card["recipe"]["split_seed"], card["data"]["files"]
    assert main(["teacher", "predict", "--teacher", str(tiny_model), "--data", str(data_dir),
                 "--out", str(tmp_path / "kept")]) == 0
    kept = TeacherPredictions.read(tmp_path / "kept")
    train_texts = load_splits(data_dir, seed=cut).train.text.tolist()
    assert kept.meta["rows"] == len(set(train_texts)) and kept.meta["teacher_version"] == card["model_version"]
    # what a student learns from: the same from the kept predictions as from the teacher itself
    # (up to float16 rounding and batch composition, which moves float sums in the last bits)
    texts = train_texts[:40] + train_texts[:3]  # repeats too
    from_folder = teacher_targets([tiny_model], texts, cut, files, temperature=2.0)
    from_kept = teacher_targets([tmp_path / "kept"], texts, cut, files, temperature=2.0)
    assert all(a.shape == b.shape and abs(a - b).max() < 1e-2 for a, b in zip(from_folder, from_kept))
    # no training text is stored, only hashes of them
    stored = (tmp_path / "kept" / ARRAYS).read_bytes() + (tmp_path / "kept" / "predictions.json").read_bytes()
    assert not any(t.encode() in stored for t in train_texts[:200] if len(t) > 20)
    with pytest.raises(ValueError, match="lack 1 of 2 training texts"):
        teacher_targets([tmp_path / "kept"], [texts[0], "a text no teacher saw"], cut, files, temperature=2.0)
    with pytest.raises(ValueError, match="trained on this model's held-out rows"):
        teacher_targets([tmp_path / "kept"], texts, cut + 1, files, temperature=2.0)
    with pytest.raises(ValueError, match="other versions of"):
        teacher_targets([tmp_path / "kept"], texts, cut, {next(iter(files)): "0" * 64}, temperature=2.0)


def test_an_outside_classifier_teaches_the_head_its_labels_map_onto(tiny_model: Path, tmp_path: Path,
                                                                    data_dir: Path) -> None:
    """A Hugging Face sequence classifier (a financial BERT's positive/negative/neutral, in its own
    order) teaches sentiment only; the topic head learns from its labels; the card names it."""
    from transformers import BertConfig, BertForSequenceClassification

    from riskpulse.models.base_model import base_model_dir
    from riskpulse.models.teacher_predictions import label_map

    def classifier(labels: list[str]) -> Path:
        out = tmp_path / "-".join(labels)[:40]
        config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=128,
                            id2label=dict(enumerate(labels)), label2id={v: k for k, v in enumerate(labels)})
        BertForSequenceClassification(config).save_pretrained(str(out))
        for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
            (out / name).write_bytes((base_model_dir() / name).read_bytes())
        return out

    finbert_like = classifier(["positive", "negative", "neutral"])
    assert label_map({0: "positive", 1: "negative", 2: "neutral"}) == ("sentiment", [1, 2, 0])
    card = json.loads((tiny_model / "card.json").read_text())
    texts = ["Shares of Acme plunge after profit warning", "Central bank holds rates"]
    topic, sentiment = teacher_targets([finbert_like], texts, card["recipe"]["split_seed"], card["data"]["files"], 2.0)
    assert topic is None and sentiment is not None and sentiment.shape == (2, 3)
    with pytest.raises(ValueError, match="neither riskpulse's sentiments"):
        teacher_targets([classifier(["bullish", "bearish"])], texts, 13, {}, 2.0)

    out = train(data_dir, tmp_path / "student", recipe_by_name("tiny", int8_epochs=0.0, teachers=(str(finbert_like),)),
                progress=False)
    training = json.loads((out / "card.json").read_text())["training"]
    assert training["outside_teachers"] == [str(finbert_like)]


def test_the_kept_mpnet_teacher_predictions_cover_the_current_training_texts(data_dir: Path) -> None:
    """The default recipe's teacher, kept in the package (models/teachers/mpnet-s13), still teaches a
    student of today's data and cut, and refuses another cut with what to do."""
    from riskpulse.models.data import load_splits
    from riskpulse.models.teacher_predictions import KEPT, TeacherPredictions, resolve_teacher

    default = recipe_by_name("default")
    assert default.teachers == ("mpnet-s13",) and resolve_teacher("mpnet-s13") == KEPT / "mpnet-s13"
    assert resolve_teacher("some-org/finbert") == "some-org/finbert"  # not kept: a folder or hub id, unchanged
    kept = TeacherPredictions.read(resolve_teacher(default.teachers[0]))  # type: ignore[arg-type]
    splits = load_splits(data_dir, seed=default.split_seed)
    kept.check(default.split_seed, splits.files)
    with pytest.raises(ValueError, match="--no-teachers"):
        kept.check(default.split_seed + 1, splits.files)
    topic, sentiment = kept.logits_for(splits.train.text.tolist())
    assert topic is not None and sentiment is not None and topic.shape == (len(splits.train), 20)


def test_the_command_line_keeps_replaces_or_drops_the_recipes_teachers() -> None:
    from riskpulse.cli import build_parser, train_recipe

    def teachers(*argv: str) -> tuple[str, ...]:
        return train_recipe(build_parser().parse_args(["train", *argv])).teachers

    assert teachers() == ("mpnet-s13",)  # the default recipe distils from the kept teacher
    assert teachers("--teachers", "models/a", "models/b") == ("models/a", "models/b")
    assert teachers("--no-teachers") == () and teachers("--recipe", "quick") == ()
    with pytest.raises(SystemExit):  # both at once is a contradiction argparse refuses
        teachers("--no-teachers", "--teachers", "models/a")


def test_a_student_also_learns_the_teachers_transfer_set_and_regenerates_it_exactly(tiny_model: Path, tmp_path: Path,
                                                                                  data_dir: Path) -> None:
    from riskpulse.models.augment import Augmentation, NeighbourTable, transfer_texts
    from riskpulse.models.data import load_splits
    from riskpulse.models.distill import transfer_rows
    from riskpulse.models.encoder import base_model_dir
    from riskpulse.models.teacher_predictions import TeacherPredictions

    card = json.loads((tiny_model / "card.json").read_text())
    cut, files = card["recipe"]["split_seed"], card["data"]["files"]
    recipe = recipe_by_name("tiny", int8_epochs=0.0)
    texts = load_splits(data_dir, seed=cut, limit_per_source=recipe.limit_per_source).train.text.tolist()
    # as `riskpulse teacher predict --augment-copies 2` makes it, on the tiny recipe's slice
    aug = Augmentation(copies=2, seed=3)
    table = NeighbourTable.from_encoder(base_model_dir(), aug.neighbours)
    variants, _ = transfer_texts(texts, aug, table.lookup())
    kept = TeacherPredictions.from_model(tiny_model, texts + variants, cut, files).as_transfer_set(
        len(set(texts)), aug, table).write(tmp_path / "kept")

    out = train(data_dir, tmp_path / "student", replace(recipe, teachers=(str(kept),)), progress=False)
    student = json.loads((out / "card.json").read_text())
    assert student["data"]["transfer_rows"] == len(variants) > len(texts)
    assert student["data"]["train_rows"] == len(texts) + len(variants)
    # the variants carry no labels: only the teacher's soft targets teach them
    rows = transfer_rows([kept], load_splits(data_dir, seed=cut, limit_per_source=recipe.limit_per_source).train)
    assert rows.text.tolist() == variants and (rows.topic == -1).all() and (rows.sentiment == -1).all()
    with pytest.raises(ValueError, match="labelled by that teacher alone"):
        transfer_rows([kept, tiny_model], rows)
    # a transfer set made with another seed is not this one: its texts are missing, and said so
    other = TeacherPredictions.read(kept)
    other.meta["augmentation"] = Augmentation(copies=2, seed=4).to_json()
    other.write(tmp_path / "other")
    with pytest.raises(ValueError, match="lack"):
        train(data_dir, tmp_path / "student2", replace(recipe, teachers=(str(tmp_path / "other"),)), progress=False)


def _kept_with_hidden(tiny_model: Path, data_dir: Path, folder: Path, limit: int | None) -> Path:
    """The tiny teacher's kept predictions on the tiny recipe's slice, with its pooled hidden states
    of both its layers (as `riskpulse teacher predict --hidden-layers 1 2` keeps them)."""
    from riskpulse.models.data import load_splits
    from riskpulse.models.teacher_predictions import TeacherPredictions

    card = json.loads((tiny_model / "card.json").read_text())
    cut, files = card["recipe"]["split_seed"], card["data"]["files"]
    texts = list(dict.fromkeys(load_splits(data_dir, seed=cut, limit_per_source=limit).train.text.tolist()))
    kept = TeacherPredictions.from_model(tiny_model, texts, cut, files, hidden_layers=(1, 2))
    return kept.write(folder)


def test_a_student_learns_the_teachers_pooled_hidden_states_through_a_projection(tiny_model: Path, tmp_path: Path,
                                                                               data_dir: Path) -> None:
    from riskpulse.models.distill import hidden_loss, kept_hidden, student_layers
    from riskpulse.models.teacher_predictions import TeacherPredictions

    assert student_layers(6, [2, 4, 6, 8, 10, 12], 12) == (1, 2, 3, 4, 5, 6)
    assert student_layers(2, [3, 6, 9, 12], 12) == (1, 1, 2, 2)
    recipe = recipe_by_name("tiny", int8_epochs=0.0)
    kept = _kept_with_hidden(tiny_model, data_dir, tmp_path / "kept", recipe.limit_per_source)
    back = TeacherPredictions.read(kept)
    width = json.loads((tiny_model / "config.json").read_text())["hidden_size"]
    assert back.hidden is not None and back.hidden.shape == (back.keys.shape[0], 2, width)
    assert back.meta["hidden_layers"] == [1, 2] and back.meta["hidden_depth"] == 2

    out = train(data_dir, tmp_path / "student", replace(recipe, teachers=(str(kept),), hidden_weight=1.0),
                progress=False)
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["hidden"] == {"teacher_layers": [1, 2], "student_layers": [1, 2], "weight": 1.0}
    from riskpulse.models.network import TwoHeadClassifier

    assert set(TwoHeadClassifier.load(out).state_dict()) == set(TwoHeadClassifier.load(tiny_model).state_dict())

    # the loss: zero where the projected student equals the teacher, larger the further it is
    proj = torch.nn.ModuleList([torch.nn.Linear(3, 3)])
    with torch.no_grad():
        proj[0].weight.copy_(torch.eye(3))
        proj[0].bias.zero_()
    same = torch.tensor([[1.0, 2.0, 3.0]])
    assert hidden_loss([same], proj, same.unsqueeze(1)).item() < 1e-6
    assert hidden_loss([same], proj, (-same).unsqueeze(1)).item() > 1.9
    with pytest.raises(ValueError, match="--hidden-layers"):
        kept_hidden([tiny_model])  # a model folder keeps no hidden states
    with pytest.raises(ValueError, match="one teacher"):
        kept_hidden([kept, kept])


def test_the_teacher_pass_keeps_its_chunks_and_goes_on_where_it_was_cut_off(tiny_model: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A base-size teacher over a transfer set is hours on 2 cores: logits and hidden states come
    from one pass, and a pass cut off (a stop, a crash) runs only the chunks it had not finished."""
    import numpy as np

    from riskpulse.models import network
    from riskpulse.models.teacher_predictions import teacher_pass

    texts = [f"Company {i} shares {'fall' if i % 2 else 'rise'} after {'weak' if i % 3 else 'strong'} results"
             + " again" * (i % 5) for i in range(40)]
    whole = teacher_pass(tiny_model, texts, (1, 2))
    assert whole.hidden is not None and whole.hidden.shape[:2] == (40, 2) and whole.depth == 2
    assert np.abs(whole.topic.astype(np.float32)).sum() > 0

    work = tmp_path / "work"
    calls: list[int] = []
    cut_at = [3]  # cut off in its third batch: two chunks of 8 finished
    forward = network.TwoHeadClassifier.forward_with_layers

    def counted(self, input_ids, mask, layers):  # type: ignore[no-untyped-def]
        calls.append(len(input_ids))
        if len(calls) == cut_at[0]:
            cut_at[0] = 0
            raise RuntimeError("cut off")
        return forward(self, input_ids, mask, layers)

    monkeypatch.setattr(network.TwoHeadClassifier, "forward_with_layers", counted)
    with pytest.raises(RuntimeError, match="cut off"):
        teacher_pass(tiny_model, texts, (1, 2), batch_size=8, work=work, chunk=8)
    assert sorted(p.name for p in work.glob("chunk-*")) == ["chunk-00000.npz", "chunk-00001.npz"]
    calls.clear()
    again = teacher_pass(tiny_model, texts, (1, 2), batch_size=8, work=work, chunk=8)
    assert sum(calls) == 40 - 16  # only what was not finished ran
    np.testing.assert_allclose(again.topic.astype(np.float32), whole.topic.astype(np.float32), atol=2e-2)
    np.testing.assert_allclose(again.hidden.astype(np.float32), whole.hidden.astype(np.float32), atol=2e-2)

    calls.clear()  # other layers: another plan, started over
    teacher_pass(tiny_model, texts, (2,), batch_size=8, work=work, chunk=8)
    assert sum(calls) == 40 and len(list(work.glob("chunk-*"))) == 5
