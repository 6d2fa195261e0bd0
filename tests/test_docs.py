"""Every shell command of README.md and docs/*.md runs as printed (issue 20: docs stay true).

Commands are the lines of the ```bash/sh/shell/console blocks: ``$ `` prompts are dropped (in a
console block, lines without one are output), comment-only and blank lines are left out, ``\\``
continuations and open shell constructs (``for ...; do`` up to ``done``) join lines into one
command, and trailing comments stay (the shell ignores them). Each document's commands run in
order, each in a fresh ``bash -e`` from one fresh folder per document that holds a copy of
``examples/`` and a link to ``aquaml/`` (so "from the repository root" holds), with ``aquaml`` on
PATH running this checkout. ``AQUAML_MAX_STEPS=1`` (docs/outputs.md) cuts every training run to
one epoch and every tuning study to two trials, so the commands are the ones printed.

A command that cannot run here is in :data:`SKIP` with its reason, and an entry that matches no
command fails the test, so the list stays reviewed; anything else must exit 0.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import warm_aquaml

REPO = Path(__file__).resolve().parents[1]
WARM = Path(warm_aquaml.__file__).resolve()
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELLS = ("bash", "sh", "shell", "console")
FENCE = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.S | re.M)
COMMENT = re.compile(r"(^|\s)#\s.*$")  # a trailing comment: '#' after a blank (not ${x#y}, not 'a#b')
#: the first word of a line that makes an unlabelled block a shell block that must be labelled
COMMAND_WORDS = ("aquaml", "python", "python3", "pip", "cd", "mpirun", "srun")
STEPS = "1"  #: AQUAML_MAX_STEPS: one epoch per run, two trials per study

#: (document or None for any, regex the command's shown form starts with, why it does not run here)
SKIP = [
    (None, r"pip install ", "installs packages: the test runs in the environment already installed"),
    (None, r"python3 -m venv ", "creates a venv and installs into it (the packaging tests cover install)"),
    ("docs/benchmarks.md", r"python benchmarks/sac_vs_sb3\.py", "a benchmark against SB3 that takes hours"),
    ("docs/benchmarks.md", r"python benchmarks/mujoco_vs_sb3\.py",
     "MuJoCo runs of AquaML and SB3 that take hours (`status` and `report` read their folders)"),
    ("docs/hpc.md", r"mpirun -n 3 python examples/tutorial1_sac_pendulum\.py",
     "the full tutorial on 3 MPI ranks (minutes of training on 2 cores; tests/test_mpi.py runs MPI)"),
    ("docs/hpc.md", r"module load ", "a cluster's environment modules"),
    ("docs/hpc.md", r"srun ", "a Slurm allocation"),
    ("docs/new_algorithm.md", r"aquaml train a2c CartPole-v1$",
     "needs a package that registers the a2c entry point (tests/test_guides.py installs one)"),
    ("docs/plots.md", r"aquaml plot rosbag ",
     "needs the user's ROS bags (tests/test_rosbag.py runs the command on bags it writes)"),
]
#: (document, regex, Python module): commands skipped only where the module is missing
NEEDS = [("README.md", r"aquaml train sac HalfCheetah-v5 ", "mujoco")]

#: what a document takes as given before its first command, each with why
PRELUDE = {
    "docs/deploy.md": [("aquaml train sac Pendulum-v1", "the guide starts from a trained run"),
                       ("mkdir my_robot", "the folder of the user's code")],
    "docs/plots.md": [
        ("aquaml train sac Pendulum-v1 && aquaml train td3 Pendulum-v1", "the runs the figures are of"),
        ("printf 'Pendulum-v1: {random: -1180.5, expert: -126.3}\\n' > ref.yaml", "the reference file shown below"),
        ("aquaml tune sac Pendulum-v1 --trials 2 --budget 100", "a study for `aquaml plot tune`"),
        ("mkdir -p docs/figures", "the repository's figure folder the README figure is written to"),
    ],
    "docs/tuning.md": [("printf 'learning_rate: {type: log_float, low: 1.0e-5, high: 1.0e-2}\\n' > my_space.yaml",
                        "the user's search space (the format below)")],
}


def relative(doc: Path) -> str:
    return doc.relative_to(REPO).as_posix()


def shown(command: str) -> str:
    """A command as one line without comments: how SKIP matches it and failures name it."""
    lines = (COMMENT.sub("", line).rstrip().removesuffix("\\") for line in command.splitlines())
    return " ".join(" ".join(lines).split())


def complete(text: str) -> bool:
    """Whether ``text`` is whole shell syntax (a ``for`` without its ``done`` is not)."""
    return not text.rstrip().endswith("\\") and subprocess.run(["bash", "-n", "-c", text],
                                                               capture_output=True).returncode == 0


def commands(doc: Path) -> list[str]:
    found = []
    for lang, body in FENCE.findall(doc.read_text()):
        if lang not in SHELLS:
            continue
        pending = ""
        for line in body.splitlines():
            if lang == "console" and not line.startswith("$ ") and not pending:
                continue  # output
            line = line.removeprefix("$ ")
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending += line + "\n"
            if complete(pending):
                found.append(pending.strip())
                pending = ""
        assert not pending, f"{relative(doc)}: a command that never completes: {pending}"
    return found


def skip_reason(doc: str, command: str) -> str | None:
    for where, pattern, reason in SKIP:
        if where in (None, doc) and re.match(pattern, shown(command)):
            return reason
    for where, pattern, module in NEEDS:
        if where == doc and re.match(pattern, shown(command)) and importlib.util.find_spec(module) is None:
            return f"needs {module}"
    return None


def test_commands_are_found_and_every_skip_is_used():
    """The extraction sees the documents' commands, and no SKIP entry is stale."""
    every = [(relative(d), c) for d in DOCS for c in commands(d)]
    assert len(every) > 50 and ("README.md", "aquaml params sac") in [(d, shown(c)) for d, c in every]
    for where, pattern, reason in SKIP:
        assert any(where in (None, d) and re.match(pattern, shown(c)) for d, c in every), \
            f"SKIP entry matches no command any more ({reason}): {where} {pattern}"


