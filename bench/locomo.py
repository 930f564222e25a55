"""Retrieval benchmark on LoCoMo-format data: Engram side by side with raw-turn baselines.

    python -m bench.locomo --data ../shared/eval/locomo-dev.json --out bench/results/ --k 5,10,20

Questions are asked with the conversation's last session date as `reference_time` (its
"now": dates a question names, "in June", "last year", count from the end of the
conversation, not from the machine's clock); `--reference-time now` leaves it out.

Each conversation is one user; every turn goes through Engram's real service path (the
services `engram serve` runs, in-process: add/message in sync mode, then search/memory).
A memory covers the turns in its `sources`; recall counts the evidence turns covered by
the top k. Protocol: ../shared/eval/README.md. Ingest is timed three times, each into a
fresh store: one client sending every session in turn (the recall run), one client per
conversation at once, and one client sending async adds (MemOS's default: the accept
returns once the turns are searchable, `engram serve`'s own pipeline workers extract
meanwhile), timed until every task has completed; recall is measured after those too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.baselines import BM25, Dense, rrf
from bench.locomo_data import CATEGORY_NAMES, HEADLINE_CATEGORIES, Conversation, load
from engram.api.memos.models import AddMessageRequest, SearchRequest
from engram.api.memos.translate import accept_args, search_spec
from engram.config import Settings
from engram.local.runtime import LocalRuntime, build_local_runtime, local_embedder
from engram.ports import Embedder

TENANT = "bench"
WARM_UP_QUERIES = 20


@dataclass(frozen=True)
class Retrieved:
    sources: frozenset[str]
    words: int


@dataclass
class SystemRun:
    name: str
    results: list[list[Retrieved]]  # per question, best first
    latencies_ms: list[float]


def hardware() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "machine": platform.machine()}


@contextmanager
def fresh_runtime(embedder: Embedder) -> Iterator[LocalRuntime]:
    """The services `engram serve` runs, on an empty temporary data directory."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        settings.api_keys = {"bench-key": TENANT}
        runtime = build_local_runtime(settings, embedder=embedder)
        try:
            yield runtime
        finally:
            runtime.close()


def ingest(runtime: LocalRuntime, conversations: list[Conversation], clients: int = 1,
           async_mode: bool = False) -> dict:
    """Every session as one add, in order within its conversation. `clients` callers at
    once, each taking whole conversations (users): what the service sustains when several
    users send at the same time; one client measures a user's own pace. Async adds are
    timed until every task they queued has completed (polled every 5 ms); `accepted_*`
    is when the last accept returned."""
    task_ids: list[str] = []

    def send(conv: Conversation) -> int:
        for number, session in conv.sessions:
            req = AddMessageRequest(
                user_id=conv.sample_id, conversation_id=f"session_{number}",
                async_mode=async_mode,
                messages=[{"role": "user", "content": t.text, "name": t.speaker,
                           "chat_time": t.chat_time, "message_id": t.dia_id} for t in session])
            result = runtime.services.ingest.accept(TENANT, *accept_args(req))
            if result.status != ("waiting" if async_mode else "completed"):
                raise RuntimeError(f"ingest of {conv.sample_id} session {number} failed")
            task_ids.append(result.task_id)
        return sum(len(session) for _, session in conv.sessions)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        turns = sum(pool.map(send, conversations))
    accepted = time.perf_counter() - started
    out: dict = {"turns": turns, "clients": clients, "async": async_mode}
    if async_mode:
        wait_for_tasks(runtime, task_ids)
        out |= {"accepted_seconds": round(accepted, 2),
                "accepted_turns_per_second": round(turns / accepted, 1)}
    seconds = time.perf_counter() - started
    return out | {"seconds": round(seconds, 2), "turns_per_second": round(turns / seconds, 1)}


def wait_for_tasks(runtime: LocalRuntime, task_ids: list[str]) -> None:
    pending = list(task_ids)
    while pending:
        task = runtime.services.tasks.get(TENANT, pending[0])
        if task.status.value == "failed":
            raise RuntimeError(f"task {task.task_id} failed: {task.error}")
        if task.status.value == "completed":
            pending.pop(0)
        else:
            time.sleep(0.005)


def timed(search: Callable[[str, str], list[Retrieved]],
          asks: list[tuple[str, str]]) -> tuple[list[list[Retrieved]], list[float]]:
    for user, question in asks[:WARM_UP_QUERIES]:
        search(user, question)
    results, latencies = [], []
    for user, question in asks:
        started = time.perf_counter()
        results.append(search(user, question))
        latencies.append((time.perf_counter() - started) * 1000)
    return results, latencies


