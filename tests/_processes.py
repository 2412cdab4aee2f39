"""Process helpers shared by the tests and bench/reliability.py: the processes a run started (found by a
tag in their environment), and the CLI in a fresh interpreter that cannot import torch."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

#: The environment variable that marks a run and every process it starts.
TAG_VAR = "PICINSPECTOR_TEST_TAG"

SRC = str(Path(__file__).resolve().parents[1] / "src")


def tagged(tag: str, var: str = TAG_VAR) -> list:
    """Every process still running whose environment carries ``var=tag`` (a run and all it started)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(var) == tag and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.Error, OSError):
            pass
    return found


def left_behind(tag: str, timeout: float = 10.0, var: str = TAG_VAR, poll: float = 0.05) -> list:
    """The processes of a tagged run still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    alive = tagged(tag, var)
    while alive and time.monotonic() < deadline:
        time.sleep(poll)
        alive = tagged(tag, var)
    return alive


#: ``python -c`` program: the picinspector CLI in an interpreter whose imports refuse torch, standing in
#: for a core install (no torch).
NO_TORCH_CLI = ("import sys, importlib.abc\n"
                "class NoTorch(importlib.abc.MetaPathFinder):\n"
                "    def find_spec(self, name, path=None, target=None):\n"
                "        if name == 'torch' or name.startswith('torch.'):\n"
                "            raise ImportError(f'No module named {name!r}')\n"
                "sys.meta_path.insert(0, NoTorch())\n"
                "sys.argv = ['picinspector'] + sys.argv[1:]\n"
                "from picinspector.cli import main\n"
                "main()\n")


def cli_without_torch(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``picinspector ARGS`` with torch blocked (this checkout's src/ first on the path)."""
    return subprocess.run([sys.executable, "-c", NO_TORCH_CLI, *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC, **env})