@pytest.mark.parametrize("doc", DOCS, ids=relative)
def test_no_unlabelled_command_blocks(doc):
    """A block of commands without a language would escape the test: label it ```bash."""
    for lang, body in FENCE.findall(doc.read_text()):
        first = body.lstrip().split(maxsplit=1)[0] if body.strip() else ""
        assert lang or first not in COMMAND_WORDS, f"{relative(doc)}: label this block ```bash:\n{body}"


def fresh_folder(tmp_path: Path) -> dict[str, str]:
    """``tmp_path`` as the repository root the docs speak of, and the environment the commands run in."""
    shutil.copytree(REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "aquaml").symlink_to(REPO / "aquaml")  # read only (cp aquaml/deploy.py ...)
    bin_dir = tmp_path.parent / f"{tmp_path.name}_bin"
    bin_dir.mkdir()
    # `aquaml` runs this checkout (the venv's console script may import another one), forked from a
    # warm server where one runs (tests/warm_aquaml.py: about 3 s of imports less per command)
    (bin_dir / "aquaml").write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "{WARM}" "$@"\n')
    (bin_dir / "aquaml").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1", "AQUAML_MAX_STEPS": STEPS, "MPLBACKEND": "Agg",
            warm_aquaml.SOCKET_VAR: str(bin_dir / "warm.sock")}


@contextlib.contextmanager
def warm_server(cwd: Path, env: dict[str, str]):
    """tests/warm_aquaml.py's server for the commands run with ``env``; killed with its children after."""
    path = Path(env[warm_aquaml.SOCKET_VAR])
    server = subprocess.Popen([sys.executable, "-P", str(WARM), "serve", str(path)], cwd=cwd, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not path.exists():
            assert server.poll() is None, f"the warm aquaml server failed:\n{server.stdout.read().decode()}"
            assert time.monotonic() < deadline, "the warm aquaml server did not start in 120 s"
            time.sleep(0.05)
        yield
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the server and any child still running
        server.wait()
        server.stdout.close()


def run(command: str, cwd: Path, env: dict[str, str], doc: str, why: str = "") -> None:
    done = subprocess.run(["bash", "-e", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
    assert done.returncode == 0, (f"{doc}: `{shown(command)}`{f' ({why})' if why else ''} exited "
                                  f"{done.returncode}:\n{tail}")


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=relative)
def test_doc_commands_run(doc, tmp_path):
    name = relative(doc)
    todo = [c for c in commands(doc) if skip_reason(name, c) is None]
    if not todo:
        pytest.skip(f"{name}: every command is in SKIP")
    env = fresh_folder(tmp_path)
    with warm_server(tmp_path, env):
        for command, why in PRELUDE.get(name, []):
            run(command, tmp_path, env, name, f"prelude: {why}")
        for command in todo:
            run(command, tmp_path, env, name)
