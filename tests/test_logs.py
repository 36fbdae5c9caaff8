"""Logs never carry secrets: by field name, and inside messages and values."""

from __future__ import annotations

import json
import logging

from riskpulse.logs import JsonFormatter, TextFormatter


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("t", logging.INFO, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


def test_secrets_are_redacted_in_json_and_text_logs() -> None:
    rec = record("connect postgresql+psycopg://rp:hunter2@db:5432/rp failed; sent Authorization: Bearer abc.def-123",
                 token="s3cret", store_url="postgresql://rp:hunter2@db/rp", route_secret="whsec_QUJDRA==",
                 note="key whsec_QUJDRA== rotated", count=3)
    for line in (JsonFormatter().format(rec), TextFormatter("%(message)s").format(rec)):
        assert "hunter2" not in line and "abc.def-123" not in line and "QUJDRA" not in line and "s3cret" not in line
        assert "rp:***@db" in line and "Bearer ***" in line
    out = json.loads(JsonFormatter().format(rec))
    assert out["token"] == "***" and out["count"] == 3 and out["note"] == "key whsec_*** rotated"


def test_repeated_records_are_rate_limited_and_the_count_is_reported() -> None:
    import logging

    from riskpulse.logs import RateLimit

    now = [0.0]
    limit = RateLimit(burst=3, period_s=60, clock=lambda: now[0])
    record = lambda: logging.LogRecord("aiokafka", logging.ERROR, "", 0, "Unable connect to %s", ("node",), None)  # noqa: E731
    passed = [limit.filter(record()) for _ in range(100)]
    assert passed.count(True) == 3
    now[0] = 61.0
    later = record()
    assert limit.filter(later) and "97 similar records suppressed" in later.getMessage()
    other = logging.LogRecord("aiokafka", logging.ERROR, "", 0, "another problem", None, None)
    assert limit.filter(other)


def test_records_about_partitions_are_limited_per_partition() -> None:
    """A restart that finds holes on many partitions logs every one of them, each still bounded."""
    import logging

    from riskpulse.logs import RateLimit

    limit = RateLimit(burst=2, period_s=60, clock=lambda: 0.0)

    def hole(partition: int) -> logging.LogRecord:
        r = logging.LogRecord("riskpulse.stream.passed_over", logging.WARNING, "", 0,
                              "the consumer passed over records of %s, offsets %d to %d", ("news", 1, 2), None)
        r.topic, r.partition = "news", partition
        return r

    assert [limit.filter(hole(p)) for p in range(8)] == [True] * 8
    assert [limit.filter(hole(3)) for _ in range(3)] == [True, False, False]


def test_handlers_installed_by_others_get_our_fields_redaction_and_json() -> None:
    from riskpulse.logs import RateLimit, take_over_handlers

    logger = logging.getLogger("riskpulse-test-takeover")
    foreign = logging.StreamHandler()
    foreign.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))  # as faust/mode install it
    logger.handlers[:] = [foreign]
    take_over_handlers(True, logger)
    line = foreign.format(record("gap on partition 0", first_missing=5, store_url="postgresql://rp:hunter2@db/rp"))
    out = json.loads(line)
    assert out["first_missing"] == 5 and "hunter2" not in line
    assert any(isinstance(f, RateLimit) for f in foreign.filters)
