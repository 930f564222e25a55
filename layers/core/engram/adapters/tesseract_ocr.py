"""OCR with the tesseract program (Debian's tesseract-ocr): the local profile's Ocr port.

The image goes in on stdin and the text comes out on stdout: no temporary files. English,
plus Simplified Chinese when its traineddata is installed (MemOS users write both).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

from engram.errors import CapabilityUnavailable, ParseError

TIMEOUT_S = 120.0  # a dense, full-page scan takes a few seconds; a hung process must not stall


class TesseractOcr:
    name = "tesseract"

    def __init__(
        self,
        *,
        binary: str = "tesseract",
        languages: str | None = None,
        timeout_s: float = TIMEOUT_S,
    ):
        self.binary = binary
        self.languages = languages
        self.timeout_s = timeout_s

    def image_text(self, image: bytes) -> str:
        path = shutil.which(self.binary)
        if path is None:
            raise CapabilityUnavailable(
                "image text recognition unavailable: tesseract is not installed")
        languages = self.languages or default_languages(path)
        # One thread: tesseract's OpenMP threads only spin against each other on small hosts.
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        try:
            run = subprocess.run(
                [path, "stdin", "stdout", "-l", languages, "--psm", "3"],
                input=image,
                capture_output=True,
                timeout=self.timeout_s,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ParseError(f"OCR took over {self.timeout_s:g} s on one image") from exc
        if run.returncode != 0:
            reason = run.stderr.decode("utf-8", errors="replace").strip().splitlines()
            raise ParseError(f"OCR failed: {reason[-1] if reason else f'exit {run.returncode}'}")
        return run.stdout.decode("utf-8", errors="replace").replace("\f", "").strip()

    @staticmethod
    def available(binary: str = "tesseract") -> bool:
        return shutil.which(binary) is not None


@functools.cache
def default_languages(path: str) -> str:
    """eng, with chi_sim added when installed (tesseract-ocr-chi-sim)."""
    run = subprocess.run([path, "--list-langs"], capture_output=True, timeout=30, check=False)
    installed = set(run.stdout.decode("utf-8", errors="replace").split())
    return "+".join(lang for lang in ("eng", "chi_sim") if lang in installed) or "eng"
