"""Retrieval benchmark on LongMemEval_S: Engram side by side with raw-turn baselines.

    python -m bench.longmemeval --data ../shared/eval/longmemeval-s-dev --out bench/results/lme/
    python -m bench.longmemeval --types temporal-reasoning,multi-session --limit 6

Each question is its own user with its own haystack, ingested into one runtime (the services
`engram serve` runs, in-process): every session one sync add/message, in order, roles kept,
`chat_time` = the session's date, message ids `<session_id>#<i>`. The question is searched as
its user, with its `question_date` as the reference time. A memory cites the turns in its
`sources`, and through them their sessions. Abstention questions (`_abs`) are left out.
Protocol and metrics: ../shared/eval/README.md and LongMemEval's src/retrieval/eval_utils.py.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench.baselines import BM25, Dense, rrf
from bench.locomo import (
    TENANT,
    Retrieved,
    SystemRun,
    fresh_runtime,
    hardware,
    merged,
    timed,
)
from bench.longmemeval_data import Question, load, select, session_of
from engram.api.memos.models import AddMessageRequest, SearchRequest
from engram.api.memos.translate import accept_args, search_spec
from engram.config import Settings
from engram.local.runtime import LocalRuntime, local_embedder
from engram.ports import Embedder

HEADLINE_K = 10
# Baselines whose items are whole sessions: citing every turn of a session, a turn
# recall would be the session recall again, so none is reported.
SESSION_LEVEL = {"bm25_sessions"}


def user_of(q: Question) -> str:
    return f"lme-{q.question_id}"


# --- metrics (LongMemEval's definitions) ------------------------------------------------


def dcg(gains: list[float]) -> float:
    """LongMemEval's DCG: the first two ranks undiscounted, rank r (1-based) over log2 r."""
    return sum(g if r == 0 else g / math.log2(r + 1) for r, g in enumerate(gains))


def ndcg_any(ranked: list[set[str]], answer: set[str], k: int) -> float:
    """Session nDCG@k over a list whose items each cite a set of sessions. An item gains 1
    when it is the first to cite one of the answer sessions (a memory may cite several; a
    session cited again gains nothing), so a list of whole sessions scores exactly as
    LongMemEval scores its session retriever; the ideal puts each answer session at a rank
    of its own."""
    seen: set[str] = set()
    gains = []
    for cited in ranked[:k]:
        new = (cited & answer) - seen
        gains.append(1.0 if new else 0.0)
        seen |= new
    ideal = dcg([1.0] * min(len(answer), k))
    return dcg(gains) / ideal if ideal else 0.0


def session_recall(cited: set[str], answer: set[str]) -> tuple[float, float]:
    """recall_any, recall_all: does the top k cite one, or every, answer session."""
    return float(bool(cited & answer)), float(answer <= cited)


def turn_recall_all(covered: set[str], evidence: set[str]) -> float | None:
    """Every `has_answer` turn cited; None when the question marks none (not counted)."""
    return float(evidence <= covered) if evidence else None


def per_question(q: Question, retrieved: list[Retrieved], k: int) -> dict:
    top = retrieved[:k]
    covered = set().union(*(r.sources for r in top)) if top else set()
    answer = set(q.answer_session_ids)
    recall_any, recall_all = session_recall({session_of(m) for m in covered}, answer)
    ranked = [{session_of(m) for m in r.sources} for r in top]
    return {"recall_any": recall_any, "recall_all": recall_all,
            "turn_recall_all": turn_recall_all(covered, set(q.evidence_turns)),
            "ndcg_any": ndcg_any(ranked, answer, k),
            "words": sum(r.words for r in top),
            "sources_per_memory": statistics.mean(len(r.sources) for r in top) if top else 0.0}


def summary(rows: list[dict], turn_level: bool = True) -> dict:
    def mean(key: str, digits: int = 4) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return round(statistics.mean(values), digits) if values else None

    return {"n": len(rows), "recall_any": mean("recall_any"), "recall_all": mean("recall_all"),
            "turn_recall_all": mean("turn_recall_all") if turn_level else None,
            "turn_n": sum(1 for r in rows if r["turn_recall_all"] is not None),
            "ndcg_any": mean("ndcg_any"), "words": mean("words", 1),
            "sources_per_memory": mean("sources_per_memory", 3)}


def metrics(run: SystemRun, questions: list[Question], ks: list[int]) -> dict:
    """For each k: over all questions, and per question_type."""
    turn_level = run.name not in SESSION_LEVEL
    out: dict = {}
    for k in ks:
        rows = [per_question(q, r, k) for q, r in zip(questions, run.results, strict=True)]
        by_type: dict[str, list[dict]] = {}
        for q, row in zip(questions, rows, strict=True):
            by_type.setdefault(q.question_type, []).append(row)
        out[f"@{k}"] = {"all": summary(rows, turn_level),
                        **{t: summary(v, turn_level) for t, v in sorted(by_type.items())}}
    out["latency_ms"] = {"p50": round(statistics.median(run.latencies_ms), 2),
                         "p95": round(percentile(run.latencies_ms, 95), 2)}
    return out


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# --- Engram -----------------------------------------------------------------------------


