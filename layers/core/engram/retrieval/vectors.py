"""How a memory is embedded: its own text, mixed with the turn it was said in.

A memory alone is focused but often leaves out what "it" or "they" were; the turn says.
A weighted sum of the two unit vectors keeps the memory's meaning first and lets the turn
pull in what it leaves out, at one extra embedding per turn (not per memory). On LoCoMo
dev, recall_frac@10 with turn weight 0 / 0.2 / 0.25 / 0.35 / 0.5 was 0.761 / 0.774 / 0.776 /
0.770 / 0.729 with cosine diversification alone, and 0.2 / 0.25 / 0.3 / 0.35 gave 0.793 /
0.804 / 0.797 / 0.800 with the final search (services/search.py, retrieval/diversify.py).

A request's turns are embedded once, by one call (`embed_turns`): an async add makes it at
accept, where its vectors are also the fast-path turns', and keeps it with the request; a
sync add's pipeline makes the same call when it first needs a turn (`RequestTurns`). The
call must be the same, not only the texts: an int8 vector moves a little with the texts
sharing its forward pass, so this way a memory's vector is the same bits in both modes.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from engram.models.domain import Candidate, Memory, MessageRecord, Role, own_turn
from engram.models.pipeline import IngestJob, TurnVectors
from engram.ports import Embedder

if TYPE_CHECKING:
    import numpy as np

# numpy is imported by the functions that compute with vectors, so that the requests that
# make none (a status, a key check) do not load it at cold start (bench/coldstart.py);
# the extractors' context rules (extraction/context.py) by the one that reads a turn.

TURN_WEIGHT = 0.25


def memory_vectors(embedder: Embedder, items: Sequence[Memory | Candidate],
                   turns: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """Unit vectors, one per memory or candidate, in order; identical turns embedded once,
    and not at all when `turns` (a request's, see RequestTurns) has them. What the
    assistant said gets a zero vector: it is found by its words alone
    (extraction/assistant.py)."""
    import numpy as np

    embedded = [i for i, item in enumerate(items) if item.said_by != "assistant"]
    if len(embedded) < len(items):
        out = np.zeros((len(items), embedder.dimension), dtype=np.float32)
        if embedded:
            out[embedded] = memory_vectors(embedder, [items[i] for i in embedded], turns)
        return out
    texts = [item.dense_text for item in items]
    of_items = [item.turn_text for item in items]
    unique = [t for t in dict.fromkeys(of_items) if t]
    reused = {t for t in unique if t in turns} if turns is not None else set()
    if reused and isinstance(turns, RequestTurns):
        turns.start()  # its own call, beside this one: a core each
    missing = [t for t in unique if t not in reused]
    vectors = embedder.embed(texts + missing)  # one call, so the embedder batches them all
    own = vectors[: len(texts)]
    of_turn = {t: turns[t] for t in reused} if turns is not None else {}
    of_turn |= dict(zip(missing, vectors[len(texts):], strict=True))
    mixed = np.array([(1 - TURN_WEIGHT) * vector + TURN_WEIGHT * of_turn[turn] if turn
                      else vector for vector, turn in zip(own, of_items, strict=True)],
                     dtype=np.float32).reshape(len(items), -1)
    return mixed / np.linalg.norm(mixed, axis=1, keepdims=True)


def turn_text(message: MessageRecord) -> str:
    """The turn text (Memory.turn_text) of the memories extracted from a user turn, as the
    extractors write their context: the turn's statements, without its speaker's prefix and
    image captions, clipped. A memory whose turn text differs (an LLM's, of a parsed
    document) still gets its turn embedded, by memory_vectors."""
    from engram.extraction.context import own_words, turn_context

    return own_turn(turn_context(None, message, own_words(message)))


def turn_texts(messages: Sequence[MessageRecord]) -> list[str]:
    """The turn texts of a request's user turns, each once, in order."""
    return list(dict.fromkeys(t for m in messages if m.role == Role.user and (t := turn_text(m))))


def embed_turns(embedder: Embedder, messages: Sequence[MessageRecord]) -> dict[str, np.ndarray]:
    """The request's turn texts embedded in one call."""
    import numpy as np

    texts = turn_texts(messages)
    if not texts:
        return {}
    return dict(zip(texts, np.asarray(embedder.embed(texts), dtype=np.float32), strict=True))


def kept_turns(embedder: Embedder, turns: Mapping[str, np.ndarray]) -> TurnVectors:
    """`turns` as kept with the request (IngestJob.turn_vectors)."""
    import numpy as np

    rows = np.asarray(list(turns.values()), dtype=np.float32)
    return TurnVectors(model=embedder.model_name, texts=list(turns),
                       vectors=base64.b64encode(rows.tobytes()).decode("ascii"))


# Where a sync add's pipeline embeds its turns (their own call, see the module's doc) while
# it embeds its memories: one call alone often fills a forward pass or two, leaving a core
# idle. One thread: the embedder spreads each call's passes over the cores itself.
_BESIDE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turn-vectors")


class RequestTurns(Mapping[str, "np.ndarray"]):
    """A request's turn vectors: those its accept kept (when made by this embedder's model),
    else `embed_turns`, begun by `start` or on first use. Which texts it has is known
    without embedding them."""

    def __init__(self, embedder: Embedder, job: IngestJob):
        self._embedder, self._messages = embedder, job.messages
        kept = job.turn_vectors
        self._kept = kept if kept is not None and kept.model == embedder.model_name else None
        self._texts = frozenset(self._kept.texts if self._kept else turn_texts(job.messages))
        self._turns: dict[str, np.ndarray] | None = None
        self._pending: Future[dict[str, np.ndarray]] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Begin embedding the turns in the background, unless kept or begun."""
        with self._lock:
            if self._turns is None and self._pending is None and self._kept is None:
                self._pending = _BESIDE.submit(embed_turns, self._embedder, self._messages)

    def _loaded(self) -> dict[str, np.ndarray]:
        with self._lock:
            if self._turns is None:
                if self._kept is not None:
                    import numpy as np

                    rows = np.frombuffer(base64.b64decode(self._kept.vectors), dtype=np.float32)
                    self._turns = dict(zip(self._kept.texts, rows.reshape(
                        len(self._kept.texts), -1) if self._kept.texts else [], strict=True))
                elif self._pending is not None:
                    self._turns = self._pending.result()
                else:
                    self._turns = embed_turns(self._embedder, self._messages)
            return self._turns

    def __contains__(self, text: object) -> bool:
        return text in self._texts

    def __getitem__(self, text: str) -> np.ndarray:
        return self._loaded()[text]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._texts)


def working_vectors(embedder: Embedder, messages: Sequence[MessageRecord],
                    working: Sequence[Memory], turns: Mapping[str, np.ndarray]) -> np.ndarray:
    """The fast path's vectors, one per turn in `messages` (its working memory in `working`):
    a user turn's is its turn vector, from `turns` (embedded once, for the pipeline too); the
    others' (an assistant's turn, one of questions only) are their whole text's."""
    import numpy as np

    reused = [turns.get(turn_text(m)) if m.role == Role.user else None for m in messages]
    rest = [w for w, vector in zip(working, reused, strict=True) if vector is None]
    embedded = iter(memory_vectors(embedder, rest) if rest else ())
    return np.array([next(embedded) if vector is None else vector for vector in reused],
                    dtype=np.float32).reshape(len(working), -1)
