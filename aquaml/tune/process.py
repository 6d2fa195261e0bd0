"""A warm trial process: one Python process per tuner worker runs ``aquaml train`` commands one
after another, so a trial pays neither the interpreter start nor the imports of JAX, Keras and
AquaML (about 2 s on two cores, most of a short trial's overhead).

The tuner writes one JSON line per run to the process's stdin: ``{"argv": [...], "log": PATH,
"done": PATH}``. The process points its stdout and stderr (the file descriptors, so XLA's own
messages too) at ``log``, runs ``aquaml.apps.commands.main(argv)`` and writes ``{"returncode": N}`` to
``done`` when the run has ended. Between runs it clears Keras's session (layer names, global
RNG), so a run in a warm process trains exactly as in a fresh one (tested bit for bit).

Run as ``python -m aquaml.tune.process``; :class:`TrialProcess` is the tuner's side.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Sequence

_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the child must not load libraries after fork


def _child_setup(cpus: Sequence[int] | None):
    """What the child runs before Python starts: SIGKILL when the tuner dies, so no trial
    outlives a killed tuner (Linux), and its share of the cores."""
    def setup() -> None:
        _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if cpus:
            os.sched_setaffinity(0, cpus)
    return setup


class TrialProcess:
    """The tuner's handle on one warm process (started on the first run, restarted after a kill
    or a crash). ``env_vars`` and ``cpus`` hold for every run it executes."""

    def __init__(self, env_vars: dict | None = None, cpus: Sequence[int] | None = None) -> None:
        self.env_vars, self.cpus = dict(env_vars or {}), cpus
        self._proc: subprocess.Popen | None = None
        self._done: Path | None = None
        self._log: Path | None = None

    def start(self, argv: Sequence[str], log: Path) -> None:
        """Begin ``aquaml <argv>`` with its output in ``log``; :meth:`poll` says when it has ended."""
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen([sys.executable, "-m", "aquaml.tune.process"], stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                                          preexec_fn=_child_setup(self.cpus), env={**os.environ, **self.env_vars})
        self._log, self._done = Path(log), Path(f"{log}.done")
        self._log.write_text("")
        self._done.unlink(missing_ok=True)
        self._proc.stdin.write(json.dumps({"argv": list(argv), "log": str(self._log), "done": str(self._done)}) + "\n")
        self._proc.stdin.flush()

    def poll(self) -> int | None:
        """The run's exit status once it has ended (None while it runs). A process that died
        mid-run (a crash of XLA, the OOM killer) ends the run with its signal noted in the log."""
        if self._done is not None and self._done.exists():
            return int(json.loads(self._done.read_text())["returncode"])
        proc = self._proc  # kill() may run in another thread (the tuner's Ctrl-C)
        if proc is None:
            return None if self._done is None else -signal.SIGKILL  # killed while its run went on
        code = proc.poll()
        if code is None:
            return None
        if self._done is not None and self._done.exists():  # it wrote the result, then exited
            return int(json.loads(self._done.read_text())["returncode"])
        with open(self._log, "a") as f:
            f.write(f"\ntrial process died with exit status {code}"
                    + (f" ({signal.Signals(-code).name})" if code < 0 and -code in signal.valid_signals() else "")
                    + "\n")
        self._drop()
        return code if code != 0 else 1

    def kill(self) -> None:
        """End the process now (the run in it with it); the next :meth:`start` begins a fresh one."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._drop()

    def close(self) -> None:
        """Let an idle process exit (end of input), or kill a busy one."""
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self._drop()

    def _drop(self) -> None:
        if self._proc is not None:
            try:
                self._proc.stdin.close()  # a dead process's pipe must not stay open in the tuner
            except OSError:
                pass
        self._proc = None

    def __enter__(self) -> "TrialProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _run(argv: list[str], log: str) -> int:
    """One ``aquaml`` command, from a fresh Keras session, with fds 1 and 2 on ``log``; its exit
    status (a failure to import shows in the log like any other error of the run)."""
    import traceback

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(log, "a") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
        _fresh_state()
        from aquaml.apps.commands import main

        code = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # the run's failure is the trial's, not the process's
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
    return int(code or 0)


def _fresh_state() -> None:
    """What one run leaves in the process that could change the next: Keras's name counters and
    seed generator, garbage holding env and model memory. JAX's compiled programs stay: they
    depend only on shapes and code, and recompiling the small eager ops of building models
    cost 1.5 s per trial."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


def serve() -> None:
    """The process's loop: one run per line of stdin until stdin closes."""
    try:  # the imports that every later run skips; a broken install shows in each run's log instead
        import aquaml.env  # noqa: F401
        from aquaml.algorithm import ALGORITHMS  # noqa: F401  (every built-in algorithm's module)
        from aquaml.starter import RLTaskStarter  # noqa: F401
    except Exception:
        pass
    for line in sys.stdin:
        job = json.loads(line)
        code = _run(job["argv"], job["log"])
        done = Path(job["done"])
        tmp = done.with_name(done.name + ".tmp")
        tmp.write_text(json.dumps({"returncode": code}))
        os.replace(tmp, done)  # the tuner never reads half a result


if __name__ == "__main__":
    serve()
