"""How the ONNX embedder packs texts into rows and rows into passes
(engram.adapters.onnx_embedder._pack, _passes)."""

import random

import pytest

from engram.adapters.onnx_embedder import _pack, _passes


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


@pytest.mark.parametrize("rows,batch,workers", [(25, 8, 2), (1, 8, 2), (8, 8, 2), (9, 8, 2),
                                                (16, 8, 2), (100, 8, 3), (7, 2, 1)])
def test_passes_keep_the_rows_in_order_within_the_batch_size(rows, batch, workers):
    passes = _passes([[i] for i in range(rows)], batch, workers)
    assert [row for group in passes for row in group] == [[i] for i in range(rows)]
    assert all(0 < len(group) <= batch for group in passes)


def test_passes_split_evenly_so_no_core_waits_alone_on_the_last_one():
    sizes = [len(group) for group in _passes([[i] for i in range(25)], 8, 2)]
    assert sizes == [7, 6, 6, 6]  # not 8 + 8 + 8 + 1
    assert len(_passes([[i] for i in range(9)], 8, 2)) == 2  # 5 + 4, one per core
    assert len(_passes([[i] for i in range(8)], 8, 2)) == 1  # one pass is enough


def test_no_rows_no_passes():
    assert _passes([], 8, 2) == []
