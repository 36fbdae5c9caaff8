"""A training run cut short goes on from its last checkpoint and ends as an unbroken run would."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="training needs PyTorch")

from riskpulse.models import train as train_module  # noqa: E402
from riskpulse.models.checkpoint import FILE  # noqa: E402
from riskpulse.models.network import TwoHeadClassifier  # noqa: E402
from riskpulse.models.train import recipe_by_name, train  # noqa: E402

pytestmark = pytest.mark.training

# two epochs of about 30 steps, a dev evaluation (and checkpoint) every 7 steps; with lever 3's
# options on, so the moving average of the weights is resumed too
RECIPE = recipe_by_name("tiny", epochs=2.0, eval_every=7, patience=100, int8_epochs=0.0, soft_agreement=True,
                        dev_score="by_target", ema_decay=0.9)


class Killed(Exception):
    """Stands for the process dying: nothing after it runs."""


def _kill_at(monkeypatch: pytest.MonkeyPatch, at_step: int) -> None:
    real, calls = train_module._update, [0]

    def update(*args: object) -> None:
        calls[0] += 1
        if calls[0] == at_step:
            raise Killed
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(train_module, "_update", update)


def test_a_resumed_run_ends_with_the_weights_of_an_unbroken_one(data_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed in the second epoch: the batch order of that epoch, the schedule, the best weights
    and dropout's random state all come back (the first epoch's are what an unbroken run did)."""
    killed_at = 40
    unbroken = train(data_dir, tmp_path / "unbroken", RECIPE, progress=False, threads=1)

    with monkeypatch.context() as m:
        _kill_at(m, killed_at)
        with pytest.raises(Killed):
            train(data_dir, tmp_path / "resumed", RECIPE, progress=False, threads=1)
    assert (tmp_path / "resumed.partial" / FILE).exists() and not (tmp_path / "resumed").exists()
    steps = []
    real = train_module._update
    monkeypatch.setattr(train_module, "_update", lambda *a: (steps.append(1), real(*a)))
    resumed = train(data_dir, tmp_path / "resumed", RECIPE, progress=False, threads=1, resume=True)

    total = json.loads((unbroken / "card.json").read_text())["training"]["steps"]
    assert total > killed_at > total / 2
    assert len(steps) == total - (killed_at - 1) // 7 * 7  # went on from the last checkpoint, not from the start
    a, b = TwoHeadClassifier.load(unbroken).state_dict(), TwoHeadClassifier.load(resumed).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (resumed / FILE).exists()


def test_a_checkpoint_of_another_recipe_is_refused(data_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        _kill_at(m, 8)
        with pytest.raises(Killed):
            train(data_dir, tmp_path / "model", RECIPE, progress=False, threads=1)
    other = replace(RECIPE, lr=1e-4)
    with pytest.raises(ValueError, match="checkpoint of another run .*recipe"):
        train(data_dir, tmp_path / "model", other, progress=False, threads=1, resume=True)
    assert (tmp_path / "model.partial" / FILE).exists()  # refused, not overwritten


def test_a_resumed_run_learning_hidden_states_resumes_its_projections(tiny_model: Path, data_dir: Path,
                                                                     tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.models.test_distill import _kept_with_hidden

    kept = _kept_with_hidden(tiny_model, data_dir, tmp_path / "kept", RECIPE.limit_per_source)
    recipe = replace(RECIPE, teachers=(str(kept),), hidden_weight=1.0)
    unbroken = train(data_dir, tmp_path / "unbroken", recipe, progress=False, threads=1)
    with monkeypatch.context() as m:
        _kill_at(m, 40)
        with pytest.raises(Killed):
            train(data_dir, tmp_path / "resumed", recipe, progress=False, threads=1)
    resumed = train(data_dir, tmp_path / "resumed", recipe, progress=False, threads=1, resume=True)
    a, b = TwoHeadClassifier.load(unbroken).state_dict(), TwoHeadClassifier.load(resumed).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # the projections came back: else the weights part ways
