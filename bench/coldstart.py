"""Cold start of the Lambda functions: import of functions/<name>/app.py plus its first
request, each in a fresh interpreter, with the AWS calls answered by a moto server on
127.0.0.1 (so the child imports exactly what the function imports: no moto in it),
Bedrock's InvokeModel by a stand-in with Titan's answer shape and OpenSearch by the fake
of the tests, both on 127.0.0.1.

    python -m bench.coldstart [--runs 7] [--code before=/path/to/old/checkout ...] [--out DIR]
    python -m bench.coldstart --no-this --built before=DIR --built after=DIR \
        --python python3.12 --runtime-dir DIR_WITH_BOTO3

Each run of each scenario is a new process (bench/coldstart_child.py) that sees a Lambda
environment: LAMBDA_TASK_ROOT and an X-Ray trace header (so Powertools' tracer is on, as
deployed), the tables, bucket and state machine in moto. Scenarios (SCENARIOS): the API
function's first request is an async MemOS add, a search or a status request of an
unknown task; the authorizer's is a valid key. `--code LABEL=DIR` runs another
checkout's functions and layer (its functions/ and layers/core on PYTHONPATH), `--built
LABEL=DIR` a `sam build` output as Lambda lays it out, in the same loop, interleaved, so
a busy machine weighs on all alike. Wall times are medians over the runs; CPU times
(getrusage of the child) are steadier on a shared machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fakes.opensearch_server import FakeOpenSearch

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("coldstart_child.py")
REGION = "us-east-1"
TENANT = "tenant-a"
API_KEY = "eng_example-key-for-tenant-a-0123456789"  # the key events/ sends
PREFIX = "engram-bench"
# scenario: (function, events/<function>/<event>.json, the status code it must answer)
SCENARIOS = {
    "api-add": ("api", "add_message_async", 200),  # DynamoDB, S3, Bedrock, OpenSearch, SFN
    "api-search": ("api", "search_memory", 200),  # Bedrock, OpenSearch, DynamoDB
    "api-status": ("api", "get_status", 404),  # DynamoDB (an unknown task)
    "authorizer": ("authorizer", "valid_token", None),  # DynamoDB
}
TARGET_S = 0.3  # issue 17: API import + first request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto() -> tuple[Any, str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


class FakeTitan(BaseHTTPRequestHandler):
    """Bedrock's InvokeModel for Titan Text Embeddings V2 (moto has no Bedrock runtime):
    a unit vector of the asked dimension, derived from the text."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        seed = int(hashlib.sha256(body["inputText"].encode()).hexdigest()[:8], 16)
        raw = [((seed * (i + 1)) % 1000 - 500) / 500 for i in range(body["dimensions"])]
        norm = math.sqrt(sum(x * x for x in raw)) or 1.0
        answer = json.dumps({"embedding": [x / norm for x in raw],
                             "inputTextTokenCount": len(body["inputText"].split())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


def start_fake_titan() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTitan)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def create_resources(endpoint: str) -> dict[str, str]:
    """The tables, bucket and state machine the two functions touch, in the moto server;
    returns the function environment naming them."""
    import boto3

    from engram.adapters.dynamodb_tables import table_definitions
    from engram.services.keys import hash_key

    session = boto3.session.Session(region_name=REGION, aws_access_key_id="testing",
                                    aws_secret_access_key="testing")
    dynamodb = session.resource("dynamodb", endpoint_url=endpoint)
    names = {}
    for name, definition in table_definitions().items():
        spec = {k: v for k, v in definition.items() if k != "TimeToLiveSpecification"}
        names[name] = dynamodb.create_table(TableName=f"{PREFIX}-{name}", **spec).name
    names["idempotency"] = dynamodb.create_table(
        TableName=f"{PREFIX}-idempotency", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}]).name
    dynamodb.Table(names["api_keys"]).put_item(
        Item={"pk": hash_key(API_KEY), "tenant_id": TENANT, "label": "bench"})
    session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=f"{PREFIX}-bucket")
    machine = session.client("stepfunctions", endpoint_url=endpoint).create_state_machine(
        name=f"{PREFIX}-ingest", roleArn="arn:aws:iam::123456789012:role/engram-bench",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    return {
        "ENGRAM_TASKS_TABLE": names["tasks"], "ENGRAM_API_KEYS_TABLE": names["api_keys"],
        "ENGRAM_RECORDS_TABLE": names["records"],
        "ENGRAM_IDEMPOTENCY_TABLE": names["idempotency"],
        "ENGRAM_BUCKET": f"{PREFIX}-bucket", "ENGRAM_STATE_MACHINE_ARN": machine,
    }


def function_environment(endpoint: str, titan: str,
                         resources: dict[str, str]) -> dict[str, str]:
    """A Lambda function's environment, as template.yaml sets it, pointed at moto."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "ENGRAM_", "POWERTOOLS_", "_X_AMZN"))}
    env.update(resources)
    env.update({
        "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": titan,
        "AWS_LAMBDA_FUNCTION_NAME": "engram-bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        # Powertools' tracer is on in Lambda (LAMBDA_TASK_ROOT set); segments go to the
        # daemon address over UDP on loopback, where nothing listens.
        "_X_AMZN_TRACE_ID": "Root=1-6751c2a0-0123456789abcdef01234567;"
                            "Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "POWERTOOLS_SERVICE_NAME": "engram", "POWERTOOLS_METRICS_NAMESPACE": "EngramBench",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "ENGRAM_OPENSEARCH_SERVICE": "es",
        "ENGRAM_EMBEDDING_PROVIDER": "bedrock",
        "ENGRAM_TRANSCRIPTION": "disabled", "ENGRAM_JOB_PREFIX": "engram-bench",
    })
    return env


def check(scenario: str, response: dict[str, Any]) -> None:
    function, _, status = SCENARIOS[scenario]
    if function == "api":
        ok = response.get("statusCode") == status
    else:
        ok = response["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    if not ok:
        raise SystemExit(f"{scenario}: unexpected first response {json.dumps(response)[:500]}")


@dataclass
class Code:
    """What a child imports: a checkout (functions/<name>, layers/core) run by this
    interpreter, or a `sam build` output (<Name>Function/, CoreLayer/python) as Lambda
    lays it out, run by `python` with `runtime` (boto3 for that Python: the runtime's
    /var/runtime) after the layer, and no bytecode written (/opt is read-only)."""

    path: Path
    built: bool = False
    python: str = sys.executable
    runtime: Path | None = None
    snapstart: bool = False  # primed before a snapshot; a cold start is a restore

    def variant(self) -> Code:
        return replace(self, snapstart=True)

    def function_dir(self, function: str) -> Path:
        if self.built:
            return self.path / ("".join(p.title() for p in function.split("_")) + "Function")
        return self.path / "functions" / function

    def environment(self, function: str) -> dict[str, str]:
        function_dir = self.function_dir(function)
        init = {"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start" if self.snapstart
                else "on-demand"}
        if not self.built:
            return {**init, "LAMBDA_TASK_ROOT": str(function_dir),
                    "PYTHONPATH": f"{function_dir}:{self.path / 'layers' / 'core'}"}
        paths = [function_dir, self.path / "CoreLayer" / "python"]
        paths += [self.runtime] if self.runtime else []
        return {**init, "LAMBDA_TASK_ROOT": str(function_dir), "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": ":".join(str(p) for p in paths),
                "ENGRAM_EMBEDDING_MODEL_DIR": str(self.path / "CoreLayer" / "minilm-onnx")}


def run_once(scenario: str, code: Code, env: dict[str, str],
             cores: str | None) -> dict[str, Any]:
    function, event_name, _ = SCENARIOS[scenario]
    event = ROOT / "events" / function / f"{event_name}.json"
    function_dir = code.function_dir(function)
    child_env = dict(env, **code.environment(function))
    command = [code.python, str(CHILD), str(function_dir), str(event)]
    if cores:
        command = ["taskset", "-c", cores, *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, env=child_env, capture_output=True, text=True,
                          timeout=120, cwd=function_dir)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{scenario} at {code}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    check(scenario, result.pop("response"))
    result["process_wall_s"] = wall
    result["process_cpu_s"] = ((after.ru_utime - before.ru_utime)
                               + (after.ru_stime - before.ru_stime))
    if code.snapstart:  # the import and the priming happened when the version was published
        result["cold_s"], result["cold_cpu_s"] = result["first_s"], result["first_cpu_s"]
    else:
        result["cold_s"] = result["import_s"] + result["first_s"]
        result["cold_cpu_s"] = result["import_cpu_s"] + result["first_cpu_s"]
    return result


def summarise(results: list[dict[str, Any]]) -> dict[str, float]:
    keys = ("import_s", "prime_s", "first_s", "cold_s", "warm_s", "import_cpu_s",
            "first_cpu_s", "cold_cpu_s", "process_wall_s", "process_cpu_s", "modules")
    return {k: statistics.median(r[k] for r in results) for k in keys}


def table(summary: dict[str, dict[str, dict[str, float]]], runs: int) -> str:
    lines = [f"Medians of {runs} fresh processes (moto server for AWS; Powertools tracer on). "
             "A cold start is import + first request; under SnapStart (`+snapstart`) the "
             "import and the priming come before the snapshot, and a cold start is the "
             "restore (not measurable here) + the after-restore hooks + the first request.",
             "", "| function: first request | code | import s | priming s | first request s "
             "| cold start s | CPU cold start s | process CPU s | warm request s | modules |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for scenario, by_code in summary.items():
        for label, s in by_code.items():
            lines.append(
                f"| {scenario} | {label} | {s['import_s']:.3f} | {s['prime_s']:.3f} | "
                f"{s['first_s']:.3f} | **{s['cold_s']:.3f}** | {s['cold_cpu_s']:.3f} | "
                f"{s['process_cpu_s']:.3f} | {s['warm_s']:.4f} | {s['modules']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--code", action="append", default=[], metavar="LABEL=DIR",
                        help="another checkout to measure beside this one (repeatable)")
    parser.add_argument("--built", action="append", default=[], metavar="LABEL=BUILD_DIR",
                        help="a `sam build` output to measure (repeatable); needs --python "
                             "(a python3.12) and --runtime-dir (boto3 installed for it)")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter for --built outputs")
    parser.add_argument("--runtime-dir", type=Path,
                        help="for --built: boto3 and botocore for --python, as the Lambda "
                             "runtime provides them")
    parser.add_argument("--no-this", action="store_true", help="skip this checkout")
    parser.add_argument("--snapstart", action="store_true",
                        help="also run each code as under Lambda SnapStart (label+snapstart): "
                             "primed before a snapshot, timed from the restore")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--cores", help="taskset core list for the children, e.g. 0")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="set in the functions' environment (e.g. ENGRAM_EMBEDDING_PROVIDER"
                             "=onnx)")
    parser.add_argument("--out", type=Path, help="write coldstart.json and coldstart.md here")
    args = parser.parse_args(argv)
    codes = {} if args.no_this else {"this": Code(ROOT)}
    for entry in args.code:
        label, _, directory = entry.partition("=")
        codes[label] = Code(Path(directory).resolve())
    for entry in args.built:
        label, _, directory = entry.partition("=")
        codes[label] = Code(Path(directory).resolve(), built=True, python=args.python,
                            runtime=args.runtime_dir)
    if args.snapstart:
        codes.update({f"{label}+snapstart": code.variant() for label, code in list(codes.items())})
    scenarios = [f for f in args.scenarios.split(",") if f]

    server, endpoint = start_moto()
    titan, titan_endpoint = start_fake_titan()
    search = FakeOpenSearch().start()
    try:
        env = function_environment(endpoint, titan_endpoint, create_resources(endpoint))
        env["ENGRAM_OPENSEARCH_ENDPOINT"] = f"http://127.0.0.1:{search.port}"
        env.update(entry.split("=", 1) for entry in args.env)
        results: dict[str, dict[str, list[dict[str, Any]]]] = {
            s: {label: [] for label in codes} for s in scenarios}
        for scenario in scenarios:  # not measured: the index exists, files are cached
            for code in codes.values():
                run_once(scenario, code, env, args.cores)
        for run in range(args.runs):
            for scenario in scenarios:
                for label, code in codes.items():  # interleaved: same load on each
                    results[scenario][label].append(run_once(scenario, code, env, args.cores))
            print(f"run {run + 1}/{args.runs}", file=sys.stderr)
    finally:
        server.stop()
        titan.shutdown()
        search.stop()
    summary = {f: {label: summarise(rs) for label, rs in by.items()}
               for f, by in results.items()}
    report = table(summary, args.runs)
    print(report)
    print()
    for scenario in (s for s in scenarios if SCENARIOS[s][0] == "api"):
        for label, s in summary[scenario].items():
            verdict = "within" if s["cold_s"] <= TARGET_S else "over"
            restore = " + Lambda's restore, not measurable here" if "+snapstart" in label else ""
            print(f"{scenario} ({label}): cold start {s['cold_s']:.3f} s{restore} "
                  f"({verdict} the {TARGET_S} s target)")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "coldstart.json").write_text(json.dumps(
            {"runs": args.runs, "codes": {k: str(v.path) for k, v in codes.items()},
             "summary": summary, "results": results}, indent=2) + "\n")
        (args.out / "coldstart.md").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
