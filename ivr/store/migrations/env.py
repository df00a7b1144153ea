"""Alembic's entry: runs the revisions on the connection ivr/store/schema.py hands over (in its transaction)."""

from alembic import context

from ivr.store.schema import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
