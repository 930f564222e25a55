"""Mixed load on a real `engram serve`: search latency while ingesting.

    python -m bench.load --data ../shared/eval/locomo-dev.json --duration 60 --clients 8

Starts `engram serve` (the code under --core, default this repository's layers/core) on a
temporary data directory, seeds it with the first sessions of every LoCoMo conversation
(one user per conversation, sync adds), then runs `--clients` threads for `--duration`
seconds, each on its own keep-alive connection: `--search-share` of the requests are
`search/memory` with that data's questions, the rest async `add/message` of the next turns
of a conversation (a couple at a time, as a chat app sends them). Reports per operation
p50/p95/p99 latency, req/s and errors (any non-2xx, envelope code ≠ 0 or exception), the
share of searches that found memories, and how many of the adds' tasks had completed by
the end, into OUT/load.json and OUT/load.md (and prints the report). The data set is read
at run time, never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.locomo_data import Conversation, Turn, load

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-load-key-0123456789"
TENANT = "bench"
IDLE_SEARCHES = 60


@dataclass
class Sample:
    op: str
    ms: float
    ok: bool
    error: str = ""


@dataclass
class Feed:
    """The turns still to send, per user, in order; wraps around (a new conversation id and
    message ids per round) when a conversation runs out during a long run."""

    conversations: list[Conversation]
    start_session: int
    turns_per_add: int
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cursor: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._turns = {c.sample_id: [(n, t) for n, turns in c.sessions
                                     if n > self.start_session for t in turns]
                       or [(n, t) for n, turns in c.sessions for t in turns]
                       for c in self.conversations}

    def next_add(self, user: str) -> dict:
        turns = self._turns[user]
        with self._lock:
            at = self._cursor.get(user, 0)
            self._cursor[user] = at + self.turns_per_add
        picked = [(turns[i % len(turns)], self._round(i // len(turns)))
                  for i in range(at, at + self.turns_per_add)]
        (session, _), suffix = picked[0]
        return {"user_id": user, "conversation_id": f"session_{session}{suffix}",
                "async_mode": True,
                "messages": [message(turn, suffix) for (_, turn), suffix in picked]}

    @staticmethod
    def _round(number: int) -> str:
        return f"-r{number}" if number else ""


def message(turn: Turn, suffix: str = "") -> dict:
    return {"role": "user", "content": turn.text, "name": turn.speaker,
            "chat_time": turn.chat_time, "message_id": f"{turn.dia_id}{suffix}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`engram serve` as a child process on a temporary data directory."""

    def __init__(self, core: Path, data_dir: Path, extra_env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
        self.env.update({"PYTHONPATH": str(core), "ENGRAM_API_KEYS": f"{API_KEY}:{TENANT}"})
        self.env.update(extra_env)
        self.log = data_dir.parent / "server.log"
        self.command = [sys.executable, "-m", "engram.cli", "serve", "--host", "127.0.0.1",
                        "--port", str(self.port), "--data-dir", str(data_dir)]
        self.cwd = data_dir.parent
        self.process: subprocess.Popen | None = None

    def engram_path(self) -> str:
        """Which engram package the server imports (the --core given, not an install)."""
        return subprocess.run([sys.executable, "-c", "import engram; print(engram.__file__)"],
                              env=self.env, cwd=self.cwd, capture_output=True, text=True,
                              check=True).stdout.strip()

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, env=self.env, cwd=self.cwd,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"engram serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(0.3)
        raise RuntimeError(f"engram serve did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def session(url: str) -> requests.Session:
    s = requests.Session()
    s.headers.update({"Authorization": f"Token {API_KEY}",
                      "Content-Type": "application/json"})
    s.base = url  # type: ignore[attr-defined]
    return s


def post(s: requests.Session, route: str, body: dict, timeout: float = 120) -> dict:
    response = s.post(f"{s.base}/v1/{route}", json=body, timeout=timeout)  # type: ignore
    envelope = response.json()
    if response.status_code // 100 != 2 or envelope.get("code") != 0:
        raise RuntimeError(f"{route}: HTTP {response.status_code} {response.text[:200]}")
    return envelope["data"]


def seed(url: str, conversations: list[Conversation], sessions: int) -> int:
    """The first `sessions` sessions of every conversation, as sync adds, one client per
    user: searches then find memories from the start."""
    def send(conv: Conversation) -> int:
        s = session(url)
        sent = 0
        for number, turns in conv.sessions[:sessions]:
            post(s, "add/message", {"user_id": conv.sample_id,
                                    "conversation_id": f"session_{number}",
                                    "async_mode": False,
                                    "messages": [message(t) for t in turns]}, timeout=600)
            sent += len(turns)
        return sent

    with ThreadPoolExecutor(len(conversations)) as pool:
        return sum(pool.map(send, conversations))


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 \
        else [ordered[0]] * 99
    return {"count": len(values), "p50": round(cuts[49], 1), "p95": round(cuts[94], 1),
            "p99": round(cuts[98], 1), "mean": round(statistics.fmean(ordered), 1),
            "max": round(ordered[-1], 1)}


def idle_search(url: str, asks: list[tuple[str, str]]) -> dict:
    """One client, nothing else running: the reference the loaded figures compare with."""
    s = session(url)
    times = []
    for user, question in asks[:IDLE_SEARCHES]:
        started = time.perf_counter()
        post(s, "search/memory", {"user_id": user, "query": question})
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times[10:])  # the first few warm caches


def run_load(url: str, feed: Feed, asks: dict[str, list[str]], clients: int,
             duration: float, search_share: float, rng_seed: int
             ) -> tuple[list[Sample], list[str], int, float]:
    samples: list[Sample] = []
    task_ids: list[str] = []
    hits = [0]
    lock = threading.Lock()
    users = sorted(asks)
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(n: int) -> None:
        rng = random.Random(rng_seed * 1000 + n)
        s = session(url)
        mine: list[Sample] = []
        my_tasks: list[str] = []
        my_hits = 0
        start.wait()
        while time.perf_counter() < deadline[0]:
            user = rng.choice(users)
            search = rng.random() < search_share
            op = "search" if search else "add"
            body = ({"user_id": user, "query": rng.choice(asks[user])} if search
                    else feed.next_add(user))
            started = time.perf_counter()
            try:
                response = s.post(f"{url}/v1/{'search/memory' if search else 'add/message'}",
                                  json=body, timeout=60)
                ms = (time.perf_counter() - started) * 1000
                envelope = response.json()
                ok = response.status_code // 100 == 2 and envelope.get("code") == 0
                error = "" if ok else f"HTTP {response.status_code} {response.text[:160]}"
                if ok and search:
                    my_hits += bool(envelope["data"]["memory_detail_list"])
                elif ok:
                    my_tasks.append(envelope["data"]["task_id"])
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                ms = (time.perf_counter() - started) * 1000
                ok, error = False, f"{type(exc).__name__}: {exc}"[:200]
            mine.append(Sample(op, ms, ok, error))
        with lock:
            samples.extend(mine)
            task_ids.extend(my_tasks)
            hits[0] += my_hits

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + duration
    began = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    return samples, task_ids, hits[0], time.perf_counter() - began


def completed_share(url: str, task_ids: list[str]) -> dict:
    """How far ingest got during the run: the adds' tasks completed when it ended."""
    def status(chunk: list[str]) -> list[str]:
        s = session(url)
        return [post(s, "get/status", {"task_id": t})["status"] for t in chunk]

    chunks = [task_ids[i::4] for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        statuses = [x for part in pool.map(status, chunks) for x in part]
    counts = defaultdict(int)
    for value in statuses:
        counts[value] += 1
    return dict(counts)


def summarise(samples: list[Sample], seconds: float) -> dict:
    out = {}
    for op in ("search", "add"):
        mine = [s for s in samples if s.op == op]
        ok = [s.ms for s in mine if s.ok]
        out[op] = {**percentiles(ok), "errors": sum(not s.ok for s in mine),
                   "req_per_s": round(len(mine) / seconds, 1)}
    out["all"] = {"requests": len(samples), "errors": sum(not s.ok for s in samples),
                  "req_per_s": round(len(samples) / seconds, 1)}
    return out


def report(result: dict) -> str:
    c = result["config"]
    lines = [f"# Load: {c['clients']} clients, {c['duration_s']:.0f} s, "
             f"{c['search_share']:.0%} search ({result['label']})", "",
             f"server code: `{result['core']}`"
             + (f" at {result['commit']}" if result.get("commit") else ""),
             f"load average before/after: {result['loadavg_before']} / "
             f"{result['loadavg_after']}",
             *([f"CPU during the load: server {cpu['server']:.0%}, this client "
                f"{cpu['client']:.0%}, other processes {cpu['others']:.0%}"]
               if (cpu := result.get("cpu_share")) else []), "",
             "| op | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |",
             "|---|---|---|---|---|---|---|---|"]
    for op in ("search", "add"):
        m = result["ops"][op]
        lines.append(f"| {op} | {m['count'] + m['errors']} | {m['req_per_s']} | "
                     f"{m.get('p50', '-')} | {m.get('p95', '-')} | {m.get('p99', '-')} | "
                     f"{m.get('max', '-')} | {m['errors']} |")
    a = result["ops"]["all"]
    lines.append(f"| all | {a['requests']} | {a['req_per_s']} | | | | | {a['errors']} |")
    idle = result["idle_search"]
    lines += ["", f"idle search (one client, before the load): p50 {idle['p50']} ms, "
              f"p95 {idle['p95']} ms",
              f"searches that found memories: {result['search_hit_share']:.0%}",
              f"add tasks by status at the end: {result['add_tasks']}"]
    if result["error_samples"]:
        lines += ["", "first errors:", *[f"- {e}" for e in result["error_samples"]]]
    return "\n".join(lines) + "\n"


def busy_seconds() -> float | None:
    """CPU time the whole machine spent busy so far (Linux /proc/stat), in seconds."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int | None = None) -> float | None:
    """CPU time (user + system) of a process and its waited-for children so far."""
    try:
        fields = Path(f"/proc/{pid or 'self'}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cpu_shares(before: tuple, after: tuple, seconds: float) -> dict | None:
    """Of the machine's CPU during the load: what the server used, what this client
    used, and what other processes took (other jobs on a shared machine skew latency)."""
    if None in before or None in after:
        return None
    capacity = seconds * (os.cpu_count() or 1)
    busy, server, client = (a - b for a, b in zip(after, before, strict=True))
    return {"server": round(server / capacity, 3), "client": round(client / capacity, 3),
            "others": round(max(0.0, busy - server - client) / capacity, 3)}


def git_commit(path: Path) -> str | None:
    done = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    return done.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/eval/locomo-dev.json")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--search-share", type=float, default=0.7)
    parser.add_argument("--seed-sessions", type=int, default=3,
                        help="sessions per conversation added before the load")
    parser.add_argument("--turns-per-add", type=int, default=2)
    parser.add_argument("--core", type=Path, default=ROOT / "layers" / "core",
                        help="the engram code the server runs (its PYTHONPATH)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the server (repeatable)")
    parser.add_argument("--label", default="", help="a name for this run in the report")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the clients")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    conversations = load(args.data)
    asks = {c.sample_id: [q.question for q in c.questions] for c in conversations}
    ordered_asks = [(u, q) for qs in zip(*asks.values(), strict=False)
                    for u, q in zip(asks, qs, strict=True)]
    extra = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="engram-load-") as tmp:
        server = Server(args.core.resolve(), Path(tmp) / "data", extra)
        core = server.engram_path()
        server.start()
        try:
            seeded = seed(server.url, conversations, args.seed_sessions)
            idle = idle_search(server.url, ordered_asks)
            feed = Feed(conversations, args.seed_sessions, args.turns_per_add)
            loadavg_before = [round(x, 2) for x in os.getloadavg()]
            pid = server.process.pid if server.process else None
            cpu_before = (busy_seconds(), process_seconds(pid), process_seconds())
            samples, task_ids, hits, seconds = run_load(
                server.url, feed, asks, args.clients, args.duration, args.search_share,
                args.seed)
            cpu_after = (busy_seconds(), process_seconds(pid), process_seconds())
            loadavg_after = [round(x, 2) for x in os.getloadavg()]
            tasks = completed_share(server.url, task_ids)
        finally:
            server.stop()

    ops = summarise(samples, seconds)
    searches = ops["search"]["count"]
    result = {
        "label": args.label or "load",
        "core": core, "commit": git_commit(args.core),
        "config": {"clients": args.clients, "duration_s": round(seconds, 1),
                   "search_share": args.search_share, "turns_per_add": args.turns_per_add,
                   "seeded_turns": seeded, "users": len(conversations),
                   "server_env": extra, "data": str(args.data)},
        "hardware": {"cores": os.cpu_count(), "python": platform.python_version()},
        "loadavg_before": loadavg_before, "loadavg_after": loadavg_after,
        "cpu_share": cpu_shares(cpu_before, cpu_after, seconds),
        "idle_search": idle,
        "ops": ops,
        "search_hit_share": round(hits / searches, 3) if searches else 0.0,
        "add_tasks": tasks,
        "error_samples": sorted({s.error for s in samples if not s.ok})[:5],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result)
    (args.out / "load.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
