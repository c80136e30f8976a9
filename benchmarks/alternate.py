"""Time two checkouts alternately in subprocesses, so both see the same machine load (the machines are noisy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]  # this checkout


def alternate(script: str, baseline: Path, passed: list[str], rounds: int) -> Iterator[tuple[str, Any]]:
    """Run `script --json PASSED` with the baseline's code, then with this checkout's, `rounds` times; yields
    ("baseline" or "this checkout", what the run printed as JSON). The script is this checkout's, importing the
    project from the checkout on PYTHONPATH."""
    for _ in range(rounds):
        for name, root in (("baseline", baseline.resolve()), ("this checkout", HERE)):
            env = {**os.environ, "PYTHONPATH": str(root), "NUMBA_NUM_THREADS": "1"}
            command = [sys.executable, str(Path(script).resolve()), "--json", *passed]
            done = subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
            yield name, json.loads(done.stdout)
