"""assistantd: a self-hosted, OpenAI-compatible Assistants API server."""

__version__ = "0.1.0"
