"""The worker's stages as plain code: each reads a batch of its input in offset order, with no
holes, and writes its outputs through a port (``ports.Outputs``). No stage imports faust (an
import-linter contract in pyproject.toml says so): stream/runtime/ owns faust and drives them,
and a test, a backtest or a benchmark can drive them without Kafka.

    score.py   news -> validation, event-time policy, the model -> the scored-by-story topic
    count.py   scored-by-story -> dedupe, news.scored, event-time windows -> the windows topic
    judge.py   windows -> merged counters, the detector -> trends, alerts
    sinks.py   news.scored, trends, alerts -> the store (and the webhook outbox)
"""
