"""The levers' study summarises by seeds, pairs each variant with the plain recipe per seed, and keeps
what each model got right so its figures outlive the machine that trained it."""

from __future__ import annotations

import numpy as np

import json
from pathlib import Path

import pytest

from bench.model_study import (correct_from, markdown_table, record, record_stands_for, summarize,
                               summary_lines)


def test_a_variant_is_compared_with_the_plain_recipe_on_the_seeds_both_have() -> None:
    ones, zeros = np.ones(10, dtype=bool), np.zeros(10, dtype=bool)
    half = np.array([True] * 5 + [False] * 5)
    results = {
        "plain": {13: {"pb": half}, 14: {"pb": half}, 15: {"pb": half}},
        "teacher": {13: {"pb": ones}, 14: {"pb": half}},  # seed 15 not finished yet
    }
    summary = summarize(results, {"pb": 10})
    default, teacher = summary["variants"]["plain"]["pb"], summary["variants"]["teacher"]["pb"]
    assert default["seeds"] == [13, 14, 15] and default["mean"] == 0.5 and default["sd"] == 0.0
    assert "mcnemar_pooled" not in default
    assert teacher["seeds"] == [13, 14] and teacher["accuracy"] == [1.0, 0.5] and teacher["mean"] == 0.75
    assert np.isclose(teacher["sd"], np.std([1.0, 0.5], ddof=1))
    # seed 13: the five items only the teacher gets right; seed 14: no discordant item
    assert teacher["mcnemar_per_seed"][13] == {"b": 5, "c": 0, "p": 2 / 2 ** 5}
    assert teacher["mcnemar_per_seed"][14] == {"b": 0, "c": 0, "p": 1.0}
    assert teacher["mcnemar_pooled"] == {"b": 5, "c": 0, "p": 2 / 2 ** 5}
    lines = summary_lines(summary)
    assert lines[2].split()[:3] == ["teacher", "pb", "13,14"] and "5/0, p=0.062; s13 0.062, s14 1.000" in lines[2]
    table = markdown_table(summary)
    assert table[:2] == ["| variant (seeds) | pb |", "| --- | --- |"]
    assert table[2] == "| plain (13, 14, 15) | 0.5000 +- 0.0000 |"
    assert table[3].startswith("| teacher (13, 14) | 0.7500 +- 0.3536 |")
    assert table[4] == "| McNemar teacher vs plain (13, 14), b/c | 5/0, p=0.062 |" and len(table) == 5
    assert markdown_table(summarize({"plain": {13: {"pb": zeros}}, "teacher": {13: {"pb": ones}}},
                                    {"pb": 10}))[-1].endswith("| 10/0, p=0.002 |")
    twenty = summarize({"plain": {13: {"pb": np.zeros(20, bool)}}, "teacher": {13: {"pb": np.ones(20, bool)}}}, {"pb": 20})
    assert markdown_table(twenty)[-1].endswith("| 20/0, p<0.001 |")
    worse = summarize({"plain": {13: {"pb": ones}}, "soft": {13: {"pb": zeros}}}, {"pb": 10})
    assert worse["variants"]["soft"]["pb"]["mcnemar_pooled"] == {"b": 0, "c": 10, "p": 2 / 2 ** 10}


def test_a_lever_is_also_tested_against_the_default_recipe_when_asked() -> None:
    ones, half = np.ones(10, dtype=bool), np.array([True] * 5 + [False] * 5)
    zeros = np.zeros(10, dtype=bool)
    results = {"plain": {13: {"pb": zeros}, 14: {"pb": zeros}}, "teacher": {13: {"pb": half}, 14: {"pb": half}},
               "combo": {13: {"pb": ones}}}
    summary = summarize(results, {"pb": 10}, also_against="teacher")
    combo = summary["variants"]["combo"]["pb"]
    assert combo["mcnemar_pooled"] == {"b": 10, "c": 0, "p": 2 / 2 ** 10}
    assert combo["mcnemar_pooled_vs"] == {"teacher": {"b": 5, "c": 0, "p": 2 / 2 ** 5, "seeds": [13]}}
    assert "mcnemar_pooled_vs" not in summary["variants"]["teacher"]["pb"]  # not tested against itself
    assert "mcnemar_pooled_vs" not in summary["variants"]["plain"]["pb"]
    table = markdown_table(summary)
    assert table[-2:] == ["| McNemar combo vs plain (13), b/c | 10/0, p=0.002 |",
                          "| McNemar combo vs teacher (13), b/c | 5/0, p=0.062 |"]
    assert "mcnemar_pooled_vs" not in summarize(results, {"pb": 10})["variants"]["combo"]["pb"]


