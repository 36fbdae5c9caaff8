"""An engine on the store, migrated to the current schema before anyone uses it.

SQLite (WAL) is the embedded default, PostgreSQL the deployed one (``RISKPULSE_STORE_URL``).
Every process that opens the store (worker, dashboard, webhook tools) migrates it first, one at a
time: a PostgreSQL advisory lock, or on SQLite a lock file beside the database, so a worker and a
dashboard starting together never race to create the same table. Where schema changes are a
DBA's step, ``STORE_MIGRATE=false``: ``riskpulse store upgrade`` migrates, and the services only
check that the store is at their revision, refusing to start on another.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from pathlib import Path
from typing import Any, Iterator

from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import BigInteger, Connection, Index, MetaData, Table, create_engine, event, inspect, text
from sqlalchemy.engine import Engine

from .schema import metadata, trends

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"  # the schema riskpulse had when migrations began (stores made before are adopted at it)
_PG_LOCK = 0x72697370  # pg_advisory_lock key: "risp"


class StoreNotMigrated(RuntimeError):
    """STORE_MIGRATE=false and the store is not at this riskpulse's schema revision."""


def create_store_engine(url: str, migrate: bool = True) -> Engine:
    """An engine on ``url``, migrated, or with ``migrate`` false (the STORE_MIGRATE setting, passed
    by each service) checked to be at this riskpulse's revision."""
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn: Any, _: Any) -> None:  # WAL: the dashboard reads while the sink writes
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()
    if migrate:
        upgrade(engine)
    else:
        check_revision(engine)
    return engine


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config(None)).get_current_head())


def check_revision(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise StoreNotMigrated(f"the store {engine.url.render_as_string(hide_password=True)} is at schema revision "
                               f"{current or 'none'}, this riskpulse needs {head}: run `riskpulse store upgrade` as a "
                               "user allowed to change the schema, or set RISKPULSE_STORE_MIGRATE=true")


def alembic_config(connection: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the store to the newest migration; a store made before migrations is adopted first."""
    with _migration_lock(engine), engine.begin() as conn:
        tables = set(inspect(conn).get_table_names())
        config = alembic_config(conn)
        if "alembic_version" not in tables and tables & set(metadata.tables):
            _adopt(conn, tables)
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")


def _adopt(conn: Connection, tables: set[str]) -> None:
    """A store written by riskpulse before its migrations: complete it to the baseline.

    Those versions created their tables themselves (the webhook ones only once a webhook was
    configured) and added one column later by hand: ``trends.window_ts``, with its covering index."""
    log.warning("adopting a store made before migrations: completing it to the baseline schema",
                extra={"tables": sorted(tables)})
    baseline = _baseline_metadata()
    baseline.create_all(conn, tables=[t for name, t in baseline.tables.items() if name not in tables])
    if "window_ts" not in {c["name"] for c in inspect(conn).get_columns("trends")}:
        epoch = ("CAST(EXTRACT(EPOCH FROM window_start) AS BIGINT)" if conn.dialect.name == "postgresql"
                 else "CAST(strftime('%s', window_start) AS INTEGER)")
        conn.execute(text("ALTER TABLE trends ADD COLUMN window_ts BIGINT"))
        conn.execute(text(f"UPDATE trends SET window_ts = {epoch}"))
        operations = Operations(MigrationContext.configure(conn))
        with operations.batch_alter_table("trends") as batch:  # SQLite: by copying the table
            batch.alter_column("window_ts", existing_type=BigInteger(), nullable=False)
    for index in trends.indexes:
        index.create(conn, checkfirst=True)


# what the migrations after the baseline added (a table: None; columns of a table), so that an
# adopted store is completed to the baseline only, and those migrations then add them as usual
AFTER_BASELINE: dict[str, tuple[str, ...] | None] = {"silences": None,  # 0002
                                                     "webhook_outbox": ("key_type", "key", "severity"),
                                                     "users": None,  # 0003
                                                     "trend_buckets": None,  # 0004
                                                     "scored_news": ("story_id", "story_copies", "story_sources", "lang",
                                                                     "sentiment_status",  # 0005
                                                                     "revision"),  # 0006
                                                     "trends": ("stories", "negative_stories", "unscored"),  # 0005
                                                     "news_revisions": None,  # 0006
                                                     "incident_notices": None}  # 0007


def _baseline_metadata() -> MetaData:
    """store/schema.py as it was at the baseline revision."""
    frozen = MetaData()
    for name, table in metadata.tables.items():
        later = AFTER_BASELINE.get(name, ())
        if later is None:
            continue
        copy = Table(name, frozen, *(c._copy() for c in table.columns if c.name not in later))
        for index in table.indexes:
            if all(c.name in copy.c for c in index.columns):
                Index(index.name, *(copy.c[c.name] for c in index.columns), unique=index.unique)
    return frozen


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK})
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    try:
        lock = open(Path(database).with_name(Path(database).name + ".migrate-lock"), "a")
    except OSError:  # no such folder, or read-only: connecting fails too, with SQLAlchemy's error
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
