"""Alembic migrations of the Sanad schema (applied automatically by storage.db.migrate)."""
