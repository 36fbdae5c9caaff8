"""`make demo` checks what it needs before it installs or starts anything, and a demo that cannot
run starts nothing (no broker left behind)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, free_port


def test_preflight_names_every_problem_with_its_fix(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "RISKPULSE_HOME": str(tmp_path / "home"), "RISKPULSE_DATA_DIR": str(tmp_path / "none"),
               "RISKPULSE_MODEL_DIR": str(tmp_path / "model"), "RISKPULSE_DASHBOARD_PORT": str(port),
               "RISKPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "RISKPULSE_WORKER_WEB_PORT": str(free_port())}
        done = subprocess.run(["bash", "scripts/preflight.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 1
    assert "nothing was installed or started" in done.stderr
    assert f"port {port} (dashboard) is in use: stop what listens there or set RISKPULSE_DASHBOARD_PORT" in done.stderr
    assert "no model in" in done.stderr and "RISKPULSE_DATA_DIR" in done.stderr
    env.update(RISKPULSE_DASHBOARD_PORT=str(free_port()), RISKPULSE_DATA_DIR=os.environ.get(
        "RISKPULSE_DATA_DIR", str(REPO.parent / "shared" / "data")))
    done = subprocess.run(["bash", "scripts/preflight.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr  # this machine has Java, Maven, the dependencies and the data


def test_a_demo_without_a_model_or_the_data_starts_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "RISKPULSE_HOME": str(home), "RISKPULSE_DATA_DIR": str(tmp_path / "none"),
           "RISKPULSE_MODEL_DIR": str(tmp_path / "model"), "RISKPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    done = subprocess.run([sys.executable, "-m", "riskpulse.cli", "demo"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "nothing was started" in done.stderr and "RISKPULSE_MODEL_DIR" in done.stderr
    assert not (home / "kafka" / "broker.json").exists()  # the broker was never started
