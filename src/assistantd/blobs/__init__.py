"""Stored file contents, behind a small interface (local directory by default)."""
