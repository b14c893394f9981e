"""A project's open event streams counted across every API process (PostgreSQL)."""
