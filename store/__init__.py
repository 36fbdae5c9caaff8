"""The store: every table under one metadata (schema.py), its migrations (Alembic, migrations/),
the engine that applies them (engine.py), and the writes the stream's sinks make (news.py)."""
