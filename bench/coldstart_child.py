"""One cold start, run by bench/coldstart.py in a fresh interpreter: import a function's
app.py as Lambda does, then invoke its handler once (and once more, warm). Prints one
JSON line. Only the standard library is imported before the timer starts, so the code
under test (PYTHONPATH) pays for everything it loads. Under SnapStart (`bench.coldstart
--snapstart` sets AWS_LAMBDA_INITIALIZATION_TYPE=snap-start) the snapshot hooks run
between the import and the first request, as Lambda runs them: `first_s` is then what a
restored environment does (the after-restore hooks and the request), the restore aside.

    python bench/coldstart_child.py FUNCTION_DIR EVENT_JSON_FILE
"""

import importlib.util
import json
import os
import resource
import sys
import time
import uuid


class Context:
    """What Powertools reads from the Lambda context."""

    function_name = "engram-bench"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:engram-bench"
    log_group_name = "/aws/lambda/engram-bench"
    log_stream_name = "2026/12/05/[$LATEST]bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    function_dir, event_file = sys.argv[1], sys.argv[2]
    with open(event_file) as handle:
        event = json.load(handle)
    cpu0, t0 = cpu(), time.perf_counter()
    spec = importlib.util.spec_from_file_location("app", f"{function_dir}/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    cpu1, t1 = cpu(), time.perf_counter()
    prime_s = prime_cpu_s = 0.0
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        # What Lambda's runtime does under SnapStart: the before-snapshot hooks (in
        # reverse order of registration) end the init that is snapshotted; a cold start
        # is then a restore, the after-restore hooks and the first request.
        import snapshot_restore_py as hooks

        for hook, args, kwargs in reversed(hooks._before_snapshot_registry):
            hook(*args, **kwargs)
        cpu1b, t1b = cpu(), time.perf_counter()
        prime_s, prime_cpu_s = t1b - t1, cpu1b - cpu1
        cpu1, t1 = cpu1b, t1b
        for hook, args, kwargs in hooks._after_restore_registry:
            hook(*args, **kwargs)
    first = module.lambda_handler(event, Context())
    cpu2, t2 = cpu(), time.perf_counter()
    module.lambda_handler(event, Context())
    t3 = time.perf_counter()
    print(json.dumps({
        "import_s": t1 - t0 - prime_s, "prime_s": prime_s, "first_s": t2 - t1,
        "warm_s": t3 - t2, "prime_cpu_s": prime_cpu_s,
        "import_cpu_s": cpu1 - cpu0 - prime_cpu_s, "first_cpu_s": cpu2 - cpu1,
        "modules": len(sys.modules), "response": first,
    }))


if __name__ == "__main__":
    main()