def engram_search(runtime: LocalRuntime, depth: int, asked_at: dict[str, str] | None = None
                  ) -> Callable[[str, str], list[Retrieved]]:
    """`asked_at`: each user's reference time (None: now)."""
    limit = min(depth, 25)

    def search(user: str, question: str) -> list[Retrieved]:
        found = runtime.services.search.search(TENANT, search_spec(SearchRequest(
            query=question, user_id=user, memory_limit_number=limit,
            preference_limit_number=limit, include_preference=True,
            reference_time=(asked_at or {}).get(user))))
        ranked = merged(found.facts, found.preferences)[:depth]
        return [Retrieved(frozenset(s.memory.sources), len(s.memory.memory_value.split()))
                for s in ranked]

    return search


def merged(first: list, second: list) -> list:
    """One list from two ranked ones: each keeps its own order (the service's), and the
    better relativity of the two heads goes first."""
    out, i, j = [], 0, 0
    while i < len(first) or j < len(second):
        if j == len(second) or (i < len(first) and first[i].relativity >= second[j].relativity):
            out.append(first[i])
            i += 1
        else:
            out.append(second[j])
            j += 1
    return out


def baseline_searches(conversations: list[Conversation], embedder: Embedder,
                      depth: int) -> dict[str, Callable[[str, str], list[Retrieved]]]:
    per_user = {}
    for conv in conversations:
        turns = conv.turns
        texts = [t.text for t in turns]
        items = [Retrieved(frozenset([t.dia_id]), len(t.text.split())) for t in turns]
        per_user[conv.sample_id] = (items, BM25(texts), Dense(texts, embedder))
    pool = 100  # candidates each side brings to the fusion

    def bm25(user: str, q: str) -> list[Retrieved]:
        items, lexical, _ = per_user[user]
        return [items[i] for i in lexical.rank(q, depth)]

    def dense(user: str, q: str) -> list[Retrieved]:
        items, _, vectors = per_user[user]
        return [items[i] for i in vectors.rank(q, depth)]

    def fused(user: str, q: str) -> list[Retrieved]:
        items, lexical, vectors = per_user[user]
        return [items[i] for i in rrf(lexical.rank(q, pool), vectors.rank(q, pool))[:depth]]

    return {"bm25_turns": bm25, "dense_turns": dense, "rrf_turns": fused}


