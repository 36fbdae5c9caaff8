"""``riskpulse backtest`` over a scored history file, and the burst-injection evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskpulse.cli import main
from tests.alerts.test_alerts_integration import history


def test_backtest_prints_the_alerts_the_worker_would_fire(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "scored.jsonl"
    rows = history()
    rows.append({**rows[0], "id": "dup", "duplicate_of": rows[0]["id"]})  # re-published: not counted
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rules = tmp_path / "rules.yaml"
    rules.write_text("defaults: {warmup_windows: 8, halflife_windows: 10, resolve_after_windows: 2}\n")
    assert main(["backtest", str(path), "--rules", str(rules), "--json"]) == 0
    alerts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    tsla = [a for a in alerts if a["key"] == "TSLA"]
    assert [a["status"] for a in tsla] == ["firing", "resolved"]
    assert tsla[0]["observed"]["negative"] == 14 and len(tsla[0]["top_headlines"]) == 5
    assert not [a for a in alerts if a["key"] in ("AAPL", "MSFT")]
    assert main(["backtest", str(path), "--rules", str(rules)]) == 0
    out = capsys.readouterr().out
    assert "2 alert(s) fired, 2 record(s) of escalation/resolution" in out and "firing   warning  WARNING" in out


def test_backtest_refuses_history_without_event_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "scored.jsonl"
    path.write_text(json.dumps({"text": "x", "sentiment": "negative", "topic": "Macro"}) + "\n")
    assert main(["backtest", str(path)]) != 0
    assert "published_at" in capsys.readouterr().err


def test_burst_evaluation_on_real_headlines(data_dir: Path) -> None:
    from riskpulse.alerts.evaluation import evaluate

    report = evaluate(data_dir, sizes=(3.0, 6.0), burst_days=0.5, clean_days=1.0, keys=6, seed=3)
    assert report["bursts"]["6sd"]["detected"] >= 0.95
    assert report["bursts"]["6sd"]["median_windows_to_detect"] <= 2
    assert report["bursts"]["3sd"]["detected"] >= 0.8
    assert report["false_alerts_per_key_day"] <= 2.0