def ingest(runtime: LocalRuntime, questions: list[Question]) -> dict:
    """Every haystack session one sync add, in order, each question as its own user."""
    turns = 0
    started = time.perf_counter()
    for q in questions:
        for s in q.sessions:
            req = AddMessageRequest(
                user_id=user_of(q), conversation_id=s.session_id, async_mode=False,
                messages=[{"role": t.role, "content": t.text, "chat_time": s.chat_time,
                           "message_id": t.message_id} for t in s.turns])
            result = runtime.services.ingest.accept(TENANT, *accept_args(req))
            if result.status != "completed":
                raise RuntimeError(f"ingest of {q.question_id} session {s.session_id} failed")
            turns += len(s.turns)
    seconds = time.perf_counter() - started
    return {"turns": turns, "sessions": sum(len(q.sessions) for q in questions),
            "clients": 1, "seconds": round(seconds, 2),
            "turns_per_second": round(turns / seconds, 1)}


def engram_search(runtime: LocalRuntime, depth: int, reference_times: dict[str, str]
                  ) -> Callable[[str, str], list[Retrieved]]:
    """search/memory as a user calls it: `depth` facts and `depth` preferences (25 at most,
    the API's cap), the two lists merged as bench.locomo merges them (each keeps its order,
    the better head first), then cut to `depth`."""
    limit = min(depth, 25)
    def search(user: str, question: str) -> list[Retrieved]:
        fields = {"query": question, "user_id": user, "memory_limit_number": limit,
                  "preference_limit_number": limit, "include_preference": True}
        if user in reference_times:
            fields["reference_time"] = reference_times[user]
        found = runtime.services.search.search(TENANT, search_spec(SearchRequest(**fields)))
        ranked = merged(found.facts, found.preferences)[:depth]
        return [Retrieved(frozenset(s.memory.sources), len(s.memory.memory_value.split()))
                for s in ranked]

    return search


# --- baselines --------------------------------------------------------------------------


def baseline_searches(questions: list[Question], embedder: Embedder, depth: int
                      ) -> dict[str, Callable[[str, str], list[Retrieved]]]:
    """Raw turns (all, or the user's only) and whole sessions, per question's haystack."""
    per_user = {}
    for q in questions:
        turns = q.turns
        user_turns = [t for t in turns if t.role == "user"]
        every = [Retrieved(frozenset([t.message_id]), len(t.text.split())) for t in turns]
        users = [Retrieved(frozenset([t.message_id]), len(t.text.split())) for t in user_turns]
        sessions = [Retrieved(frozenset(t.message_id for t in s.turns), s.words)
                    for s in q.sessions]
        per_user[user_of(q)] = {
            "every": every, "users": users, "sessions": sessions,
            "bm25_every": BM25([t.text for t in turns]),
            "bm25_users": BM25([t.text for t in user_turns]),
            "dense_users": Dense([t.text for t in user_turns], embedder),
            "bm25_sessions": BM25([" ".join(t.text for t in s.turns) for s in q.sessions])}

    def ranked(items: str, rank: Callable[[dict, str], list[int]]
               ) -> Callable[[str, str], list[Retrieved]]:
        def search(user: str, q: str) -> list[Retrieved]:
            mine = per_user[user]
            return [mine[items][i] for i in rank(mine, q)[:depth]]
        return search

    return {
        "bm25_turns": ranked("every", lambda m, q: m["bm25_every"].rank(q, depth)),
        "bm25_user_turns": ranked("users", lambda m, q: m["bm25_users"].rank(q, depth)),
        "dense_user_turns": ranked("users", lambda m, q: m["dense_users"].rank(q, depth)),
        # each side brings the `depth` turns it would return alone (bench.locomo fuses 100
        # each; here, ~230 user turns a question, that favours long turns both rank midway:
        # session recall_all@10 0.833 with 1,025 words, against 0.867 with 431)
        "rrf_user_turns": ranked("users", lambda m, q: rrf(
            m["bm25_users"].rank(q, depth), m["dense_users"].rank(q, depth))),
        "bm25_sessions": ranked("sessions", lambda m, q: m["bm25_sessions"].rank(q, depth)),
    }


# --- report -----------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def best_baseline(systems: dict) -> tuple[list[str], float]:
    """The highest session recall_all@10 among the baselines, and every one that has it."""
    scores = {n: m[f"@{HEADLINE_K}"]["all"]["recall_all"] for n, m in systems.items()
              if n != "engram"}
    best = max(scores.values())
    return [n for n, score in scores.items() if score == best], best


