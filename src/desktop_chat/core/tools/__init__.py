"""MCP tools: server configuration (`config`), the servers' lifecycle and calls (`host`), and
who may run what (`consent`). No Qt; the `mcp` SDK is imported only when servers start."""
