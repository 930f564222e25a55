"""Engram's MCP server: the tools (tools.py) over the /v1 operations (backends.py), served
over stdio by `engram mcp` and over streamable HTTP at `/mcp` by `engram serve` (http.py)."""
