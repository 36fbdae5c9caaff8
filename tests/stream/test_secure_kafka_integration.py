"""riskpulse against a cluster that wants TLS and SASL, as production clusters do.

The local broker gets a second listener, SASL_SSL with PLAIN and SCRAM users (SCRAM credentials
written by Kafka's own storage tool), and a certificate made here with the JDK's keytool. The
worker, replay, ingest and the tools connect through it with RISKPULSE_KAFKA_* settings; the
test reads the results back through the broker's plaintext listener.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from riskpulse.settings import Settings
from riskpulse.stream import kafka_clients
from riskpulse.stream.local_broker import LocalBroker, SecureListener, free_port
from riskpulse.records import TOPIC_NEWS, TOPIC_SCORED
from riskpulse.stream.topics import ensure_topics
from tests.helpers import REPO, Worker, consume, worker_env

pytestmark = pytest.mark.integration

USER, PASSWORD = "riskpulse-app", "s3cret-scram-pass"
STOREPASS = "broker-keystore-pass"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed broker certificate for 127.0.0.1 (PKCS12 keystore) and its PEM for clients."""
    keystore, pem = folder / "broker.p12", folder / "ca.pem"
    subprocess.run(["keytool", "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
                    "-validity", "7", "-dname", "CN=127.0.0.1", "-ext", "SAN=IP:127.0.0.1,DNS:localhost",
                    "-ext", "BC=ca:true", "-keystore", str(keystore), "-storetype", "PKCS12",
                    "-storepass", STOREPASS, "-keypass", STOREPASS], check=True, capture_output=True)
    subprocess.run(["keytool", "-exportcert", "-rfc", "-alias", "broker", "-keystore", str(keystore),
                    "-storepass", STOREPASS, "-file", str(pem)], check=True, capture_output=True)
    return keystore, pem


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalBroker, Path]]:
    folder = tmp_path_factory.mktemp("secure-kafka")
    keystore, ca = make_certificate(folder)
    broker = LocalBroker(state_dir=folder / "broker", cache_dir=Path.home() / ".cache" / "riskpulse" / "kafka",
                         secure=SecureListener(keystore, STOREPASS, {USER: PASSWORD}))
    broker.start()
    try:
        yield broker, ca
    finally:
        broker.stop()


def secure_env(broker: LocalBroker, ca: Path, mechanism: str = "SCRAM-SHA-512", password: str = PASSWORD) -> dict[str, str]:
    return {"RISKPULSE_KAFKA_BOOTSTRAP": broker.secure_bootstrap, "RISKPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "RISKPULSE_KAFKA_SASL_MECHANISM": mechanism, "RISKPULSE_KAFKA_SASL_USERNAME": USER,
            "RISKPULSE_KAFKA_SASL_PASSWORD": password, "RISKPULSE_KAFKA_SSL_CAFILE": str(ca)}


def secure_settings(broker: LocalBroker, ca: Path, mechanism: str, prefix: str, password: str = PASSWORD) -> Settings:
    return Settings(kafka_bootstrap=broker.secure_bootstrap, kafka_security_protocol="SASL_SSL",
                    kafka_sasl_mechanism=mechanism, kafka_sasl_username=USER, kafka_sasl_password=password,
                    kafka_ssl_cafile=ca, topic_prefix=prefix)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_the_tools_connect_with_each_sasl_mechanism(secure_kafka: Any, mechanism: str) -> None:
    broker, ca = secure_kafka
    prefix = f"t{uuid.uuid4().hex[:6]}."
    settings = secure_settings(broker, ca, mechanism, prefix)
    assert prefix + TOPIC_NEWS in ensure_topics(settings)
    producer = kafka_clients.producer(settings)
    try:
        producer.send(prefix + TOPIC_NEWS, value=json.dumps({"headline": mechanism}).encode()).get(timeout=30)
    finally:
        producer.close()
    read = consume(broker.bootstrap, prefix + TOPIC_NEWS, lambda r: len(r) >= 1)  # back through plaintext
    assert read[0]["headline"] == mechanism
    reader = kafka_clients.consumer(prefix + TOPIC_NEWS, settings=settings, auto_offset_reset="earliest",
                                    consumer_timeout_ms=10_000)
    try:
        assert [json.loads(m.value)["headline"] for m in reader] == [mechanism]
    finally:
        reader.close()


