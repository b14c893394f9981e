"""Persistence: engines, ORM tables and migrations."""
