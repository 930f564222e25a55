"""Embedding speed and quality, side by side in one run: MiniLMEmbedder (sentence-transformers
on torch) against the ONNX exports (engram.adapters.onnx_embedder) in fp32 and int8.

    python -m bench.embedders --data ../shared/eval/locomo-dev.json --onnx-dir DIR \
        --out bench/results/embedders.json

Throughput (texts/s) on (a) every LoCoMo turn as "speaker: text" and (b) ~1,000 short
sentences (45-75 characters) cut from the same turns, for batch sizes 32/64/128 and 1 or 2
threads; the configurations run interleaved, `--rounds` times, and the best and median
round are reported (the machine is shared, so the best round is the least disturbed one).
Single-query latency on the LoCoMo questions. Quality: cosine to the fp32 vectors and
dense retrieval over raw turns, recall@k of the evidence turns (categories 1-4), the
baseline of ../shared/eval/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench.locomo_data import HEADLINE_CATEGORIES, load
from engram.adapters.minilm_embedder import MiniLMEmbedder
from engram.adapters.onnx_embedder import OnnxMiniLMEmbedder, export_minilm_onnx

BATCHES = (32, 64, 128)
THREADS = (1, 2)  # torch.set_num_threads / onnxruntime passes at once
KS = (5, 10, 20)


def raw_turns(path: Path) -> list[dict]:
    turns = []
    for sample in json.loads(path.read_text()):
        conv = sample["conversation"]
        numbers = sorted(int(m.group(1)) for k in conv if (m := re.match(r"^session_(\d+)$", k)))
        for n in numbers:
            turns.extend(conv[f"session_{n}"])
    return turns


def short_sentences(turns: list[dict], count: int = 1000) -> list[str]:
    pieces = (s.strip() for t in turns for s in re.split(r"(?<=[.!?])\s+", t["text"]))
    unique = [s for s in dict.fromkeys(pieces) if 45 <= len(s) <= 75]
    return unique[:count]


class TorchRunner:
    """MiniLMEmbedder with its batch size and torch's thread count set per measurement."""

    settings = tuple(str(t) for t in THREADS)

    def __init__(self) -> None:
        self.embedder = MiniLMEmbedder()
        self.embedder.warm_up()

    def embed(self, texts: Sequence[str], setting: str, batch: int) -> np.ndarray:
        import torch

        torch.set_num_threads(int(setting))
        self.embedder.batch_size = batch
        return self.embedder.embed(texts)


class OnnxRunner:
    """One embedder per setting: "N" passes at once."""

    settings = tuple(str(t) for t in THREADS)

    def __init__(self, model: Path) -> None:
        self.sessions = {s: OnnxMiniLMEmbedder(model, threads=int(s)) for s in self.settings}
        for embedder in self.sessions.values():
            embedder.warm_up()

    def embed(self, texts: Sequence[str], setting: str, batch: int) -> np.ndarray:
        embedder = self.sessions[setting]
        embedder.batch_size = batch
        return embedder.embed(texts)


def throughput(runners: dict, corpora: dict[str, list[str]], rounds: int) -> list[dict]:
    configs = [(corpus, name, setting, batch) for corpus in corpora
               for name, runner in runners.items() for setting in runner.settings
               for batch in BATCHES]
    rates: dict[tuple, list[float]] = {c: [] for c in configs}
    cpu: dict[tuple, list[float]] = {c: [] for c in configs}
    for r in range(rounds):
        for config in configs:
            corpus, name, threads, batch = config
            texts = corpora[corpus]
            runners[name].embed(texts[:batch], threads, batch)  # settle threads and buffers
            gc.collect()
            wall, proc = time.perf_counter(), time.process_time()
            runners[name].embed(texts, threads, batch)
            wall, proc = time.perf_counter() - wall, time.process_time() - proc
            rates[config].append(len(texts) / wall)
            cpu[config].append(len(texts) / proc)
            print(f"round {r + 1} {corpus:6s} {name:10s} threads={threads:6s} batch={batch:3d}"
                  f" {len(texts) / wall:7.1f}/s  load {os.getloadavg()[0]:.1f}", flush=True)
    return [{"corpus": c[0], "variant": c[1], "threads": c[2], "batch": c[3],
             "best": round(max(rates[c]), 1), "median": round(statistics.median(rates[c]), 1),
             "per_cpu_second_best": round(max(cpu[c]), 1)} for c in configs]


def latency(runners: dict, queries: list[str], rounds: int) -> list[dict]:
    rows = []
    samples: dict[tuple, list[float]] = {(n, s): [] for n, r in runners.items()
                                         for s in r.settings}
    for _ in range(rounds):
        for name, threads in samples:
            runner = runners[name]
            for q in queries[:10]:
                runner.embed([q], threads, 1)
            for q in queries:
                started = time.perf_counter()
                runner.embed([q], threads, 1)
                samples[(name, threads)].append((time.perf_counter() - started) * 1000)
    for (name, threads), values in samples.items():
        rows.append({"variant": name, "threads": threads, "n": len(values),
                     "p50_ms": round(float(np.percentile(values, 50)), 2),
                     "p95_ms": round(float(np.percentile(values, 95)), 2)})
    return rows


