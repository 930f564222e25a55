"""How the ONNX embedder packs texts into rows (engram.adapters.onnx_embedder._pack)."""

import random

from engram.adapters.onnx_embedder import _pack


def test_every_text_lands_in_exactly_one_row_within_the_width():
    rng = random.Random(7)
    lengths = [rng.randint(2, 80) for _ in range(500)]
    rows = _pack(lengths, 64)
    placed = sorted(i for row in rows for i in row)
    assert placed == list(range(len(lengths)))
    for row in rows:
        assert len(row) == 1 or sum(lengths[i] for i in row) <= 64
    # A text longer than a row is alone in its own.
    assert all(len(row) == 1 for row in rows if any(lengths[i] > 64 for i in row))


def test_short_texts_share_rows_with_little_room_left():
    lengths = [20, 20, 20, 16, 30, 30, 4, 2, 2]  # 144 tokens: three rows of 64 suffice
    rows = _pack(lengths, 64)
    assert len(rows) == 3
    widths = [sum(lengths[i] for i in row) for row in rows]
    assert widths == sorted(widths, reverse=True)  # longest rows first


def test_nothing_to_pack():
    assert _pack([], 64) == []
