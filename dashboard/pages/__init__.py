"""The dashboard's pages, one module per tab: each owns its layout (``tab()``) and its callbacks
(``register(app, ctx)``); component ids come from dashboard/ids.py, and what pages share (times,
cards, tables, the range) from dashboard/display.py. The shell (dashboard/app.py) puts them in
order and owns what spans them: the header, the banner, the address bar."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy.exc import SQLAlchemyError

from riskpulse.alerts.silences import Silences
from riskpulse.settings import Settings
from riskpulse.store.news import Store

log = logging.getLogger("riskpulse.dashboard.app")


@dataclass(frozen=True)
class PageContext:
    """What a page's callbacks read and act on."""

    settings: Settings
    store: Store
    engine: Any
    silences: Silences


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A store outage is a message on the page, not a broken dashboard."""
    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except SQLAlchemyError as exc:
            log.warning("store unavailable", extra={"error": str(exc)[:300]})
            return None
    return wrapper
