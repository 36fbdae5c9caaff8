"""One client configuration for every Kafka client: what each security setting turns into, and
settings that cannot work refused with the name of what to fix."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from riskpulse.settings import Settings
from riskpulse.stream.kafka_clients import KafkaSettingsError, bootstrap_servers, client_config, faust_broker, faust_credentials


def test_plaintext_by_default_and_a_bootstrap_list_everywhere() -> None:
    s = Settings(kafka_bootstrap=" b1:9092, b2:9092 ,")
    assert client_config(s) == {"bootstrap_servers": ["b1:9092", "b2:9092"], "security_protocol": "PLAINTEXT"}
    assert faust_broker(s) == ["kafka://b1:9092", "kafka://b2:9092"]
    assert faust_credentials(s) is None
    assert bootstrap_servers(s, "x:1") == ["x:1"]  # a command's --bootstrap wins
    with pytest.raises(KafkaSettingsError, match="RISKPULSE_KAFKA_BOOTSTRAP"):
        bootstrap_servers(Settings(kafka_bootstrap=" , "))


def test_sasl_ssl_with_the_system_cas_as_on_public_clouds() -> None:
    s = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="PLAIN", kafka_sasl_username="key",
                 kafka_sasl_password="secret")
    config = client_config(s)
    assert config["sasl_plain_password"] == "secret" and config["sasl_mechanism"] == "PLAIN"
    assert isinstance(config["ssl_context"], ssl.SSLContext)
    assert config["ssl_context"].verify_mode == ssl.CERT_REQUIRED and config["ssl_context"].check_hostname
    credentials = faust_credentials(s)
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "PLAIN"
    assert "secret" not in repr(s)


def test_sasl_without_credentials_is_refused_by_name() -> None:
    with pytest.raises(KafkaSettingsError, match="RISKPULSE_KAFKA_SASL_USERNAME and RISKPULSE_KAFKA_SASL_PASSWORD"):
        client_config(Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u"))


def test_tls_files_that_are_missing_or_half_a_pair_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KafkaSettingsError, match="RISKPULSE_KAFKA_SSL_CAFILE"):
        client_config(Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "nope.pem"))
    cert = tmp_path / "client.pem"
    cert.write_text("x")
    with pytest.raises(KafkaSettingsError, match="both"):
        client_config(Settings(kafka_security_protocol="SSL", kafka_ssl_certfile=cert))


def test_plaintext_ignores_tls_and_sasl_settings() -> None:
    s = Settings(kafka_sasl_username="u", kafka_sasl_password="p", kafka_ssl_cafile=Path("/nonexistent"))
    assert client_config(s) == {"bootstrap_servers": ["127.0.0.1:9092"], "security_protocol": "PLAINTEXT"}


def test_a_refusal_names_what_failed_and_the_settings_that_decide_it() -> None:
    """kafka-python raises IncompatibleBrokerVersion or NoBrokersAvailable whatever went wrong;
    its log lines say what did (seen against a SASL_SSL cluster: a wrong password, a mechanism
    the broker does not offer, a private CA, a wrong port)."""
    from riskpulse.stream.kafka_clients import diagnose

    said = {
        "authentication": "<BrokerConnection ...>: Authentication failed for user svc-riskpulse: "
                          "SaslAuthenticationFailedError: Authentication failed during authentication due to "
                          "invalid credentials with SASL mechanism SCRAM-SHA-512",
        "mechanism": "<BrokerConnection ...>: socket disconnected | IncompatibleBrokerVersion: Kafka broker does not "
                     "support the 'MetadataRequest_v0' Kafka protocol.",
        "tls": "SSL: CERTIFICATE_VERIFY_FAILED certificate verify failed: unable to get local issuer certificate",
        "unreachable": "connect attempt to <BrokerConnection ...> returned error 111. Disconnecting. "
                       "[Errno 111] Connection refused | NoBrokersAvailable",
    }
    for cause, text in said.items():
        found, what, settings = diagnose(text, sasl=True)
        assert found == cause, (cause, what)
        assert 1 <= len(settings) <= 2
    assert diagnose(said["authentication"], sasl=True)[2] == ["RISKPULSE_KAFKA_SASL_USERNAME",
                                                              "RISKPULSE_KAFKA_SASL_PASSWORD"]
    assert diagnose("[Errno 111] Connection refused", sasl=False)[2] == ["RISKPULSE_KAFKA_BOOTSTRAP"]