def test_a_wrong_password_fails_at_once_and_says_what_to_check(secure_kafka: Any) -> None:
    broker, ca = secure_kafka
    settings = secure_settings(broker, ca, "SCRAM-SHA-256", "wrong.", password="not-the-password")
    with pytest.raises(kafka_clients.KafkaUnreachable) as refused:
        ensure_topics(settings)
    message = str(refused.value)
    assert USER in message and "SCRAM-SHA-256" in message and "RISKPULSE_KAFKA_SASL" in message
    # what failed, and the two settings that decide it (not six to try, nor "incompatible broker version")
    assert refused.value.cause == "authentication" and "refused the user name or password" in message
    assert "Check RISKPULSE_KAFKA_SASL_USERNAME and RISKPULSE_KAFKA_SASL_PASSWORD" in message
    assert "not-the-password" not in message and PASSWORD not in message
    for command in (["replay", str(REPO / "README.md")], ["worker"]):  # the worker: before its supervisor starts
        out = subprocess.run([sys.executable, "-m", "riskpulse.cli", *command], cwd=REPO, capture_output=True,
                             text=True, timeout=120, env={**os.environ, **secure_env(broker, ca, password="not-the-password")})
        assert out.returncode == 2, out.stderr
        assert "RISKPULSE_KAFKA_SASL_PASSWORD" in out.stderr and "not-the-password" not in out.stderr + out.stdout


def test_the_worker_replay_and_ingest_run_over_sasl_ssl(secure_kafka: Any, tmp_path: Path, tiny_model: Path) -> None:
    broker, ca = secure_kafka
    name = "secure"
    env = {**worker_env(tmp_path / "w", broker.secure_bootstrap, tiny_model, name), **secure_env(broker, ca)}
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.start()  # inside: the finally stops it even if it never gets ready
        feed = tmp_path / "feed.jsonl"
        items = [{"id": f"r-{i}", "headline": f"Lender shares slide on capital worries #{i}",
                  "published_at": "2026-11-30T09:00:00Z"} for i in range(20)]
        feed.write_text("".join(json.dumps(i) + "\n" for i in items))
        out = subprocess.run([sys.executable, "-m", "riskpulse.cli", "replay", str(feed), "--speed", "max"],
                             cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        port = free_port()
        ingest = subprocess.Popen([sys.executable, "-m", "riskpulse.cli", "ingest", "--port", str(port)], cwd=REPO,
                                  env={**os.environ, **env, "RISKPULSE_INGEST_TOKEN": "t0ken"},
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    posted = httpx.post(f"http://127.0.0.1:{port}/v1/news", headers={"Authorization": "Bearer t0ken"},
                                        json={"id": "i-1", "headline": "Regulator fines bank over reporting"})
                    break
                except httpx.HTTPError:
                    assert ingest.poll() is None and time.monotonic() < deadline, (
                        ingest.stdout.read().decode() if ingest.stdout else "")
                    time.sleep(0.3)
            assert posted.status_code == 200 and posted.json()["accepted"] == ["i-1"], posted.text
        finally:
            ingest.terminate()
            ingest.wait(30)
        wanted = {i["id"] for i in items} | {"i-1"}
        scored = consume(broker.bootstrap, f"{name}.{TOPIC_SCORED}", lambda r: {x["id"] for x in r} >= wanted)
        assert {x["id"] for x in scored} == wanted
        assert worker.restarts() == 0
    finally:
        worker.stop()
