"""The transfer set: variants of the training texts a teacher labels and a student regenerates exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskpulse.models.augment import STOP, Augmentation, NeighbourTable, transfer_texts, variants
from riskpulse.models.teacher_predictions import TeacherPredictions, text_keys

TABLE = {"profit": ["profits", "revenue", "income"], "plunge": ["tumble", "dip"], "shares": ["stocks", "stock"],
         "warning": ["warnings", "alert"], "rose": ["fell", "rises"], "tesla": ["ford"], "sales": ["revenue"]}
ONE_WORD = st.text(st.sampled_from(list("abcdefg XYZ$%.,")), min_size=0, max_size=60)


def test_variants_replace_words_by_their_neighbours_keeping_case_and_punctuation() -> None:
    aug = Augmentation(copies=6, ops=("replace",), replace_p=1.0)
    text = "Tesla shares plunge after profit warning."
    out = variants(text, aug, TABLE)
    assert out and all(v != text for v in out) and len(set(out)) == len(out)
    for v in out:
        first, *_, last = v.split()
        assert first in ("Ford", "Tesla") and last.endswith(".")  # capital kept; the full stop stays
        assert "after" in v.split()  # not in the table: never replaced


def test_tickers_and_acronyms_in_capitals_are_never_replaced() -> None:
    table = {"tsla": ["ford"], "ceo": ["chairman"], "quits": ["resigns"]}
    for v in variants("TSLA CEO quits", Augmentation(copies=5, ops=("replace",), replace_p=1.0), table):
        assert v.split()[:2] == ["TSLA", "CEO"]


def test_a_deletion_drops_one_short_span_of_a_long_enough_text() -> None:
    aug = Augmentation(copies=4, ops=("delete",), max_span=3)
    text = "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn"
    for v in variants(text, aug, TABLE):
        assert 8 <= len(v.split()) <= 10 and set(v.split()) <= set(text.split())
    assert variants("Fed holds rates steady", aug, TABLE) == []  # under six words: nothing to delete


@settings(max_examples=200, deadline=None)
@given(st.lists(ONE_WORD, min_size=1, max_size=12))
def test_variants_depend_on_the_text_alone_never_on_its_neighbours_or_order(texts: list[str]) -> None:
    aug = Augmentation(copies=3, seed=7)
    forward, origin = transfer_texts(texts, aug, TABLE)
    backward, _ = transfer_texts(texts[::-1], aug, TABLE)
    assert set(forward) == set(backward)
    assert not set(forward) & set(texts)  # a variant equal to a training text is that text, not a variant
    assert all(v in variants(texts[i], aug, TABLE) for v, i in zip(forward, origin))
    assert variants(texts[0], aug, TABLE) == variants(texts[0], aug, dict(TABLE))


def test_another_seed_gives_other_variants() -> None:
    text = "Tesla shares plunge after profit warning as sales rose"
    assert variants(text, Augmentation(seed=0), TABLE) != variants(text, Augmentation(seed=1), TABLE)


def test_unknown_ops_are_refused() -> None:
    with pytest.raises(ValueError, match="replace, delete"):
        Augmentation(ops=("splice",))


def test_the_neighbour_table_of_the_shipped_encoder_holds_near_words_and_no_function_words() -> None:
    from riskpulse.models.encoder import base_model_dir

    table = NeighbourTable.from_encoder(base_model_dir(), k=8)
    lookup = table.lookup()
    assert len(lookup) > 15_000 and not STOP & set(lookup)
    assert "profits" in lookup["profit"] and "plunged" in lookup["plunge"]
    assert all(w not in row for w, row in list(lookup.items())[:2000])  # never itself


def test_predictions_keep_their_transfer_set_and_table(tmp_path: Path) -> None:
    table = NeighbourTable(np.array(["plunge", "profit", "tumble"]), np.array([[2, 1], [0, 2], [0, 1]], np.int32))
    meta = {"format": 1, "teacher": "t", "rows": 3, "split_seed": 13, "files": {}}
    # one pass over two training texts and then one variant (teacher predict --augment-copies)
    both = TeacherPredictions(meta, text_keys(["a", "b", "c"]), np.array([[0] * 20, [0] * 20, [1] * 20], np.float16),
                              np.array([[1] * 3, [1] * 3, [0] * 3], np.float16))
    aug = Augmentation(copies=3, seed=5)
    joined = both.as_transfer_set(2, aug, table).write(tmp_path / "p")
    back = TeacherPredictions.read(joined)
    assert back.augmentation == aug and back.meta["rows"] == 3 and back.meta["transfer_rows"] == 1
    assert back.neighbours is not None and back.neighbours.lookup() == table.lookup()
    topic, sentiment = back.logits_for(["c", "a"])
    assert topic is not None and sentiment is not None
    assert topic[0].tolist() == [1.0] * 20 and sentiment[1].tolist() == [1.0] * 3
    assert TeacherPredictions.read(both.write(tmp_path / "plain")).augmentation is None
    # the same teacher without its variants: the transfer set's control
    alone = TeacherPredictions.read(joined).without_transfer_set()
    assert alone.augmentation is None and alone.neighbours is None and alone.meta["rows"] == 2
    assert "transfer_rows" not in alone.meta and alone.keys.tolist() == text_keys(["a", "b"]).tolist()
    assert alone.topic is not None and alone.topic.shape == (2, 20) and alone.topic.max() == 0
