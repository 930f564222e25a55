"""The LoCoMo reader lives with `engram import` (engram/imports/locomo.py); the benchmark
reads the same files through it."""

from engram.imports.locomo import (  # noqa: F401
    CATEGORY_NAMES,
    HEADLINE_CATEGORIES,
    Conversation,
    Question,
    Turn,
    load,
)