def retrieval(conversations, embed: Callable[[list[str]], np.ndarray]) -> dict:
    """Dense retrieval over raw turns: recall_frac@k and recall_all@k, categories 1-4."""
    fracs: dict[int, list[float]] = {k: [] for k in KS}
    alls: dict[int, list[float]] = {k: [] for k in KS}
    for conv in conversations:
        turns = conv.turns
        matrix = embed([t.text for t in turns])
        asked = [q for q in conv.questions if q.category in HEADLINE_CATEGORIES and q.evidence]
        queries = embed([q.question for q in asked])
        order = np.argsort(-(queries @ matrix.T), axis=1, kind="stable")
        for q, ranking in zip(asked, order, strict=True):
            for k in KS:
                found = {turns[i].dia_id for i in ranking[:k]} & set(q.evidence)
                fracs[k].append(len(found) / len(q.evidence))
                alls[k].append(float(len(found) == len(q.evidence)))
    return {"questions": len(fracs[KS[0]]),
            **{f"recall_frac@{k}": round(statistics.mean(fracs[k]), 4) for k in KS},
            **{f"recall_all@{k}": round(statistics.mean(alls[k]), 4) for k in KS}}


def per_tensor_int8(fp32: Path, scratch: Path) -> Path:
    """feasibility.md §5's int8 (quantize_dynamic defaults), for comparison only."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = scratch / "model-int8-per-tensor.onnx"
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
    (scratch / "tokenizer.json").write_bytes((fp32.parent / "tokenizer.json").read_bytes())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/eval/locomo-dev.json"))
    parser.add_argument("--onnx-dir", type=Path, required=True,
                        help="export dir (exported here if missing)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    started = time.time()
    load_avg_start = os.getloadavg()
    fp32_path = export_minilm_onnx(args.onnx_dir, quantize=False)
    int8_path = export_minilm_onnx(args.onnx_dir, quantize=True)
    turns = raw_turns(args.data)
    corpora = {"locomo": [f"{t['speaker']}: {t['text']}" for t in turns],
               "short": short_sentences(turns)}
    conversations = load(args.data)
    queries = [q.question for c in conversations for q in c.questions
               if q.category in HEADLINE_CATEGORIES][:200]

    loads = {}
    t = time.perf_counter()
    runners: dict = {"onnx-fp32": OnnxRunner(fp32_path)}
    loads["onnx-fp32"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    runners["onnx-int8"] = OnnxRunner(int8_path)
    loads["onnx-int8"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    runners["torch"] = TorchRunner()
    loads["torch"] = round(time.perf_counter() - t, 2)
    runners = {n: runners[n] for n in ("torch", "onnx-fp32", "onnx-int8")}

    with tempfile.TemporaryDirectory() as scratch:
        quality_runners = {**runners,
                           "onnx-int8-per-tensor": OnnxRunner(per_tensor_int8(fp32_path,
                                                                              Path(scratch)))}
        reference = runners["onnx-fp32"].embed(corpora["locomo"], "1", 32)
        quality = {}
        for name, runner in quality_runners.items():
            vectors = runner.embed(corpora["locomo"], "1", 32)
            cos = (vectors * reference).sum(axis=1)
            quality[name] = {
                "max_abs_diff_vs_onnx_fp32": float(np.abs(vectors - reference).max()),
                "cos_vs_onnx_fp32_mean": round(float(cos.mean()), 4),
                "cos_vs_onnx_fp32_min": round(float(cos.min()), 4),
                **retrieval(conversations, lambda texts, r=runner: r.embed(texts, "1", 32))}
            print(name, quality[name], flush=True)
        del quality_runners

    speed = throughput(runners, corpora, args.rounds)
    single = latency(runners, queries, 2)
    results = {
        "hardware": {"cpu": platform.processor() or platform.machine(),
                     "cores_usable": len(os.sched_getaffinity(0)),
                     "python": platform.python_version()},
        "corpora": {k: {"texts": len(v), "mean_chars": round(statistics.mean(map(len, v)), 1)}
                    for k, v in corpora.items()},
        "load_seconds": loads, "rounds": args.rounds,
        "load_average_start": load_avg_start, "load_average_end": os.getloadavg(),
        "throughput": speed, "single_query": single, "quality": quality,
        "wall_seconds": round(time.time() - started, 1),
    }
    print(report(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


def report(results: dict) -> str:
    lines = ["", "Throughput, texts/s: best round (median) ", ""]
    header = "| corpus | variant | threads | " + " | ".join(f"batch {b}" for b in BATCHES) + " |"
    lines += [header, "|---" * (3 + len(BATCHES)) + "|"]
    rows: dict[tuple, dict[int, dict]] = {}
    for row in results["throughput"]:
        rows.setdefault((row["corpus"], row["variant"], row["threads"]), {})[row["batch"]] = row
    for (corpus, variant, threads), by_batch in rows.items():
        cells = " | ".join(f"{by_batch[b]['best']:.0f} ({by_batch[b]['median']:.0f})"
                           for b in BATCHES)
        lines.append(f"| {corpus} | {variant} | {threads} | {cells} |")
    lines += ["", "| single query | threads | p50 ms | p95 ms |", "|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['threads']} | {r['p50_ms']} | {r['p95_ms']} |"
              for r in results["single_query"]]
    lines += ["", "| quality | cos vs fp32 mean / min | recall_frac@5 | @10 | @20 |"
              " recall_all@10 |", "|---|---|---|---|---|---|"]
    for name, q in results["quality"].items():
        lines.append(f"| {name} | {q['cos_vs_onnx_fp32_mean']:.4f} / "
                     f"{q['cos_vs_onnx_fp32_min']:.4f} | {q['recall_frac@5']:.3f} | "
                     f"{q['recall_frac@10']:.3f} | {q['recall_frac@20']:.3f} | "
                     f"{q['recall_all@10']:.3f} |")
    lines += ["", f"load s: {results['load_seconds']}; load average start "
              f"{results['load_average_start']} end {results['load_average_end']}; "
              f"{results['wall_seconds']} s"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
