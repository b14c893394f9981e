"""Shared plumbing: ids, time, pagination, wire base model, SSE, multipart."""
