"""The README's first command, end to end: `riskpulse demo` on a machine with nothing set up.

It starts its own broker, a worker with the shipped model and the dashboard, replays the sample
hour and prints the alerts for the burst; Ctrl-C, or SIGTERM to it alone, stops it all. The labelled data is hidden, as
on a user's machine: nothing the demo does may need it.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from riskpulse.settings import SHIPPED_MODEL
from riskpulse.stream.local_broker import LocalBroker, free_ports
from tests.helpers import REPO

pytestmark = pytest.mark.integration  # its own broker


def test_the_demo_runs_the_whole_system_with_the_shipped_model_and_stops_cleanly(tmp_path: Path) -> None:
    kafka_port, worker_port, dashboard_port, ingest_port = free_ports(4)  # distinct: none is bound yet
    env = {**os.environ, "RISKPULSE_HOME": str(tmp_path), "RISKPULSE_DATA_DIR": str(tmp_path / "no-data"),
           "RISKPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}", "RISKPULSE_WORKER_WEB_PORT": str(worker_port),
           "RISKPULSE_DASHBOARD_PORT": str(dashboard_port), "RISKPULSE_INGEST_PORT": str(ingest_port)}
    env.pop("RISKPULSE_MODEL_DIR", None)
    env.pop("RISKPULSE_STORE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "riskpulse.cli", "demo", "--speed", "120"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    pump = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)  # type: ignore[union-attr]
    pump.start()

    def wait_for(fragment: str, timeout_s: float, also: str = "") -> str:
        """The first line, printed already or within ``timeout_s``, that holds ``fragment`` and ``also``."""
        for line in seen:
            if fragment in line and also in line:
                return line
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(line)
            if fragment in line and also in line:
                return line
        raise AssertionError(f"the demo never printed {fragment!r} {also!r}; it printed:\n{''.join(seen[-60:])}")

    try:
        wait_for("model ", 120, also=str(SHIPPED_MODEL))
        wait_for("dashboard: http://127.0.0.1:", 300)
        # the burst is a run of lawsuits and probes on Tesla: it fires the ticker's alert and its
        # topic's, in either order
        fired = wait_for("ALERT firing", 300, also="ticker TSLA")
        assert "negative news on ticker TSLA" in fired and "stories" in fired
        wait_for("ALERT firing", 120, also="topic Legal | Regulation")
        # its evidence is distinct stories (the burst is six, each carried by several outlets)
        after = seen[seen.index(fired) + 1:]
        evidence = [line for line in after[:next((i for i, x in enumerate(after) if not x.startswith("    ")), len(after))]]
        from riskpulse.stream.core.stories import story_tokens
        stories = [story_tokens(line.strip().split("  ", 1)[1].split("  [")[0]) for line in evidence]
        assert len(evidence) >= 2 and len(set(stories)) == len(stories), evidence
        assert any("copies" in line for line in evidence), evidence
        (REPO / "test-artifacts").mkdir(exist_ok=True)  # what the user saw, for the record (docs/stories.md)
        (REPO / "test-artifacts" / "demo-alert.txt").write_text("".join([fired] + evidence))
        try:  # the dashboard is up and asks for the analyst's login
            status = urllib.request.urlopen(f"http://127.0.0.1:{dashboard_port}/", timeout=10).status
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status in (200, 401)
        assert not (tmp_path / "model").exists()  # nothing trained
        assert not any("training the quick recipe" in line for line in seen)
        # stopped by `kill` or a service manager: SIGTERM to the demo alone (harsher than Ctrl-C,
        # which signals the whole group: here its worker and dashboard hear nothing from the OS)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(120) == 0
        pump.join(10)
        while not lines.empty():
            seen.append(lines.get())
        assert seen[-1].strip().endswith("stopped")  # after a progress bar's terminal codes
        # nothing a newcomer would read as a failure: an ERROR or WARNING they cannot act on teaches
        # them to ignore the ones that matter; the worker's and dashboard's own output (faust's
        # banner, client chatter) is in the log file the console names
        story = [line for line in seen if not line.startswith(("ALERT ", "    "))]  # an alert's own words may say WARNING
        alarming = [line for line in story if "ERROR" in line or "WARNING" in line or "Traceback" in line]
        assert not alarming, alarming
        assert any(f"log: {tmp_path / 'demo.log'}" in line for line in seen)
        assert "riskpulse" in (tmp_path / "demo.log").read_text(errors="replace")  # the worker's own output
        assert LocalBroker(tmp_path / "kafka", tmp_path).pid() is None  # the demo's broker is gone too
        for port, path in ((worker_port, "/readyz"), (dashboard_port, "/healthz")):  # and its worker and dashboard
            with pytest.raises(urllib.error.URLError) as gone:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2)
            assert not isinstance(gone.value, urllib.error.HTTPError), f"something still answers on {port}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        LocalBroker(tmp_path / "kafka", tmp_path).stop(kill=True)  # only if a failure left it running
