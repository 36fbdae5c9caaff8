"""A real single-node Apache Kafka (KRaft) broker on 127.0.0.1, from Maven Central jars.

Used by ``riskpulse kafka up|down|status``, by the demo and by the test suite's broker
fixture, so the tests run against exactly what users run. No Docker: the machine's Java 17
runs ``kafka.Kafka`` from jars that Maven resolves once and caches.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

POM = Path(__file__).with_name("broker") / "pom.xml"
READY_LINE = "Kafka Server started"


class BrokerError(RuntimeError):
    """The local broker could not be provisioned, started or stopped."""


def free_port(exclude: Iterable[int] = ()) -> int:
    """A port nothing listens on now, other than ``exclude``: ports chosen but not bound yet (the
    broker's own port, when its controller's is chosen) would otherwise be handed out twice."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in set(exclude):
            return port


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports nothing listens on now (all held open while they are chosen)."""
    held = [socket.socket() for _ in range(n)]
    try:
        for s in held:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in held]
    finally:
        for s in held:
            s.close()


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64 that never starts with "-".

    Kafka's own ``Uuid.randomUuid`` skips such ids too: the storage tool's argument parser
    reads ``-t -abc...`` as a missing value and refuses to format (about 1 start in 64 failed so).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def resolve_jars(cache_dir: Path) -> Path:
    """Copy the broker's runtime jars into ``cache_dir/libs`` once; later calls are free."""
    libs = cache_dir / "libs"
    marker = libs / ".complete"
    if marker.exists() and marker.read_text() == POM.read_text():
        return libs
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise BrokerError("Java 17 and Maven are needed to run the local broker: install "
                          "openjdk-17-jre-headless and maven, or point RISKPULSE_KAFKA_BOOTSTRAP "
                          "at an existing cluster")
    tmp = cache_dir / "libs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log.info("resolving Kafka broker jars with Maven into %s (first use only)", libs)
    cmd = ["mvn", "-B", "-q", "-f", str(POM),
           "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
           "-DincludeScope=runtime", f"-DoutputDirectory={tmp}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BrokerError(f"Maven could not resolve the Kafka jars:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    marker.write_text(POM.read_text())
    return libs


LOG4J = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
"""


@dataclass
class SecureListener:
    """A second listener with TLS and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), as production
    clusters have: ``keystore`` is a PKCS12 file with the broker's key and certificate, ``users``
    the SASL users and their passwords (SCRAM credentials are written when storage is formatted)."""

    keystore: Path
    keystore_password: str
    users: dict[str, str]
    port: int = 0


@dataclass
class LocalBroker:
    """One broker process. ``state_dir`` holds config, data, logs and a JSON state file."""

    state_dir: Path
    cache_dir: Path
    port: int = 0
    controller_port: int = 0
    heap: str = "512m"
    process: subprocess.Popen[bytes] | None = None
    secure: SecureListener | None = None

    @property
    def secure_bootstrap(self) -> str:
        assert self.secure is not None, "no secure listener configured"
        return f"127.0.0.1:{self.secure.port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "broker.json"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / "server.log"

    def _write_config(self) -> Path:
        data = self.state_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "1000",
            "log.cleaner.dedupe.buffer.size": "33554432",
            "auto.create.topics.enable": "false",
        }
        if self.secure is not None:
            props.update(self._secure_props(self.secure))
        path = self.state_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.state_dir / "log4j2.properties").write_text(LOG4J)
        return path

    def _secure_props(self, secure: SecureListener) -> dict[str, str]:
        listener = f"SASL_SSL://127.0.0.1:{secure.port}"
        plain_users = " ".join(f'user_{name}="{password}"' for name, password in secure.users.items())
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},{listener},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},{listener}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_ssl.plain.sasl.jaas.config":
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(secure.keystore),
            "ssl.keystore.password": secure.keystore_password,
            "ssl.key.password": secure.keystore_password,
        }

    def _scram_args(self) -> list[str]:
        if self.secure is None:
            return []
        return [arg for name, password in self.secure.users.items() for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
                for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")]

    def _java(self, libs: Path, *args: str) -> list[str]:
        return ["java", f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={self.state_dir / 'logs'}",
                "-cp", f"{libs}/*", *args]

    def start(self, timeout_s: float = 90.0) -> None:
        """Format storage (first start only) and start; returns once the broker serves requests."""
        libs = resolve_jars(self.cache_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        previous = self._read_state()
        if previous:  # a restart keeps ports and the cluster id so data and clients stay valid
            self.port = self.port or previous["port"]
            self.controller_port = self.controller_port or previous["controller_port"]
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port(exclude={self.port})
        if self.secure is not None:
            kept = int((previous or {}).get("secure_port") or 0)
            self.secure.port = self.secure.port or kept or free_port(exclude={self.port, self.controller_port})
        cluster_id = previous.get("cluster_id") if previous else None
        cluster_id = cluster_id or new_cluster_id()
        config = self._write_config()
        fmt = subprocess.run(self._java(libs, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                                        "-c", str(config), "--ignore-formatted", *self._scram_args()),
                             capture_output=True, text=True)
        if fmt.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{fmt.stdout}{fmt.stderr}")
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        out = open(self.state_dir / "logs" / "stdout.log", "ab")
        self.process = subprocess.Popen(self._java(libs, "kafka.Kafka", str(config)), stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.state_file.write_text(json.dumps({"pid": self.process.pid, "port": self.port,
                                               "controller_port": self.controller_port,
                                               "secure_port": self.secure.port if self.secure else None,
                                               "cluster_id": cluster_id}))
        self._wait_ready(offset, timeout_s)

    def _wait_ready(self, log_offset: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerError(f"the Kafka broker exited with code {self.process.returncode}:\n{self.log_tail()}")
            if self.log_file.exists():
                with open(self.log_file, "rb") as fh:
                    fh.seek(log_offset)
                    if READY_LINE.encode() in fh.read():
                        break
            time.sleep(0.2)
        else:
            raise BrokerError(f"the Kafka broker did not become ready in {timeout_s:.0f}s:\n{self.log_tail()}")
        probe_bootstrap(self.bootstrap, timeout_s=max(5.0, deadline - time.monotonic()))
        log.info("kafka broker ready on %s", self.bootstrap)

    def log_tail(self, n: int = 40) -> str:
        lines: list[str] = []
        for f in (self.log_file, self.state_dir / "logs" / "stdout.log"):
            if f.exists():
                lines += f.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(lines)

    def _read_state(self) -> dict[str, int | str] | None:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def running_port(self) -> int | None:
        """The port of the broker this state folder last started, if its state file says."""
        state = self._read_state()
        return int(state["port"]) if state and "port" in state else None

    def pid(self) -> int | None:
        state = self._read_state()
        if not state:
            return None
        pid = int(state["pid"])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def stop(self, timeout_s: float = 20.0, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL when ``kill``), then SIGKILL after ``timeout_s``."""
        pid = self.process.pid if self.process is not None else self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None:
                if self.process.poll() is not None:
                    break
            else:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
            time.sleep(0.2)
        else:
            os.kill(pid, signal.SIGKILL)
            if self.process is not None:
                self.process.wait(10)
        self.process = None


def probe_bootstrap(bootstrap: str, timeout_s: float = 10.0) -> None:
    """One real request (list topics) so 'ready' means the broker answers, not that a port is open."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except (KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.5)
    raise BrokerError(f"no Kafka broker answers on {bootstrap}: {last}")
