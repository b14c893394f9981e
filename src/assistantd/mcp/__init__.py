"""The `mcp` hosted tool of the Responses API: remote MCP servers, their tool lists and calls,
and approvals, all kept as items."""
