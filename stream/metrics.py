"""Prometheus metrics of the worker (served on its web port at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ITEMS_IN = Counter("riskpulse_items_in_total", "Records consumed", ["topic"])
ITEMS_OUT = Counter("riskpulse_items_out_total", "Records produced", ["topic"])
SENDS_CANCELLED = Counter("riskpulse_sends_cancelled_at_stop_total",
                          "Records still being sent when the worker stopped (their input is read again by the next owner)")
DLQ = Counter("riskpulse_dlq_total", "Records sent to news.dlq, by the stage they failed", ["stage"])
EVIDENCE_DROPPED = Counter("riskpulse_evidence_dropped_total",
                           "Items counted without their evidence rows: their window's value was at its size budget")
CLOCK_ADJUSTED = Counter("riskpulse_clock_adjusted_total", "Items whose published_at broke the event-time policy and were clamped")
DETECTOR_ERRORS = Counter("riskpulse_detector_errors_total", "Keys whose window the detector could not judge")
WATERMARK = Gauge("riskpulse_watermark_seconds", "Event time (Unix s) through which windows are closed")
SKIPPED = Counter("riskpulse_input_offsets_skipped_total", "Input offsets (news, and the scorer-to-aggregator topic) the consumer passed over that could not be "
                  "read again (deleted by retention; never scored; see stream/core/continuity.py)", ["topic", "partition"])
REREAD = Counter("riskpulse_input_offsets_reread_total", "Input records (news, and the scorer-to-aggregator topic) the consumer passed over, read on the "
                 "worker's own client and processed in place (nothing lost)", ["topic", "partition"])
UNSCORED = Counter("riskpulse_unscored_items_total", "Items whose sentiment the model cannot judge (a language it was not "
                   "trained on, or no text): counted apart in the trends, never as neutral", ["status"])
LATE = Counter("riskpulse_late_items_total", "Scored items whose window had already closed when they first arrived "
               "(not counted in trends; redeliveries after a restart are not late)")
CLIENT_RETRIES = Counter("riskpulse_kafka_client_retries_total", "Errors the Kafka client logged and retried itself "
                         "(shown as INFO, not ERROR), by error", ["error"])
CORRECTIONS = Counter("riskpulse_corrections_total", "Corrections (the same id again with changed content) the "
                      "counting stage took the previous revision out for")
CORRECTIONS_TOO_OLD = Counter("riskpulse_corrections_too_old_total", "Corrections of windows judged longer ago than the "
                              "correction horizon: the trend already published stands")
BATCH_SIZE = Histogram("riskpulse_batch_size", "Items per scoring micro-batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
MODEL_SECONDS = Histogram("riskpulse_model_seconds", "Model time per micro-batch",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
E2E_SECONDS = Histogram("riskpulse_e2e_seconds", "Broker time of a news record to publication of its news.scored record",
                        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

COMMIT_STUCK = Counter("riskpulse_commit_stuck_total", "Times a partition's records were processed past the group's "
                       "commit and the commit did not catch up with them in STALL_S (faust's commit bookkeeping; a restart "
                       "re-reads from the commit)", ["topic", "partition"])
BATCHES_ABANDONED = Counter("riskpulse_batches_abandoned_total", "Batches a rebalance overtook: they wrote no more "
                            "state and were read again from the group's commit by whoever holds their partitions now "
                            "(each rebalance abandons at most one per stage)", ["stage"])
LAG = Gauge("riskpulse_consumer_lag", "Records not yet processed, per input partition", ["topic", "partition"])
ALERTS = Counter("riskpulse_alerts_total", "Alert records published", ["severity", "status"])
WEBHOOKS = Counter("riskpulse_webhook_attempts_total", "Webhook delivery attempts by outcome", ["route", "outcome"])
INCIDENT_NOTIFICATIONS = Counter("riskpulse_incident_notifications_total",
                                 "Incident notifications put in the webhook outbox, by route and kind (change, reminder)",
                                 ["route", "kind"])


def exposition() -> tuple[bytes, str]:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(), CONTENT_TYPE_LATEST.split(";")[0]  # aiohttp sets the charset itself
