"""Which model a service serves when nobody configured one, and where training writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskpulse.settings import SHIPPED_MODEL, Settings


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKPULSE_MODEL_DIR", raising=False)


def test_with_nothing_configured_the_shipped_model_is_served_and_training_writes_to_home(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    assert s.model_dir == SHIPPED_MODEL
    assert s.train_out_dir == tmp_path / "model"  # never into the installed package


def test_a_model_trained_into_home_replaces_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "riskpulse.json").write_text("{}")
    s = Settings(home=tmp_path)
    assert s.model_dir == s.train_out_dir == tmp_path / "model"


def test_a_configured_model_folder_is_used_even_before_it_holds_a_model(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKPULSE_MODEL_DIR", str(tmp_path / "mine"))
    s = Settings(home=tmp_path)
    assert s.model_dir == s.train_out_dir == tmp_path / "mine"
