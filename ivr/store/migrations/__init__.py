"""Alembic revisions of the ivr schema; run them with `ivr db upgrade` (see ivr/database.py)."""
