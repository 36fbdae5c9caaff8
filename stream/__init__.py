"""The streaming pipeline: Faust agents, Kafka plumbing and the plain streaming core (stream/core)."""
