"""Lexical (BM25) scoring: the tokenizer, one definition shared by the indexes and the
benchmark's BM25 baseline so all count the same terms, and the BM25 weighting the local
index computes (OpenSearch's default similarity uses the same k1 and b).

Latin-script words are lowercased, stopword-filtered and lightly stemmed so that
"hotels"/"hotel" and "running"/"run" meet. CJK text has no spaces, so each run of CJK
characters becomes overlapping character bigrams: Chinese matches without a segmenter.
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING

from engram.models.domain import CONTEXT_SEPARATOR

if TYPE_CHECKING:  # annotations only: get/status imports no numpy
    import numpy as np


# Han (with extension A, compatibility ideographs and the supplementary planes), kana, Hangul.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
_CJK_RUN = re.compile(f"([{_CJK}]+)")
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script; "_" and punctuation split

STOPWORDS = frozenset(
    """
    a an the and or but if then else so than too very of at by for with about against
    between into through during before after above below to from up down in out on off
    over under again further once here there when where why how all any both each few
    more most other some such no nor not only own same can will just should now
    i me my myself we our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves what
    which who whom this that these those am is are was were be been being have has had
    having do does did doing would could shall may might must s t d ll m re ve
    """.split()
)

BM25_K1 = 1.2
BM25_B = 0.75

_UNDOUBLED = frozenset("lsz")  # "falling" keeps "fall", "missed" keeps "miss"
_VOWELS = frozenset("aeiouy")


def tokenize(text: str) -> list[str]:
    """Terms of `text` in reading order, repeats kept (BM25 counts them)."""
    normalised = unicodedata.normalize("NFKC", text).lower()  # full-width forms → ASCII
    tokens: list[str] = []
    for index, part in enumerate(_CJK_RUN.split(normalised)):
        if index % 2:  # split() with a group alternates non-CJK / CJK parts
            tokens.extend(_cjk_terms(part))
        else:
            tokens.extend(_word_terms(part))
    return tokens


def memory_terms(key: str, value: str, context: str) -> list[str]:
    """tokenize(index_text(key, value, context)) (models/domain.py), the same terms in the
    same order, each part tokenized alone: index_text joins them with a space, which no
    term spans. A context's parts (the turn answered, the speaker's own turn) are shared
    by every memory of a turn, and an assistant answer's by each of its passages, so their
    terms are cached."""
    terms = [*_part_terms(key), *tokenize(value)]
    for part in context.split(CONTEXT_SEPARATOR):
        terms += _part_terms(part)
    return terms


@lru_cache(maxsize=1024)
def _part_terms(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text))


def _cjk_terms(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def _word_terms(segment: str) -> list[str]:
    return [stem(word) for word in _WORD.findall(segment) if word not in STOPWORDS]


# Text reuses few words many times: 125k calls, far fewer words, for 1,451 LoCoMo turns.
@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """Strip plural, -ing/-ed and a final e; words of three letters or fewer and anything
    with a digit are left alone."""
    if len(word) <= 3 or not word.isalpha():
        return word
    word = _strip_plural(word)
    word = _strip_verb_ending(word)
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]  # "make"/"making" → "mak", "hope"/"hoped" → "hop"
    return word


def _strip_plural(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"  # cities → city
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]  # classes → class, boxes → box, matches → match
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]  # hotels → hotel; keeps class, status, analysis
    return word


def _strip_verb_ending(word: str) -> str:
    for ending in ("ing", "ed"):
        stem_part = word[: -len(ending)]
        if word.endswith(ending) and len(stem_part) >= 3 and _VOWELS & set(stem_part):
            return _undouble(stem_part)
    return word


def _undouble(stem_part: str) -> str:
    last = stem_part[-1]
    if stem_part[-2] == last and last not in _VOWELS and last not in _UNDOUBLED:
        return stem_part[:-1]  # running → run, planned → plan
    return stem_part


def bm25_idf(rows: int, found: int) -> float:
    """Inverse document frequency of a term found in `found` of `rows` documents."""
    return math.log(1 + (rows - found + 0.5) / (found + 0.5))


def bm25_term_scores(idf: float, freqs: np.ndarray, lengths: np.ndarray,
                     average_length: float) -> np.ndarray:
    """One term's BM25 contribution to each document, from its frequency in each and the
    documents' lengths (in terms)."""
    norms = BM25_K1 * (1 - BM25_B + BM25_B * lengths / average_length)
    return idf * freqs * (BM25_K1 + 1) / (freqs + norms)
