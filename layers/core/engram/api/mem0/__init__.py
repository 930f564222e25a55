"""mem0's platform API (the routes `mem0ai`'s MemoryClient calls), over Engram's services."""
