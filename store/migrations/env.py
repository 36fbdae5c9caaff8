"""Alembic's entry: migrations run on the connection riskpulse.store.migrate hands over (one
connection, under the migration lock), against the one metadata of riskpulse.store.schema."""

from alembic import context

from riskpulse.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters tables by copying them
with context.begin_transaction():
    context.run_migrations()
