"""One settings object for every riskpulse service.

Values come from environment variables prefixed ``RISKPULSE_`` and, if
``RISKPULSE_CONFIG_FILE`` names one, from a ``.env``-style file. Defaults are the embedded
single-machine setup the demo runs; every field is documented in docs/configuration.md.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from riskpulse.choices import Backend

HOME = Path(os.environ.get("RISKPULSE_HOME", Path.home() / ".riskpulse"))
# the default model, packed (models/pack.py) and installed with the package: scripts/ship-model.sh
SHIPPED_MODEL = Path(__file__).resolve().parent / "shipped_model"


def _default_data_dir() -> Path:
    """The labelled data sets live in ``shared/data`` beside the checkout, never in the repo."""
    here = Path(__file__).resolve().parents[1]
    return here.parent / "shared" / "data"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RISKPULSE_",
        env_file=os.environ.get("RISKPULSE_CONFIG_FILE"),
        extra="ignore",
        frozen=True,
    )

    home: Path = HOME
    kafka_bootstrap: str = "127.0.0.1:9092"  # host:port[,host:port...]
    # the cluster's security (Confluent client names): see docs/kafka.md for Confluent Cloud, MSK, TLS
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None  # PEM; the system's CAs when unset (public clouds)
    kafka_ssl_certfile: Path | None = None  # PEM client certificate (mTLS)
    kafka_ssl_keyfile: Path | None = None  # PEM key of that certificate
    kafka_ssl_key_password: SecretStr | None = None
    kafka_partitions: int = Field(4, ge=1)
    topic_prefix: str = ""  # e.g. "staging." to run several pipelines on one cluster
    app_id: str = "riskpulse"  # Faust consumer group and changelog prefix
    kafka_replication: int = Field(1, ge=1)
    # off for clusters whose ACLs forbid creating topics: `riskpulse topics apply` once, as an admin
    kafka_create_topics: bool = True
    store_url: str = f"sqlite:///{HOME / 'riskpulse.db'}"
    # off where schema changes are a DBA's step: `riskpulse store upgrade`, then the services
    # check the store is at their revision and refuse to start on another
    store_migrate: bool = True
    # RISKPULSE_MODEL_DIR; else a model trained into RISKPULSE_HOME/model; else the shipped one
    model_dir: Path = Field(None, validate_default=True)  # type: ignore[assignment]
    data_dir: Path = Field(default_factory=_default_data_dir)
    alert_rules: Path | None = None

    backend: Backend = "auto"
    max_length: int = Field(64, ge=8, le=512)
    batch_max_size: int = Field(64, ge=1)
    batch_max_wait_ms: int = Field(50, ge=0)
    ort_spin: bool = False  # busy-waiting threads (ONNX Runtime, and torch's OpenMP); off in the worker, which shares its cores
    model_threads: int | None = Field(None, ge=1)  # ONNX Runtime's threads per model call; None: one per core
    torch_compile: bool = True  # torch-bf16: compile with TorchInductor at start (needs g++), else eager

    window_s: int = Field(60, ge=1)
    lateness_s: int = Field(10, ge=0)
    idle_s: float = Field(5.0, gt=0)
    dedupe_horizon_s: int = Field(86_400, ge=0)
    # a correction of an item whose window was judged longer ago than this changes no trend
    # (the judges keep judged windows' counters this long: stream/core/merge.py)
    correction_horizon_s: int = Field(6 * 3600, ge=0)
    # event-time policy (stream/core/event_time.py): an item dated beyond these bounds is counted
    # at its broker timestamp and flagged ("clamp"), or dead-lettered ("dead-letter")
    max_clock_skew_s: float = Field(300.0, ge=0)
    max_event_age_days: float = Field(3650.0, gt=0)
    clock_policy: Literal["clamp", "dead-letter"] = "clamp"
    detector_key_ttl_days: float = Field(7.0, gt=0)  # baselines of keys silent this long are dropped
    watchlist: Path | None = None

    webhook_retry_base_s: float = Field(5.0, gt=0)  # first retry after ~this; doubles per attempt
    webhook_retry_cap_s: float = Field(3600.0, gt=0)
    webhook_max_attempts: int = Field(20, ge=1)

    stall_s: float = Field(45.0, gt=0)  # restart a worker whose partition has data but no progress
    retention_days: int = Field(30, ge=1)
    worker_web_port: int = 6066
    worker_web_host: str = "127.0.0.1"  # 0.0.0.0 in containers, so Prometheus can scrape /metrics
    dashboard_port: int = 8050
    # the dashboard's address as webhook receivers reach it (https://riskpulse.example.com): alerts
    # then carry a link to their page; none: no links
    dashboard_url: str | None = None
    dashboard_user: str = "analyst"
    dashboard_password: SecretStr = SecretStr("riskpulse")  # demo only; prefer the hash below
    dashboard_password_hash: SecretStr | None = None  # `riskpulse dashboard --hash-password` prints one
    dashboard_refresh_s: float = Field(5.0, gt=0)
    dashboard_session_hours: float = Field(12.0, gt=0)  # a sign-in lasts this long (a shift)
    dashboard_secure_cookie: bool = False  # true behind TLS: the session cookie never travels in clear
    # single sign-on behind a proxy (oauth2-proxy and the like): the header carrying the signed-in
    # user's name, believed only from the proxies' addresses (CIDRs); users the store does not know
    # get the default role. None: no SSO, the login page only
    dashboard_proxy_header: str | None = None
    dashboard_trusted_proxies: list[str] = ["127.0.0.1/32", "::1/128"]
    dashboard_proxy_default_role: Literal["viewer", "analyst", "admin"] = "viewer"
    ingest_token: SecretStr | None = None
    ingest_port: int = 8088
    log_json: bool = False
    # records on news.scored, trends and alerts carry their event time as the Kafka timestamp
    # (published_at; a window's end), Kafka Streams' convention. Off by default: with time-based
    # retention the broker would delete a replay of older news as it lands (docs/kafka.md)
    kafka_event_time_timestamps: bool = False


    @field_validator("model_dir", mode="before")
    @classmethod
    def _trained_or_shipped(cls, value: object, info: ValidationInfo) -> object:
        if value is not None:
            return value
        trained = Path(info.data.get("home", HOME)) / "model"
        return trained if (trained / "riskpulse.json").exists() else SHIPPED_MODEL

    @property
    def train_out_dir(self) -> Path:
        """Where `riskpulse train` and `export` write by default: never into the shipped model."""
        return self.home / "model" if self.model_dir == SHIPPED_MODEL else self.model_dir


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
