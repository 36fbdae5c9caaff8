"""Spike detection on trends and alert delivery (Kafka topic, signed webhooks)."""
