"""API keys: who is calling, and which project (tenant) they act for."""
