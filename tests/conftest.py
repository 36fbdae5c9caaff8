"""Session fixtures: the real Kafka broker, a tiny trained model, the labelled data."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from riskpulse.settings import Settings  # noqa: E402
from riskpulse.stream.local_broker import LocalBroker  # noqa: E402
from tests.helpers import Worker, worker_env  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the trained tiny model (or trains one) is in the training tier:
    `make test-fast` leaves it out, with the broker and the browser tests."""
    for item in items:
        if "tiny_model" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.training)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ.get("RISKPULSE_DATA_DIR") or Settings().data_dir).resolve()
    if not (path / "financial-phrasebank" / "all.csv").exists():
        pytest.fail(f"labelled data not found at {path}: put shared/ beside the checkout or set RISKPULSE_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """Two encoder layers, trained in seconds on a slice, exported and gated like a real model.

    The int8 bar is lower here than the product's 0.995: an undertrained model has near-tied
    logits, so int8 flips more argmaxes; the real model's figure comes from bench/.
    """
    from riskpulse.models.data import load_splits
    from riskpulse.models.export import export
    from riskpulse.models.train import recipe_by_name, train

    out = train(data_dir, tmp_path_factory.mktemp("model") / "tiny", recipe_by_name("tiny"), progress=False)
    evals = load_splits(data_dir).evals
    texts = evals["tw-topic-valid"].text.tolist()[:300] + evals["tw-sentiment-valid"].text.tolist()[:300]
    export(out, texts, min_agreement={"int8": 0.97})
    return out


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """One real broker for the session; CI fails (never skips) when it cannot start."""
    broker = LocalBroker(state_dir=tmp_path_factory.mktemp("kafka"),
                         cache_dir=Path.home() / ".cache" / "riskpulse" / "kafka")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def pipeline(tmp_path: Path, kafka: Any, tiny_model: Path, request: pytest.FixtureRequest):
    """Factory for workers on a topic namespace of their own; stops them all afterwards."""
    # the test's name, short, and a hash of all of it: two cases of one parametrized test (or two
    # tests alike in their first letters) never share topics, consumer group or tables
    full = request.node.name
    name = full.replace("_", "").replace("[", "").replace("]", "")[:32] + hashlib.sha256(full.encode()).hexdigest()[:8]
    workers: list[Worker] = []

    def start(**extra: Any) -> Worker:
        env = worker_env(tmp_path / f"w{len(workers)}", kafka.bootstrap, tiny_model, name, **extra)
        w = Worker(env, tmp_path / f"worker{len(workers)}.log")
        workers.append(w)  # before it starts: one that never gets ready is stopped too (it was left running)
        return w.start()

    start.topic = lambda t: f"{name}.{t}"  # type: ignore[attr-defined]
    start.workers = workers  # type: ignore[attr-defined] - every worker started, the killed and stopped ones too
    yield start
    for w in workers:
        w.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One real PostgreSQL server for the session (Debian's; see tests/postgres.py)."""
    from tests.postgres import LocalPostgres

    server = LocalPostgres().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store, on each database riskpulse supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server = request.getfixturevalue("postgres_server")
    server.reset()
    return str(server.url)
