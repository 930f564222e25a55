"""The official clients' test-only virtualenvs (tests/compat/setup_*.sh): made, or found
up to date, by their setup script before a compat test runs a flow in them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.conftest import ROOT


def output(proc: subprocess.CompletedProcess) -> str:
    return (f"exit code {proc.returncode}\n--- stdout ---\n{proc.stdout}\n"
            f"--- stderr ---\n{proc.stderr}")


def venv_python(script: str, venv: Path) -> Path:
    """The venv's python, after tests/compat/<script>; a failed setup fails the test,
    never a skip."""
    proc = subprocess.run(["bash", str(ROOT / "tests" / "compat" / script)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"tests/compat/{script} failed\n{output(proc)}", pytrace=False)
    python = venv / "bin" / "python"
    assert python.exists(), f"{script} succeeded but {python} is missing\n{output(proc)}"
    return python
