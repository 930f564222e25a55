"""Schema-generated requests against a live `engram serve`: schemathesis reads the server's
own /v1/openapi.json (the MemOS and the EverOS routes) and sends valid and invalid
requests with the API key; every response is checked for a 5xx and for a status the
document does not declare for that operation.

    python -m bench.fuzz                          # its own fresh server, >= 5,000 requests
    python -m bench.fuzz --url http://127.0.0.1:8000 --api-key KEY --examples 50

Prints the requests sent, counts by status and by operation, and each failure; exits
non-zero on any failure. schemathesis runs from .venv-fuzz (scripts/setup_fuzz_venv.sh
makes it). tests/integration/test_fuzz.py runs a short version of the same in the suite.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "scripts" / "setup_fuzz_venv.sh"
VENV = Path(os.environ.get("ENGRAM_FUZZ_VENV", ROOT / ".venv-fuzz"))
CHECKS = ("not_a_server_error", "status_code_conformance")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass
class FuzzResult:
    exit_code: int
    requests: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_operation: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    # (check, operation, status, what was sent, what came back), one per failed case
    failures: list[tuple[str, str, int | None, str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # schemathesis' own, not the API's
    undeclared: set[tuple[str, int]] = field(default_factory=set)  # beyond the document
    seconds: float = 0.0
    output: str = ""

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.by_status.items() if status >= 500)


def schemathesis() -> Path:
    """.venv-fuzz's schemathesis, the venv made (or found up to date) first."""
    proc = subprocess.run(["bash", str(SETUP)], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{SETUP} failed:\n{proc.stdout}\n{proc.stderr}")
    return VENV / "bin" / "schemathesis"


def declared_statuses(document: dict) -> dict[str, set[int]]:
    """'POST /v1/add/message' → the statuses the document declares for it."""
    out = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                out[f"{method.upper()} {path}"] = {int(s) for s in item[method]["responses"]}
    return out


def run(base_url: str, api_key: str, *, examples: int, phases: str = "examples,fuzzing",
        workers: int = 1, seed: int | None = None, checks: tuple[str, ...] = CHECKS,
        max_seconds: int | None = None, report_dir: Path | None = None) -> FuzzResult:
    """schemathesis against `base_url` (the server root): `examples` cases per operation
    and phase. Returns what was sent and received, from schemathesis' NDJSON report."""
    program = schemathesis()
    schema_url = f"{base_url}/v1/openapi.json"
    with urllib.request.urlopen(schema_url, timeout=30) as response:
        document = json.load(response)
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(report_dir or scratch) / "events.ndjson"
        command = [str(program), "--no-color", "run", schema_url,
                   "--url", base_url, "-H", f"Authorization: Token {api_key}",
                   "--checks", ",".join(checks), "--max-examples", str(examples),
                   "--phases", phases, "--workers", str(workers),
                   "--report", "ndjson", "--report-ndjson-path", str(report),
                   "--request-timeout", "60", "--output-truncate", "true",
                   "--suppress-health-check", "all", "--continue-on-failure",
                   "--generation-database", "none"]
        if seed is not None:
            command += ["--seed", str(seed)]
        if max_seconds is not None:
            command += ["--max-time", str(max_seconds)]
        started = time.monotonic()
        proc = subprocess.run(command, cwd=scratch, capture_output=True, text=True)
        result = FuzzResult(exit_code=proc.returncode, seconds=time.monotonic() - started,
                            output=proc.stdout[-20_000:] + proc.stderr[-5_000:])
        if report.exists():
            _read_events(report, result, declared_statuses(document))
    return result


def _read_events(report: Path, result: FuzzResult, declared: dict[str, set[int]]) -> None:
    for line in report.read_text().splitlines():
        event = json.loads(line)
        if "NonFatalError" in event or "FatalError" in event:
            error = event.get("NonFatalError") or event.get("FatalError")
            result.errors.append(f"{error.get('label', '')}: {error.get('value', error)}"[:600])
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        for case_id, interaction in (recorder.get("interactions") or {}).items():
            label = _label(interaction["request"], recorder["label"])
            status = interaction["response"]["status_code"] if interaction.get("response") \
                else None
            result.requests += 1
            if status is not None:
                result.by_status[status] += 1
                result.by_operation[label][status] += 1
                if label in declared and status not in declared[label]:
                    result.undeclared.add((label, status))
            for check in (recorder.get("checks") or {}).get(case_id, []):
                if check["status"] == "failure":
                    result.failures.append((check["name"], label, status,
                                            _shown(interaction["request"]),
                                            _shown(interaction.get("response") or {})))


def _label(request: dict, fallback: str) -> str:
    """The operation a request went to, as `METHOD /path` of the document (a request with
    another method, from the coverage phase, keeps its own method)."""
    method = request["method"].upper()
    return f"{method} {fallback.split(' ', 1)[1]}" if " " in fallback else fallback


def _shown(message: dict) -> str:
    raw = message.get("body") or message.get("content") or {}
    data = base64.b64decode(raw["$base64"]) if isinstance(raw, dict) and "$base64" in raw \
        else str(raw).encode()
    head = f"{message.get('method', '')} {message.get('uri', '')}".strip() or \
        str(message.get("status_code", ""))
    return f"{head} {data[:300]!r}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def fresh_server() -> Iterator[tuple[str, str]]:
    """A new `engram serve` with an empty data directory and a key of its own."""
    key = f"fuzz-{secrets.token_hex(16)}"
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
        env.update(PYTHONPATH=str(ROOT / "layers" / "core"), ENGRAM_API_KEYS=f"{key}:fuzz")
        log = open(Path(data) / "server.log", "wb")  # noqa: SIM115 (closed below)
        process = subprocess.Popen(
            [sys.executable, "-m", "engram.cli", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--data-dir", str(Path(data) / "engram")],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("engram serve did not start: "
                                       + (Path(data) / "server.log").read_text()[-3000:])
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=1):
                        break
                except OSError:
                    time.sleep(0.2)
            yield url, key
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def report(result: FuzzResult) -> str:
    lines = [f"requests: {result.requests} in {result.seconds:.0f} s "
             f"(schemathesis exit code {result.exit_code})",
             "by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(result.by_status.items())),
             f"responses >= 500: {result.server_errors}",
             f"statuses the document does not declare: {sorted(result.undeclared) or 'none'}",
             "by operation:"]
    for label in sorted(result.by_operation):
        counts = result.by_operation[label]
        lines.append(f"  {label}: " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    by_check = Counter((check, label, status) for check, label, status, _, _ in result.failures)
    lines.append(f"failures: {len(result.failures)}")
    for (check, label, status), n in sorted(by_check.items(), key=str):
        example = next(f for f in result.failures if f[:3] == (check, label, status))
        lines.append(f"  {n} x {check}: {label} -> {status}\n      sent {example[3]}\n"
                     f"      got  {example[4]}")
    if result.errors:
        lines.append(f"schemathesis errors (its own, not responses): {len(result.errors)}")
        lines.extend(f"  {e}" for e in result.errors[:10])
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server's root (default: start a fresh one)")
    parser.add_argument("--api-key", help="its API key (with --url)")
    parser.add_argument("--examples", type=int, default=150,
                        help="cases per operation and phase (default 150: ~6,000 requests)")
    parser.add_argument("--phases", default="examples,coverage,fuzzing")
    # 1: hypothesis in threads hits a CPython 3.11 AST bug in the coverage phase
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--checks", default=",".join(CHECKS))
    parser.add_argument("--min-requests", type=int, default=5000,
                        help="fail when fewer requests were sent")
    args = parser.parse_args()

    def go(url: str, key: str) -> FuzzResult:
        return run(url, key, examples=args.examples, phases=args.phases,
                   workers=args.workers, seed=args.seed, checks=tuple(args.checks.split(",")))

    if args.url:
        if not args.api_key:
            parser.error("--url needs --api-key")
        result = go(args.url.rstrip("/"), args.api_key)
    else:
        with fresh_server() as (url, key):
            result = go(url, key)
    print(report(result))
    if result.requests < args.min_requests:
        print(f"FAILED: {result.requests} requests, fewer than {args.min_requests}")
        return 1
    return 1 if result.failures or result.server_errors or result.undeclared else 0


if __name__ == "__main__":
    sys.exit(main())
