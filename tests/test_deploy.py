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
                               "--profile", "train", "--profile", "monitoring", "config"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    services = config["services"]
    assert {"kafka", "postgres", "worker", "worker-gpu", "dashboard", "ingest", "rss", "train", "prometheus",
            "grafana"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.1.")
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no healthcheck"
    gpu = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and services["worker-gpu"]["environment"]["RISKPULSE_BACKEND"] == "tensorrt"
    assert services["worker"]["environment"]["RISKPULSE_STORE_URL"].startswith("postgresql+psycopg://")
    # the services run the slim image (Dockerfile's last stage: serve); training and TensorRT their own
    for name in ("worker", "dashboard", "ingest", "rss"):
        assert "target" not in services[name]["build"], name
    assert services["train"]["build"]["target"] == "train" and services["worker-gpu"]["build"]["target"] == "gpu"


def test_the_default_image_is_the_serving_one_built_from_its_lock() -> None:
    stages: dict[str, list[str]] = {}
    current = ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM "):
            words = line.split()
            current = words[3] if len(words) > 3 else "(default)"
            stages[current] = [line]
        elif current:
            stages[current].append(line)
    assert stages["(default)"] == ["FROM serve"]  # the last stage: what `docker build .` builds
    serve = "\n".join(stages["serve"])
    assert "--require-hashes -r requirements/serve.lock" in serve and "train.lock" not in serve
    assert "--require-hashes -r requirements/train.lock" in "\n".join(stages["train"])
    assert stages["gpu"][0] == "FROM train AS gpu"


@pytest.mark.parametrize("missing", ["RISKPULSE_DASHBOARD_PASSWORD_HASH", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"])
def test_compose_refuses_to_start_without_each_secret(tmp_path: Path, missing: str) -> None:
    """No default password anywhere: the dashboard's hash and PostgreSQL's password must be set."""
    example = (REPO / "deploy" / "example.env").read_text().splitlines()
    env = tmp_path / "partial.env"
    env.write_text("\n".join(line for line in example if not line.startswith(missing + "=")) + "\n")
    out = subprocess.run(compose_command() + ["--env-file", str(env), "config"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0 and missing in out.stderr


def test_the_services_scale_out_as_written() -> None:
    """`docker compose up --scale worker=N`: no fixed host port on a worker, Kafka reachable from
    the host through its own listener, the dashboard on gunicorn in one process."""
    out = subprocess.run(compose_command() + ["--env-file", "deploy/example.env", "--profile", "gpu", "config"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    services = yaml.safe_load(out.stdout)["services"]
    for name in ("worker", "worker-gpu"):
        assert not services[name].get("ports"), f"{name} maps a host port: replicas would collide"
    kafka = services["kafka"]
    assert "HOST://127.0.0.1:29092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    published = [p.removesuffix("/tcp") if isinstance(p, str) else f"{p['host_ip']}:{p['published']}:{p['target']}"
                 for p in kafka["ports"]]
    assert published == ["127.0.0.1:29092:29092"]  # docker-compose v1 keeps the short form, v2 the long one
    dashboard = services["dashboard"]
    assert dashboard["entrypoint"] == ["gunicorn"] and "riskpulse.dashboard.wsgi:server" in dashboard["command"]
    assert dashboard["command"][dashboard["command"].index("--workers") + 1] == "1"


def test_shipped_rules_and_watchlist_load() -> None:
    from riskpulse.alerts.rules import Rules
    from riskpulse.stream.tickers import Watchlist

    rules = Rules.load(REPO / "deploy" / "alert-rules.yaml")
    assert rules.rule_for("topic", "Fed | Central Banks")[1].warning_z == 4.0
    watchlist = Watchlist.load(Path(REPO / "deploy" / "watchlist.yaml"))
    assert watchlist.extract("JP Morgan and Exxon shares fall") == ["JPM", "XOM"]
