"""Engram: a memory layer for AI applications (MemOS / EverOS compatible API)."""

import os

__version__ = "0.1.0"

# OpenBLAS (numpy's BLAS) keeps its worker threads spinning for ~0.1 s after each
# multi-threaded call. Ingest alternates small vector scans with embedding passes, so a
# spinning BLAS thread took a core from every pass that followed: LoCoMo ingest spent 9.1
# instead of 7.6 s embedding. 2^4 cycles before they sleep; read when numpy first loads, so
# this only takes effect when engram is imported before numpy.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
