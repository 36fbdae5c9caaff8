"""docker-compose.yml is valid (checked by docker compose itself; no engine runs here) and complete."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO


def compose_command() -> list[str]:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("docker compose (or Debian's docker-compose) is needed to validate docker-compose.yml: "
                "bash scripts/install-system.sh")


def test_compose_file_validates_with_every_profile() -> None:
    cmd = compose_command() + ["--env-file", "deploy/example.env", "--profile", "gpu", "--profile", "feeds",
                               "--profile", "train", "config"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    services = config["services"]
    assert {"kafka", "postgres", "worker", "worker-gpu", "dashboard", "ingest", "rss", "train"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.1.")
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no healthcheck"
    gpu = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and services["worker-gpu"]["environment"]["RISKPULSE_BACKEND"] == "tensorrt"
    assert services["worker"]["environment"]["RISKPULSE_STORE_URL"].startswith("postgresql+psycopg://")


def test_compose_refuses_to_start_the_dashboard_without_a_password_hash(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    out = subprocess.run(compose_command() + ["--env-file", str(empty), "config"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0 and "RISKPULSE_DASHBOARD_PASSWORD_HASH" in out.stderr


def test_shipped_rules_and_watchlist_load() -> None:
    from riskpulse.alerts.rules import Rules
    from riskpulse.stream.tickers import Watchlist

    rules = Rules.load(REPO / "deploy" / "alert-rules.yaml")
    assert rules.rule_for("topic", "Fed | Central Banks")[1].warning_z == 4.0
    watchlist = Watchlist.load(Path(REPO / "deploy" / "watchlist.yaml"))
    assert watchlist.extract("JP Morgan and Exxon shares fall") == ["JPM", "XOM"]
