"""The faust-streaming, aiokafka and mode-streaming releases the runtime's repairs were written and
tested against.

Every repair in this package reaches into their private state (docs/stream.md, "Repairs behind
the runtime seam", lists each with the upstream issue it works around). A renamed field would
degrade a repair quietly, and an upstream fix would stack its correction on ours, so the worker
refuses to start on other releases with a message that says what to do.
"""

from __future__ import annotations

from importlib import metadata

# mode-streaming: the hand-over repair (handover.py) stands in for its Service.wait_first race
PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}

# what proves the repairs on a new release: the unit tests run them on faust's own fields, the
# loops provoke each failure against a real broker
UPGRADE_TESTS = ("tests/stream/test_continuity.py", "tests/stream/test_commits.py", "tests/stream/test_worker_app.py",
                 "tests/stream/test_handover.py", "tests/stream/test_driver.py", "tests/stream/test_livelock.py",
                 "tests/stream/test_pipeline_integration.py", "tests/stream/test_broker_restart_integration.py")


class UnsupportedRelease(RuntimeError):
    """The installed faust-streaming, aiokafka or mode-streaming is not the release the runtime's repairs know."""


def check_pinned(installed: dict[str, str] | None = None) -> None:
    """Raise :class:`UnsupportedRelease` unless the pinned releases are installed."""
    if installed is None:
        installed = {}
        for name in PINNED:
            try:
                installed[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                installed[name] = "not installed"
    wrong = {name: installed.get(name) for name, want in PINNED.items() if installed.get(name) != want}
    if wrong:
        found = ", ".join(f"{name} {version} (want {PINNED[name]})" for name, version in wrong.items())
        raise UnsupportedRelease(
            f"riskpulse's stream runtime repairs faust-streaming, aiokafka and mode-streaming internals and knows only "
            f"{', '.join(f'{n}=={v}' for n, v in PINNED.items())}; found {found}. Install the pinned "
            f"releases (make install, from requirements/*.lock), or, to move to a new release, update "
            f"PINNED in stream/runtime/versions.py and run {' '.join(UPGRADE_TESTS)} and the reliability "
            f"loops of docs/stream.md on it first.")
