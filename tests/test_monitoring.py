"""The monitoring files in deploy/ (Prometheus scrape config and alert rules, Grafana dashboard)
are well formed and name only metrics riskpulse exports: renaming a metric without them fails here."""

from __future__ import annotations

import json
import re

import yaml
from prometheus_client import REGISTRY

from tests.helpers import REPO

DEPLOY = REPO / "deploy"
NAME = re.compile(r"\b(riskpulse_[a-z0-9_]+)")


def exported() -> set[str]:
    """Every series name the worker, the ingest endpoint and the dashboard can export."""
    import riskpulse.stream.ingest  # noqa: F401
    import riskpulse.stream.metrics  # noqa: F401
    import riskpulse.stream.rss  # noqa: F401
    from flask import Flask

    from riskpulse.dashboard.routes import install_metrics

    install_metrics(Flask("probe"))  # the dashboard registers its own once per process
    names: set[str] = set()
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "gauge": ("",), "summary": ("_sum", "_count", "_created")}
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def test_alert_rules_are_well_formed_and_name_exported_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "riskpulse-alerts.yml").read_text())
    known = exported()
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len({rule["alert"] for rule in alerts}) == len(alerts) >= 8
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        assert set(NAME.findall(rule["expr"])) <= known, (rule["alert"], set(NAME.findall(rule["expr"])) - known)
    covered = " ".join(rule["expr"] for rule in alerts)
    for must in ("riskpulse_consumer_lag", "riskpulse_dlq_total", "riskpulse_webhook_attempts_total",
                 "riskpulse_watermark_seconds", "riskpulse_model_seconds_bucket"):
        assert must in covered  # lag, dead letters, webhooks, windows not closing, model latency


def test_the_scrape_config_finds_every_replica_and_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/riskpulse-alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    worker = jobs["riskpulse-worker"]["dns_sd_configs"]
    assert {"names": ["worker"], "type": "A", "port": 6066} in worker  # every `--scale` replica
    assert jobs["riskpulse-ingest"]["static_configs"][0]["targets"] == ["ingest:8088"]


def test_the_grafana_dashboard_is_provisioned_and_names_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "riskpulse.json").read_text())
    known = exported()
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert dashboard["uid"] == "riskpulse" and len(exprs) >= 10
    for expr in exprs:
        assert set(NAME.findall(expr)) <= known, expr
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "riskpulse.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["uid"] == "prometheus" == dashboard["panels"][0]["datasource"]["uid"]
