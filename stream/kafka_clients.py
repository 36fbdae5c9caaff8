"""Every Kafka client riskpulse makes, built in one place from the cluster's security settings.

The worker (faust, over aiokafka), the ingest endpoint (aiokafka), and the tools, readers and
admin calls (kafka-python) all connect through here, so a cluster that needs TLS or SASL
(Confluent Cloud, Amazon MSK, Aiven, Redpanda, self-managed brokers) takes one set of
``RISKPULSE_KAFKA_*`` settings (docs/kafka.md). Secrets stay ``SecretStr`` until the client
needs them and are never logged.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, NoBrokersAvailable

from riskpulse.settings import Settings, get_settings


class KafkaSettingsError(ValueError):
    """The Kafka security settings are incomplete or contradictory (fix the settings; no retry helps)."""


class KafkaUnreachable(RuntimeError):
    """No broker answered, or the cluster refused these credentials. ``cause``: ``authentication``,
    ``mechanism``, ``tls``, ``unreachable`` or ``unknown``."""

    cause: str = "unknown"


def bootstrap_servers(settings: Settings, bootstrap: str | None = None) -> list[str]:
    """``host:port[,host:port...]`` as a list; ``bootstrap`` (a command's --bootstrap) wins."""
    servers = [s.strip() for s in (bootstrap or settings.kafka_bootstrap).split(",") if s.strip()]
    if not servers:
        raise KafkaSettingsError("RISKPULSE_KAFKA_BOOTSTRAP is empty: give host:port[,host:port...]")
    return servers


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A verifying TLS context (the CA file given, else the system's CAs), with the client
    certificate for mTLS; None for plaintext protocols."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            raise KafkaSettingsError(f"RISKPULSE_{name.upper()} points at {path}, which is not a file")
    if (settings.kafka_ssl_certfile is None) != (settings.kafka_ssl_keyfile is None):
        raise KafkaSettingsError("mTLS needs both RISKPULSE_KAFKA_SSL_CERTFILE and RISKPULSE_KAFKA_SSL_KEYFILE")
    context = ssl.create_default_context(cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    if settings.kafka_ssl_certfile is not None:
        password = settings.kafka_ssl_key_password.get_secret_value() if settings.kafka_ssl_key_password else None
        context.load_cert_chain(str(settings.kafka_ssl_certfile), str(settings.kafka_ssl_keyfile), password)
    return context


def _sasl(settings: Settings) -> dict[str, Any]:
    if not settings.kafka_security_protocol.startswith("SASL_"):
        return {}
    if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
        raise KafkaSettingsError(f"{settings.kafka_security_protocol} needs RISKPULSE_KAFKA_SASL_USERNAME and "
                                 "RISKPULSE_KAFKA_SASL_PASSWORD")
    return {"sasl_mechanism": settings.kafka_sasl_mechanism, "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value()}


def client_config(settings: Settings | None = None, bootstrap: str | None = None) -> dict[str, Any]:
    """Connection settings in the names kafka-python and aiokafka share (``ssl_context`` included)."""
    settings = settings or get_settings()
    config: dict[str, Any] = {"bootstrap_servers": bootstrap_servers(settings, bootstrap),
                              "security_protocol": settings.kafka_security_protocol, **_sasl(settings)}
    context = ssl_context(settings)
    if context is not None:
        config["ssl_context"] = context
    return config


def faust_broker(settings: Settings) -> list[str]:
    return [f"kafka://{server}" for server in bootstrap_servers(settings)]


def faust_credentials(settings: Settings) -> Any:
    """faust's ``broker_credentials`` for the configured protocol (None: plaintext)."""
    import faust

    context = ssl_context(settings)
    if settings.kafka_security_protocol == "SSL":
        return faust.SSLCredentials(context)
    if settings.kafka_security_protocol.startswith("SASL_"):
        sasl = _sasl(settings)
        return faust.SASLCredentials(username=sasl["sasl_plain_username"], password=sasl["sasl_plain_password"],
                                     mechanism=sasl["sasl_mechanism"], ssl_context=context)
    return None


# what the client logged while it failed -> what failed and the settings that decide it
# (kafka-python raises "IncompatibleBrokerVersion" or "NoBrokersAvailable" whatever the cause;
# the cause is in its log lines)
_CAUSES = (
    (("authentication failed", "saslauthenticationfailed", "authenticationfailed"), "authentication",
     "the cluster refused the user name or password",
     ["RISKPULSE_KAFKA_SASL_USERNAME", "RISKPULSE_KAFKA_SASL_PASSWORD"]),
    (("unsupportedsaslmechanism", "mechanism"), "mechanism",
     "the cluster does not offer this SASL mechanism", ["RISKPULSE_KAFKA_SASL_MECHANISM"]),
    (("certificate_verify_failed", "certificate verify failed", "sslcertverificationerror", "hostname mismatch"), "tls",
     "the broker's TLS certificate is not trusted", ["RISKPULSE_KAFKA_SSL_CAFILE (the cluster's CA)"]),
    (("wrong version number", "sslerror", "ssl:", "unknown protocol", "record layer failure"), "tls",
     "TLS failed: the listener and the security protocol disagree", ["RISKPULSE_KAFKA_SECURITY_PROTOCOL"]),
    (("connection refused", "name or service not known", "nodename nor servname", "temporary failure in name",
      "timed out", "no route to host", "network is unreachable"), "unreachable",
     "no broker answered at that address", ["RISKPULSE_KAFKA_BOOTSTRAP"]),
)


class _Heard(logging.Handler):
    """The client's own log lines while it connects: they name the cause its exception hides."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a log line we cannot format tells nothing
            pass


def diagnose(text: str, sasl: bool) -> tuple[str, str, list[str]]:
    """(cause, what failed, the settings that decide it) from the client's words."""
    low = text.lower()
    for needles, cause, what, settings_ in _CAUSES:
        if cause == "mechanism" and not sasl:
            continue
        if any(n in low for n in needles):
            return cause, what, settings_
    if sasl and ("disconnected" in low or "connection reset" in low):  # a mechanism the broker does not speak
        return ("mechanism", "the broker closed the connection during the SASL handshake: most often a mechanism "
                "it does not offer", ["RISKPULSE_KAFKA_SASL_MECHANISM", "RISKPULSE_KAFKA_SECURITY_PROTOCOL"])
    return ("unknown", "no broker could be used", ["RISKPULSE_KAFKA_BOOTSTRAP", "RISKPULSE_KAFKA_SECURITY_PROTOCOL"])


def _explain(exc: Exception, config: dict[str, Any], heard: list[str] = ()) -> KafkaUnreachable:  # type: ignore[assignment]
    """What failed (authentication, the mechanism, TLS, the address) and the one or two settings
    that decide it, in the settings' own names."""
    where = f"Kafka at {','.join(config['bootstrap_servers'])} over {config['security_protocol']}"
    sasl = "sasl_mechanism" in config
    if sasl:
        where += f" as {config['sasl_plain_username']!r} ({config['sasl_mechanism']})"
    cause, what, check = diagnose(" | ".join(list(heard) + [f"{type(exc).__name__}: {exc}"]), sasl)
    error = KafkaUnreachable(f"cannot connect to {where}: {what}. Check {' and '.join(check)} "
                             f"(examples in docs/kafka.md). The client said: {type(exc).__name__}: {exc}")
    error.cause = cause
    return error


def _build(client: Any, *args: Any, settings: Settings | None, bootstrap: str | None, **extra: Any) -> Any:
    """One kafka-python client with the cluster's settings; a refusal says what failed and what to check."""
    config = client_config(settings, bootstrap)
    heard = _Heard()
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(heard)
    try:
        return client(*args, **config, **extra)
    except (KafkaError, NoBrokersAvailable, OSError) as exc:
        raise _explain(exc, config, heard.lines) from exc
    finally:
        kafka_log.removeHandler(heard)


def admin(settings: Settings | None = None, bootstrap: str | None = None, **extra: Any) -> KafkaAdminClient:
    return _build(KafkaAdminClient, settings=settings, bootstrap=bootstrap, **extra)


def consumer(*topics: str, settings: Settings | None = None, bootstrap: str | None = None,
             **extra: Any) -> KafkaConsumer:
    return _build(KafkaConsumer, *topics, settings=settings, bootstrap=bootstrap, **extra)


def producer(settings: Settings | None = None, bootstrap: str | None = None, **extra: Any) -> KafkaProducer:
    return _build(KafkaProducer, settings=settings, bootstrap=bootstrap, **extra)
