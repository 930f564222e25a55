"""The LongMemEval reader lives with `engram import` (engram/imports/longmemeval.py); the
benchmark reads the same files through it."""

from engram.imports.longmemeval import (  # noqa: F401
    Question,
    Session,
    Turn,
    load,
    select,
    session_of,
)
