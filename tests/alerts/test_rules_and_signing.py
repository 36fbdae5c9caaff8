"""Rules files (errors name the line), Standard Webhooks signing, the retry policy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random

import pytest

from riskpulse.alerts.delivery import RetryPolicy, classify
from riskpulse.alerts.rules import Rules, RulesError
from riskpulse.alerts.signing import WebhookVerificationError, headers_for, new_secret, sign, verify

GOOD = """\
defaults:
  warning_z: 3.5
topics:
  "Fed | Central Banks":
    warning_z: 4.0
tickers:
  AAPL: {min_negative: 3}
routes:
  - name: desk
    url: http://127.0.0.1:9/hook
    secrets: [env:RP_TEST_SECRET]
    severities: [critical]
  - name: chat
    url: https://hooks.slack.example/T000
    format: slack
    key_types: [ticker]
    keys: [AAPL]
"""


def test_rules_overrides_and_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RP_TEST_SECRET", new_secret())
    rules = Rules.parse(GOOD)
    assert rules.rule_for("topic", "Fed | Central Banks") == ("topic:Fed | Central Banks", rules.overrides[("topic", "Fed | Central Banks")])
    assert rules.rule_for("topic", "Fed | Central Banks")[1].warning_z == 4.0
    assert rules.rule_for("ticker", "AAPL")[1].min_negative == 3
    assert rules.rule_for("ticker", "AAPL")[1].warning_z == 3.5  # defaults flow into overrides
    assert rules.rule_for("topic", "Energy | Oil")[0] == "default"
    assert [r.name for r in rules.routes_for("critical", "ticker", "AAPL")] == ["desk", "chat"]
    assert [r.name for r in rules.routes_for("warning", "ticker", "AAPL")] == ["chat"]
    assert rules.routes_for("warning", "topic", "Energy | Oil") == []


@pytest.mark.parametrize("text, expected", [
    (GOOD.replace("warning_z: 4.0", "warning_z: high"), "line 5: topics.Fed | Central Banks.warning_z"),
    (GOOD.replace("min_negative: 3", "min_negatve: 3"), "line 7: tickers.AAPL.min_negatve: Extra inputs"),
    (GOOD.replace("url: http://127.0.0.1:9/hook", "url: ftp://x"), "line 10: routes.0.url"),
    (GOOD.replace("format: slack", "format: teams"), "line 15: routes.1.format"),
    (GOOD.replace("warning_z: 3.5", "warning_z: 3.5\n  critical_z: 2"), "line 2: defaults: Value error, critical_z"),
    (GOOD.replace("  AAPL: {min_negative: 3}", "  AAPL: {min_negative: 3"), "not valid YAML"),
    ("- just\n- a list\n", "line 1: expected a mapping"),
])
def test_a_bad_rules_file_names_the_line(monkeypatch: pytest.MonkeyPatch, text: str, expected: str) -> None:
    monkeypatch.setenv("RP_TEST_SECRET", new_secret())
    with pytest.raises(RulesError) as err:
        Rules.parse(text, "rules.yaml")
    assert expected in str(err.value), str(err.value)
    assert "rules.yaml" in str(err.value)


def test_a_secret_from_a_missing_variable_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RP_TEST_SECRET", raising=False)
    with pytest.raises(RulesError, match="RP_TEST_SECRET"):
        Rules.parse(GOOD)


def test_signature_matches_the_standard_webhooks_reference_construction() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b'{"a":1}'
    expected = base64.b64encode(hmac.new(b"k" * 32, b"msg_1.1700000000." + body, hashlib.sha256).digest()).decode()
    assert sign(secret, "msg_1", 1700000000, body) == "v1," + expected


def test_verify_accepts_any_active_secret_and_refuses_tampering() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"type":"alert.firing"}'
    headers = headers_for([old, new], "msg_x", body, timestamp=1_000_000)
    verify(body, headers, old, now=1_000_010)
    verify(body, headers, new, now=1_000_010)  # rotation: both verify during the overlap
    with pytest.raises(WebhookVerificationError):
        verify(body + b" ", headers, old, now=1_000_010)
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, new_secret(), now=1_000_010)
    with pytest.raises(WebhookVerificationError, match="timestamp"):
        verify(body, headers, old, now=1_000_000 + 301)
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify(body, {"webhook-id": "x"}, old)


def test_retry_schedule_is_exponential_jittered_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_s=5, cap_s=60, max_attempts=10)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (9, 60)]:
        delays = [policy.delay(attempt, None, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jitter spreads receivers' retry storms
    assert policy.delay(1, 120.0, rng) == 120.0


@pytest.mark.parametrize("status, outcome", [
    (200, "delivered"), (204, "delivered"), (408, "retry"), (429, "retry"), (500, "retry"), (503, "retry"),
    (None, "retry"), (400, "failed"), (401, "failed"), (404, "failed"), (410, "disable"), (301, "failed"),
])
def test_which_answers_are_retried(status: int | None, outcome: str) -> None:
    assert classify(status) == outcome


TREE = """
routes:
  - name: desk
    url: https://hooks.example.com/desk
    format: slack
    group_wait_s: 10
    routes:
      - {name: desk-pager, url: https://pager.example.com/hook, severities: [critical], continue: false}
      - {name: desk-tesla, keys: [TSLA]}
  - name: audit
    url: https://audit.example.com/hook
    format: alertmanager
"""


def test_a_routing_tree_hands_alerts_down_inherits_and_stops_where_continue_is_false() -> None:
    rules = Rules.parse(TREE)
    to = lambda *labels: [r.name for r in rules.routes_for(*labels)]  # noqa: E731
    assert to("critical", "ticker", "TSLA") == ["desk-pager", "audit"]  # the pager, not the TSLA route after it
    assert to("warning", "ticker", "TSLA") == ["desk-tesla", "audit"]
    assert to("warning", "topic", "Macro") == ["desk", "audit"]  # no route below matches: the desk itself
    tesla = next(r for r in rules.routes if r.name == "desk-tesla")
    assert (tesla.url, tesla.format, tesla.group_wait_s) == ("https://hooks.example.com/desk", "slack", 10)
    assert [r.name for r in rules.routes] == ["desk", "desk-pager", "desk-tesla", "audit"]
    # a flat list keeps its meaning: every matching route receives
    flat = Rules.parse("routes:\n  - {name: a, url: 'http://a/x'}\n  - {name: b, url: 'http://b/x', severities: [critical]}\n")
    assert [r.name for r in flat.routes_for("critical", "ticker", "X")] == ["a", "b"]


@pytest.mark.parametrize("text, expected", [
    (TREE.replace("name: desk-tesla", "name: audit"), "route names must be unique: audit"),
    ("routes:\n  - name: top\n    routes:\n      - {name: child}\n", "route 'child': no url"),
    (TREE.replace("continue: false", "continue: maybe"), "line 8: routes.0.routes.0.continue"),
])
def test_a_bad_routing_tree_is_refused_at_start_up_naming_its_line(text: str, expected: str) -> None:
    with pytest.raises(RulesError) as refused:
        Rules.parse(text, "rules.yaml")
    assert expected in str(refused.value)
