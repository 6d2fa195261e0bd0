"""A peer framework whose pins clash with AquaML's gets its own virtual environment, made on first use."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VENVS = Path(__file__).resolve().parent / ".venvs"


def peer_python(name: str, requirements: list[str]) -> Path:
    """The Python of ``benchmarks/.venvs/<name>`` with ``requirements`` installed (local wheels
    under /opt/wheels, e.g. the CPU build of torch, are preferred when present)."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} ({', '.join(requirements)}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        extra = ["--find-links", "/opt/wheels"] if Path("/opt/wheels").is_dir() else []
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *extra, *requirements], check=True)
    return python
