"""Where runs live, ``<run_root>/<name>/<YYYYmmdd-HHMMSS>``, and finding one from what a user typed.

Everything that takes a run folder (``aquaml eval``, ``collect``, ``export``, ``train --resume``,
``--reward-model``, DAgger's ``expert=``, :func:`~aquaml.starter.loading.load_run`) opens it
through :func:`find_run`, which also takes a folder of runs (``runs/sac_Pendulum-v1``: its newest
run, named in one line on stderr) and ``<folder of runs>/latest``, a name that needs no link on
disk. This module imports nothing heavy, so the command line checks a path before JAX loads.
"""
from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path

from aquaml.tools.console import did_you_mean

CONFIG = "config.json"  #: the file that makes a folder a run
LATEST = "latest"  #: ``<folder of runs>/latest``: its newest run
_STAMP = re.compile(r"(\d{8}-\d{6})(?:-(\d+))?")  #: a run folder's name: its start time, then -1, -2, ...


class RunNotFound(FileNotFoundError):
    """A path that names no run: the message says whether it does not exist or holds no run."""


def new_run_dir(run_root: str | Path, name: str) -> Path:
    """A new, uniquely named run folder ``<run_root>/<name>/<start time>``, created empty."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(run_root) / name / stamp
    path, k = base, 1
    while path.exists():
        path, k = base.with_name(f"{stamp}-{k}"), k + 1
    path.mkdir(parents=True)
    return path


def is_run(path: Path) -> bool:
    return (path / CONFIG).is_file()


def _age(run: Path) -> tuple[str, int]:
    """Sort key, oldest first: the start time in the name, then its ``-k`` (``-10`` after ``-9``)."""
    m = _STAMP.fullmatch(run.name)
    return (m[1], int(m[2] or 0)) if m else (run.name, 0)


def runs_in(folder: str | Path) -> list[Path]:
    """The runs directly inside ``folder``, oldest first."""
    folder = Path(folder)
    return sorted((p for p in folder.iterdir() if p.is_dir() and is_run(p)), key=_age) if folder.is_dir() else []


def find_run(path: str | Path, announce: bool = True) -> Path:
    """The run ``path`` names: a run folder itself, a folder of runs (its newest run) or
    ``<folder of runs>/latest``; ``announce`` says on stderr which run a folder stood for.

    Raises :class:`RunNotFound`: for a path that does not exist (naming close ones beside it),
    and for a folder that holds no run (naming the folders of runs it holds, if any).
    """
    given = Path(path)
    if is_run(given):
        return given
    folder = given.parent if given.name == LATEST and not given.exists() else given
    if not folder.exists():
        siblings = [p.name for p in folder.parent.iterdir()] if folder.parent.is_dir() else []
        hint = did_you_mean(folder.name, siblings, show=lambda name: str(folder.parent / name))
        raise RunNotFound(f"{folder} does not exist{hint}")
    runs = runs_in(folder)
    if not runs:
        raise RunNotFound(_holds_no_run(folder))
    run = folder / runs[-1].name
    if announce:
        which = "latest" if folder is not given else "newest"
        print(f"aquaml: using {run} ({which} of {len(runs)})", file=sys.stderr, flush=True)
    return run


def _holds_no_run(folder: Path) -> str:
    """Why ``folder`` names no run, listing the folders of runs inside it."""
    if not folder.is_dir():
        return f"{folder} is not a run folder (a run is a folder holding {CONFIG})"
    groups = {p.name: len(runs_in(p)) for p in sorted(folder.iterdir()) if p.is_dir()}
    groups = {name: n for name, n in groups.items() if n}
    if not groups:
        return f"{folder} holds no run (no folder in it holds {CONFIG})"
    shown = ", ".join(f"{name} ({n} run{'s' * (n > 1)})" for name, n in list(groups.items())[:10])
    more = f" and {len(groups) - 10} more" if len(groups) > 10 else ""
    return (f"{folder} holds no run itself but folders of runs: {shown}{more}; name one, e.g. "
            f"{folder / next(iter(groups))}")
