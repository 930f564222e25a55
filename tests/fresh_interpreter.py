"""Code run in a new interpreter with the Lambda layout on its path (the core layer and
the repository), and none of this process's AWS, Engram or Powertools settings: for
checks where what gets imported is the point (tests/unit/test_coldstart.py,
tests/unit/test_snapstart.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# For code that calls a handler: the few attributes Powertools reads from Lambda's context.
LAMBDA_CONTEXT = """
class Context:
    function_name, memory_limit_in_mb, aws_request_id = "f", 1024, "r-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    def get_remaining_time_in_millis(self):
        return 29_000
"""


def fresh(code: str, **env: str) -> Any:
    """Runs `code`, which prints JSON on its last line, and returns that JSON."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("AWS_", "ENGRAM_", "POWERTOOLS_", "LAMBDA_"))}
    environment.update(PYTHONPATH=f"{ROOT / 'layers' / 'core'}:{ROOT}", **env)
    proc = subprocess.run([sys.executable, "-c", code], env=environment, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
