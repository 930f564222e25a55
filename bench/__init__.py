"""Benchmarks (`make bench`). engram first: it tunes OpenBLAS before numpy loads."""

import engram  # noqa: F401