def metrics(run: SystemRun, questions: list, ks: list[int]) -> dict:
    """Per category and micro-averaged over the headline categories, for each k."""
    out: dict = {}
    for k in ks:
        rows: dict[int, list[tuple[float, float, int, float]]] = {}
        for q, retrieved in zip(questions, run.results, strict=True):
            top = retrieved[:k]
            covered = set().union(*(r.sources for r in top)) if top else set()
            hit = len(set(q.evidence) & covered)
            per_memory = statistics.mean(len(r.sources) for r in top) if top else 0.0
            rows.setdefault(q.category, []).append(
                (hit / len(q.evidence), float(hit == len(q.evidence)),
                 sum(r.words for r in top), per_memory))

        def summary(values: list[tuple[float, float, int, float]]) -> dict:
            return {"n": len(values),
                    "recall_frac": round(statistics.mean(v[0] for v in values), 4),
                    "recall_all": round(statistics.mean(v[1] for v in values), 4),
                    "words": round(statistics.mean(v[2] for v in values), 1),
                    "sources_per_memory": round(statistics.mean(v[3] for v in values), 3)}

        headline = [v for c in HEADLINE_CATEGORIES for v in rows.get(c, [])]
        out[f"@{k}"] = {"micro_1_4": summary(headline),
                        **{f"cat{c}_{CATEGORY_NAMES[c]}": summary(v)
                           for c, v in sorted(rows.items())}}
    ordered = sorted(run.latencies_ms)
    out["latency_ms"] = {"p50": round(statistics.median(ordered), 2),
                         "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2)}
    return out


def report(results: dict, ks: list[int]) -> str:
    systems = results["systems"]
    engram_p50 = systems["engram"]["latency_ms"]["p50"]
    lines = [
        "# LoCoMo retrieval benchmark",
        "",
        f"Data: `{results['data']}` ({results['questions']} questions with evidence in "
        f"categories 1–4; category 5 reported apart). Model: {results['model']}. "
        f"Hardware: {results['hardware']['cpu']}, {results['hardware']['cores']} cores.",
        "Questions asked at: " + ("each conversation's last session date (`reference_time`)."
                                  if results.get("reference_time") == "last-session"
                                  else "now (no `reference_time`)."),
        f"Engram ingest: {results['ingest']['turns']} turns in {results['ingest']['seconds']} s "
        f"= {results['ingest']['turns_per_second']} turns/s ({results['extractor']}, one "
        f"client); {results['ingest_concurrent']['turns_per_second']} turns/s with "
        f"{results['ingest_concurrent']['clients']} clients at once (one per conversation); "
        f"{results['ingest_async']['turns_per_second']} turns/s with async adds, one client, "
        f"until every task completed (accepted at "
        f"{results['ingest_async']['accepted_turns_per_second']} turns/s; recall_frac@10 "
        f"after them {results['ingest_async']['recall_frac@10']:.3f}).",
        "",
        "| system | " + " | ".join(f"recall_frac@{k}" for k in ks) + " | recall_all@10 | "
        "words@10 | sources/memory@10 | p50 ms | p95 ms | p50 vs Engram |",
        "|---|" + "---|" * (len(ks) + 6),
    ]
    for name, m in systems.items():
        micro = {k: m[f"@{k}"]["micro_1_4"] for k in ks}
        ten = m["@10"]["micro_1_4"]
        lines.append(
            f"| {name} | " + " | ".join(f"{micro[k]['recall_frac']:.3f}" for k in ks)
            + f" | {ten['recall_all']:.3f} | {ten['words']:.0f} | {ten['sources_per_memory']:.2f}"
            f" | {m['latency_ms']['p50']:.1f} | {m['latency_ms']['p95']:.1f}"
            f" | {m['latency_ms']['p50'] / engram_p50:.2f}× |")
    lines += ["", "recall_frac@10 by category:", "",
              "| system | " + " | ".join(c for c in systems["engram"]["@10"] if c.startswith("cat"))
              + " |", "|---|" + "---|" * sum(1 for c in systems["engram"]["@10"]
                                             if c.startswith("cat"))]
    for name, m in systems.items():
        cats = [c for c in m["@10"] if c.startswith("cat")]
        lines.append(f"| {name} | " + " | ".join(f"{m['@10'][c]['recall_frac']:.3f}"
                                                for c in cats) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/eval/locomo-dev.json"))
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--k", default="5,10,20")
    parser.add_argument("--reference-time", choices=("last-session", "now"),
                        default="last-session",
                        help="when the questions are asked: after the conversation's last "
                             "session (its date), or now")
    args = parser.parse_args(argv)
    ks = sorted(int(k) for k in args.k.split(","))
    if 10 not in ks:
        ks = sorted({*ks, 10})  # the headline figure
    depth = max(ks)

    conversations = load(args.data)
    asks, questions = [], []
    for conv in conversations:
        for q in conv.questions:
            if q.evidence:
                asks.append((conv.sample_id, q.question))
                questions.append(q)

    embedder = local_embedder(Settings())  # what `engram serve` runs (ENGRAM_EMBEDDER)
    embedder.warm_up()
    with fresh_runtime(embedder) as runtime:
        ingest_stats = ingest(runtime, conversations)
        asked_at = {c.sample_id: c.last_time for c in conversations} \
            if args.reference_time == "last-session" else None
        runs = [SystemRun("engram", *timed(engram_search(runtime, depth, asked_at), asks))]
    with fresh_runtime(embedder) as runtime:  # the same turns again, one client per user
        concurrent_stats = ingest(runtime, conversations, clients=len(conversations))
    with fresh_runtime(embedder) as runtime:  # again as async adds: the same memories?
        async_stats = ingest(runtime, conversations, async_mode=True)
        after_async = SystemRun("engram_async", *timed(engram_search(runtime, depth), asks))
    async_stats["recall_frac@10"] = metrics(after_async, questions, [10])["@10"][
        "micro_1_4"]["recall_frac"]
    for name, search in baseline_searches(conversations, embedder, depth).items():
        runs.append(SystemRun(name, *timed(search, asks)))

    results = {
        "data": str(args.data),
        "questions": sum(1 for q in questions if q.category in HEADLINE_CATEGORIES),
        "model": embedder.model_name,
        "extractor": "rule-based extractor",
        "reference_time": args.reference_time,
        "hardware": hardware(),
        "ingest": ingest_stats,
        "ingest_concurrent": concurrent_stats,
        "ingest_async": async_stats,
        "systems": {run.name: metrics(run, questions, ks) for run in runs},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    (args.out / "report.md").write_text(report(results, ks))
    print(report(results, ks))
    engram = results["systems"]["engram"]
    best = max(m["@10"]["micro_1_4"]["recall_frac"] for n, m in results["systems"].items()
               if n != "engram")
    print(f"recall_frac@10={engram['@10']['micro_1_4']['recall_frac']:.3f} "
          f"baseline_best={best:.3f} words@10={engram['@10']['micro_1_4']['words']:.0f} "
          f"p50_ms={engram['latency_ms']['p50']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
