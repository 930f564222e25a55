"""Shared fixtures. `engram_server` starts a real `engram serve` on a free port with a
temporary data directory, and talks plain HTTP to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "test-key-tenant-a-0123456789"
OTHER_KEY = "test-key-tenant-b-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class EngramServer:
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    api_key: str = API_KEY
    other_key: str = OTHER_KEY

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Token {key or self.api_key}", "Content-Type": "application/json"}

    def post(self, route: str, body: dict, key: str | None = None, **kw) -> requests.Response:
        return requests.post(f"{self.base_url}/{route}", json=body, headers=self.headers(key),
                             timeout=kw.pop("timeout", 60), **kw)

    def start(self) -> None:
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engram.cli", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--data-dir", str(self.data_dir)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"engram serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.root_url}/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError(f"engram serve did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def wait_task(self, task_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.post("get/status", {"task_id": task_id}).json()["data"]
            if data["status"] in ("completed", "failed"):
                return data
            time.sleep(0.1)
        raise TimeoutError(task_id)


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    env["PYTHONPATH"] = str(ROOT / "layers" / "core")
    env["ENGRAM_API_KEYS"] = f"{API_KEY}:tenant-a,{OTHER_KEY}:tenant-b"
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def engram_server(tmp_path_factory) -> EngramServer:
    """One server for the session; tests isolate themselves by user_id."""
    server = EngramServer(data_dir=tmp_path_factory.mktemp("engram") / "data", env=server_env())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_server(tmp_path) -> EngramServer:
    """A server of the test's own, for restart and first-start behaviour."""
    server = EngramServer(data_dir=tmp_path / "data", env=server_env())
    yield server
    server.stop()


@pytest.fixture
def local_runtime(tmp_path):
    """The local profile's services over SQLite in a temp dir, with the hashing embedder
    (fast, deterministic); the API key "k" is tenant-a's."""
    from tests.fakes.embedder import HashingEmbedder  # noqa: PLC0415

    from engram.config import Settings  # noqa: PLC0415
    from engram.local.runtime import build_local_runtime  # noqa: PLC0415

    runtime = build_local_runtime(Settings(data_dir=tmp_path, api_keys={"k": "tenant-a"}),
                                  embedder=HashingEmbedder())
    yield runtime
    runtime.close()


def find_python312() -> str | None:
    """A CPython 3.12 (the Lambda functions' runtime), as scripts/sam_build.sh finds it."""
    try:
        found = subprocess.run(["python3.12", "-c", "import sys; print(sys.executable)"],
                               capture_output=True, text=True, timeout=30)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    except OSError:
        pass
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(pyenv_root.glob("versions/3.12*/bin/python3.12"))
    candidates += [Path("/usr/bin/python3.12"), Path("/usr/local/bin/python3.12")]
    return next((str(c) for c in candidates if c.is_file()), None)


@pytest.fixture(scope="session")
def sam_build(request, tmp_path_factory) -> tuple[Path, str]:
    """`sam build` of template.yaml as `make sam-build` runs it (scripts/sam_build.sh:
    python3.12, no container, the size check), once per session, with the model exported
    into pytest's cache; returns the build directory and the python3.12 it used. A
    failure to build fails the test: never a skip."""
    from engram.adapters.onnx_embedder import export_minilm_onnx

    model_dir = Path(request.config.cache.mkdir("onnx-minilm"))
    export_minilm_onnx(model_dir, quantize=True)  # a no-op once exported
    python312 = find_python312()
    if python312 is None:
        pytest.fail("no python3.12 (the functions' runtime) to build the layer with",
                    pytrace=False)
    root = Path(__file__).resolve().parents[1]
    setup = subprocess.run(["bash", str(root / "scripts" / "setup_sam_venv.sh")], cwd=root,
                           capture_output=True, text=True, timeout=900)
    if setup.returncode != 0:
        pytest.fail(f"setup_sam_venv.sh failed\n{setup.stdout}\n{setup.stderr}", pytrace=False)
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    env = dict(os.environ, PYTHON312=python312, ENGRAM_PYTHON=sys.executable,
               ENGRAM_MODEL_DIR=str(model_dir), HOME=str(build_dir.parent))
    proc = subprocess.run(["bash", str(root / "scripts" / "sam_build.sh"), str(build_dir)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    if not (build_dir / "template.yaml").is_file():
        pytest.fail(f"sam build failed (exit {proc.returncode})\n{proc.stdout[-4000:]}\n"
                    f"{proc.stderr[-4000:]}", pytrace=False)
    return build_dir, python312