def report(results: dict, ks: list[int]) -> str:
    systems = results["systems"]
    engram_p50 = systems["engram"]["latency_ms"]["p50"]
    ingest = results["ingest"]
    types = [t for t in systems["engram"][f"@{HEADLINE_K}"] if t != "all"]
    best, best_score = best_baseline(systems)
    lines = [
        "# LongMemEval retrieval benchmark",
        "",
        f"Data: `{results['data']}` ({results['questions']} questions, abstention ones left "
        f"out; by type: " + ", ".join(
            f"{t} {systems['engram'][f'@{HEADLINE_K}'][t]['n']}" for t in types) + "). "
        f"Model: {results['model']}. Hardware: {results['hardware']['cpu']}, "
        f"{results['hardware']['cores']} cores. Reference time passed to search: "
        f"{'each question_date' if results['reference_time'] == 'question' else 'none (now)'}.",
        f"Engram ingest: {ingest['turns']} turns ({ingest['sessions']} sync adds, one per "
        f"session) in {ingest['seconds']} s = {ingest['turns_per_second']} turns/s "
        f"({results['extractor']}, one client).",
        f"Best baseline by session recall_all@{HEADLINE_K} (`baseline_best`): "
        f"{best_score:.3f}, " + ", ".join(best) + ".",
        "",
        "Session recall (the sessions the top k cite, against `answer_session_ids`), turn "
        "recall_all (every `has_answer` turn cited), session ndcg_any, words and source turns "
        "per item in the top k:",
        "",
        "| system | " + " | ".join(f"sess any@{k}" for k in ks) + " | "
        + " | ".join(f"sess all@{k}" for k in ks) + " | "
        + " | ".join(f"turn all@{k}" for k in ks) + f" | ndcg_any@{HEADLINE_K} | "
        f"words@{HEADLINE_K} | sources/item@{HEADLINE_K} | p50 ms | p95 ms | p50 vs Engram |",
        "|---|" + "---|" * (3 * len(ks) + 6),
    ]
    for name, m in systems.items():
        top = {k: m[f"@{k}"]["all"] for k in ks}
        ten = top[HEADLINE_K]
        lines.append(
            f"| {name} | " + " | ".join(fmt(top[k]["recall_any"]) for k in ks) + " | "
            + " | ".join(fmt(top[k]["recall_all"]) for k in ks) + " | "
            + " | ".join(fmt(top[k]["turn_recall_all"]) for k in ks)
            + f" | {fmt(ten['ndcg_any'])} | {ten['words']:,.0f} | "
            f"{ten['sources_per_memory']:.2f} | {m['latency_ms']['p50']:.1f} | "
            f"{m['latency_ms']['p95']:.1f} | {m['latency_ms']['p50'] / engram_p50:.2f}× |")
    for key, title in (("recall_all", "Session recall_all"),
                       ("turn_recall_all", "Turn recall_all")):
        lines += ["", f"{title}@{HEADLINE_K} by question type:", "",
                  "| system | " + " | ".join(types) + " |", "|---|" + "---|" * len(types)]
        for name, m in systems.items():
            lines.append(f"| {name} | " + " | ".join(
                fmt(m[f"@{HEADLINE_K}"][t][key]) for t in types) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/eval/longmemeval-s-dev"),
                        help="a directory of per-question JSON files, or one JSON list")
    parser.add_argument("--out", type=Path, default=Path("bench/results/lme"))
    parser.add_argument("--types", default="", help="question types, comma-separated")
    parser.add_argument("--limit", type=int, default=None,
                        help="N questions, taken in turn from each type")
    parser.add_argument("--k", default="5,10,20")
    parser.add_argument("--reference-time", choices=("question", "now"), default="question",
                        help="search with each question_date as reference_time, or without")
    args = parser.parse_args(argv)
    ks = sorted({*(int(k) for k in args.k.split(",")), HEADLINE_K})
    depth = max(ks)
    types = [t.strip() for t in args.types.split(",") if t.strip()]

    questions = select(load(args.data), types, args.limit)
    if not questions:
        parser.error("no questions to ask")
    asks = [(user_of(q), q.question) for q in questions]

    embedder = local_embedder(Settings())  # what `engram serve` runs (ENGRAM_EMBEDDER)
    embedder.warm_up()
    with fresh_runtime(embedder) as runtime:
        ingest_stats = ingest(runtime, questions)
        search = engram_search(runtime, depth, {user_of(q): q.question_date for q in questions}
                               if args.reference_time == "question" else {})
        runs = [SystemRun("engram", *timed(search, asks))]
    for name, baseline in baseline_searches(questions, embedder, depth).items():
        runs.append(SystemRun(name, *timed(baseline, asks)))

    results = {
        "data": str(args.data),
        "questions": len(questions),
        "question_ids": [q.question_id for q in questions],
        "model": embedder.model_name,
        "extractor": "rule-based extractor",
        "reference_time": args.reference_time,
        "hardware": hardware(),
        "ingest": ingest_stats,
        "systems": {run.name: metrics(run, questions, ks) for run in runs},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    (args.out / "report.md").write_text(report(results, ks))
    print(report(results, ks))
    engram = results["systems"]["engram"][f"@{HEADLINE_K}"]["all"]
    _, best = best_baseline(results["systems"])
    print(f"lme_sess_all@10={engram['recall_all']:.3f} "
          f"lme_turn_all@10={fmt(engram['turn_recall_all'])} baseline_best={best:.3f} "
          f"words@10={engram['words']:.0f} "
          f"p50_ms={results['systems']['engram']['latency_ms']['p50']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
