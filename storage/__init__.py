"""Persistence: SQLModel tables, the database engine and the queries the handlers need."""
