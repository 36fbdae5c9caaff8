"""A real PostgreSQL server for the tests: Debian's, started in a temporary folder on a free port.

initdb refuses to run as root, so as root the server runs as the ``postgres`` system user (the
Debian package creates it); anyone else runs it as themselves. Trust authentication on
127.0.0.1 only, for the test database; stopped (fast shutdown) and removed at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or ([shutil.which(name)] if shutil.which(name) else [])
    if not found:
        pytest.fail(f"PostgreSQL's {name} not found: apt-get install postgresql (bash scripts/install-system.sh)")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="riskpulse-pg-"))
        self.port = _free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres")

    def _run(self, *argv: str) -> None:
        done = subprocess.run([*self.as_user, *argv], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://riskpulse@127.0.0.1:{self.port}/riskpulse"

    def start(self) -> "LocalPostgres":
        data = self.root / "data"
        self._run(_bin("initdb"), "-D", str(data), "-U", "riskpulse", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._run(_bin("pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(f"host=127.0.0.1 port={self.port} user=riskpulse dbname=postgres",
                                     autocommit=True) as conn:
                    conn.execute("CREATE DATABASE riskpulse")
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def reset(self) -> None:
        """An empty database for the next test."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=riskpulse dbname=postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS riskpulse WITH (FORCE)")
            conn.execute("CREATE DATABASE riskpulse")

    def stop(self) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
