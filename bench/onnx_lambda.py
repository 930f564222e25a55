"""The ONNX embedder as a Lambda function runs it (EmbeddingProvider=onnx): init and query
embedding time on one core, in fresh processes.

    python -m bench.onnx_lambda [--build-dir .aws-sam/build --python python3.12] [--runs 5]

Each run is a new interpreter pinned to one core (taskset -c 0: a 1,769 MB function has one
vCPU; the 1,024 MB API function gets ~0.6 of one) and told it has one core, so the
embedder runs one pass at a time. With --build-dir it imports the built core layer
(CoreLayer/python, CoreLayer/minilm-onnx) with that Python, as Lambda does; otherwise
this checkout with the export `make setup` wrote. Reported: import of onnxruntime and
tokenizers, then of the AWS runtime module, model load (session + tokenizer), the first
query, then the median of 50 single-query embeddings and of 20 batches of 12
memory-length texts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["What does the user like to drink in the morning?",
           "When did Caroline go to the LGBTQ support group?",
           "Where is Alice travelling next month?",
           "我下个月去哪里出差？",
           "What did Melanie paint last summer?"]
MEMORIES = [f"The user mentioned that hobby number {i} takes up most weekends in spring."
            for i in range(12)]

CHILD = """
import json, resource, statistics, sys, time
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
t0, c0 = time.perf_counter(), cpu()
import onnxruntime, tokenizers  # noqa: F401
ta = time.perf_counter()
from pathlib import Path
from engram.aws.runtime import onnx_embedder
t1, c1 = time.perf_counter(), cpu()
embedder = onnx_embedder(Path(sys.argv[1]))
embedder._threads = 1  # noqa: SLF001 - as on one core: one pass at a time
embedder._loaded()  # noqa: SLF001 - session and tokenizer
t2, c2 = time.perf_counter(), cpu()
queries, memories = json.loads(sys.argv[2]), json.loads(sys.argv[3])
embedder.embed(queries[:1])
t3, c3 = time.perf_counter(), cpu()
single = []
for i in range(50):
    start = time.perf_counter()
    embedder.embed([queries[i % len(queries)]])
    single.append(time.perf_counter() - start)
batch = []
for _ in range(20):
    start = time.perf_counter()
    embedder.embed(memories)
    batch.append(time.perf_counter() - start)
print(json.dumps({"import_s": ta - t0, "engram_s": t1 - ta, "load_s": t2 - t1,
                  "first_query_s": t3 - t2,
                  "init_cpu_s": c3 - c0, "query_s": statistics.median(single),
                  "batch12_s": statistics.median(batch)}))
"""


def run(python: str, pythonpath: str, model_dir: Path, cores: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "ENGRAM_"))}
    env.update(PYTHONPATH=pythonpath, PYTHONDONTWRITEBYTECODE="1")
    command = ["taskset", "-c", cores, python, "-c", CHILD, str(model_dir),
               json.dumps(QUERIES), json.dumps(MEMORIES)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.onnx_lambda",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, help="a sam build output (its CoreLayer)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--model-dir", type=Path,
                        default=Path(sys.prefix) / "share" / "engram" / "minilm-onnx")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cores", default="0")
    args = parser.parse_args(argv)
    if args.build_dir:
        pythonpath = str(args.build_dir / "CoreLayer" / "python")
        model_dir = args.build_dir / "CoreLayer" / "minilm-onnx"
    else:
        pythonpath, model_dir = str(ROOT / "layers" / "core"), args.model_dir
    results = [run(args.python, pythonpath, model_dir, args.cores) for _ in range(args.runs)]
    keys = ("import_s", "engram_s", "load_s", "first_query_s", "init_cpu_s", "query_s", "batch12_s")
    median = {k: statistics.median(r[k] for r in results) for k in keys}
    print(f"ONNX embedder on core {args.cores}, one pass at a time, medians of {args.runs} "
          f"fresh processes ({'built layer' if args.build_dir else 'this checkout'}):")
    print("| import onnxruntime + tokenizers s | import engram s | model load s "
          "| first query s | init CPU s | query s | 12 memories s |")
    print("|---|---|---|---|---|---|---|")
    print(" | ".join(f"{median[k]:.4f}" for k in keys).join(("| ", " |")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