def test_a_kept_record_gives_back_the_bits_of_its_model_and_only_for_its_cut(tmp_path: Path) -> None:
    model = tmp_path / "teacher-s13"
    model.mkdir()
    files = {"financial-phrasebank/all.csv": "ab" * 32}
    card = {"model_version": "v1", "recipe": {"seed": 13, "split_seed": 13}, "data": {"files": files}}
    (model / "card.json").write_text(json.dumps(card))
    rng = np.random.default_rng(0)
    correct = {"pb": rng.random(971) < 0.8, "tw": rng.random(8) < 0.5}  # lengths not multiples of 8
    kept = json.loads(json.dumps(record(model, correct)))  # as written to and read from the results folder
    back = correct_from(kept, 13, files, {"pb": 971, "tw": 8})
    assert all(np.array_equal(back[k], correct[k]) and back[k].dtype == bool for k in correct)
    assert "text" not in json.dumps(kept)
    with pytest.raises(ValueError, match="another held-out cut"):
        correct_from(kept, 14, files, {"pb": 971, "tw": 8})
    with pytest.raises(ValueError, match="another held-out cut or data"):
        correct_from(kept, 13, {**files, "financial-phrasebank/all.csv": "cd" * 32}, {"pb": 971, "tw": 8})
    with pytest.raises(ValueError, match="other held-out sets"):
        correct_from(kept, 13, files, {"pb": 970, "tw": 8})


def test_a_record_stands_in_for_its_own_model_or_a_missing_one_but_not_for_a_retrained_one(tmp_path: Path) -> None:
    model, kept = tmp_path / "runs" / "soft-s13", tmp_path / "soft-s13.json"
    assert not record_stands_for(kept, model)  # nothing scored yet
    kept.write_text(json.dumps({"model_version": "v1"}))
    assert record_stands_for(kept, model)  # the model was scored on another machine
    model.mkdir(parents=True)
    (model / "card.json").write_text(json.dumps({"model_version": "v1"}))
    assert record_stands_for(kept, model)  # the same model: scoring it again gives the same bits
    (model / "card.json").write_text(json.dumps({"model_version": "v2"}))
    assert not record_stands_for(kept, model)  # retrained since: score it again


def test_the_accurate_variant_says_which_encoder_it_needs(tmp_path: Path) -> None:
    from bench.model_study import LEVERS, train_variant

    assert LEVERS["accurate"] == {"accurate"}
    with pytest.raises(SystemExit, match="--encoder DIR"):
        train_variant("accurate", 13, tmp_path, tmp_path, "mpnet-s13", 13, "default", encoder=None)


def test_the_transfer_variants_are_taught_by_the_transfer_teacher_and_hidden_adds_its_states(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.model_study import train_variant
    from riskpulse.models import train as training

    with pytest.raises(SystemExit, match="--transfer-teacher DIR"):
        train_variant("transfer", 13, tmp_path, tmp_path, "mpnet-s13", 13, "default")
    import numpy as np

    from riskpulse.models.augment import Augmentation, NeighbourTable
    from riskpulse.models.teacher_predictions import TeacherPredictions, text_keys

    meta = {"format": 1, "teacher": "t", "rows": 3, "split_seed": 13, "files": {}}
    TeacherPredictions(meta, text_keys(["a", "b", "a2"]), np.zeros((3, 20), np.float16), np.zeros((3, 3), np.float16)) \
        .as_transfer_set(2, Augmentation(copies=1), NeighbourTable(np.array(["x"]), np.zeros((1, 1), np.int32))) \
        .write(tmp_path / "kept")
    recipes = {}
    monkeypatch.setattr(training, "train", lambda data, out, recipe, **kw: recipes.setdefault(out.name, recipe))
    for variant in ("teacher", "transfer", "hidden", "taught"):
        train_variant(variant, 14, tmp_path, tmp_path, "mpnet-s13", 13, "default", transfer_teacher=tmp_path / "kept")
    assert recipes["teacher-s14"].teachers == ("mpnet-s13",) and recipes["teacher-s14"].hidden_weight == 0
    assert recipes["transfer-s14"].teachers == (str(tmp_path / "kept"),) and recipes["transfer-s14"].hidden_weight == 0
    assert recipes["hidden-s14"].teachers == (str(tmp_path / "kept"),) and recipes["hidden-s14"].hidden_weight == 1.0
    assert recipes["hidden-s14"].seed == 14 and recipes["hidden-s14"].split_seed == 13
    # the control: the same teacher on the training texts alone
    control = TeacherPredictions.read(Path(recipes["taught-s14"].teachers[0]))
    assert control.meta["rows"] == 2 and control.augmentation is None and recipes["taught-s14"].hidden_weight == 0
