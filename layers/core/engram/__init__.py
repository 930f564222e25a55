"""Engram: a memory layer for AI applications (MemOS / EverOS compatible API)."""

__version__ = "0.1.0"
