"""Where the environment blocks run: in the learner's process, or in worker processes.

Both pools expose the same calls over the same table of arrays (``table_fields``):
``run('step' | 'reset')`` on every env, ``call(env_index, method, *args)`` for rare work,
and ``close()``. :class:`WorkerPool` is the shared-memory transport; the protocol (a
sequence number and a command code per worker, a done counter back) is what an MPI
transport reproduces with another way of moving the same arrays.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import weakref
from multiprocessing.connection import Connection
from typing import Callable, Mapping, Sequence

import cloudpickle
import numpy as np

from aquaml.parallel import worker as protocol
from aquaml.parallel.block import SAME_STEP, EnvBlock, Field
from aquaml.parallel.shared_memory import SharedArrays
from aquaml.parallel.signal import default_spin, fence, store_fence, wait_until, wake

COMMANDS = {"step": protocol.STEP, "reset": protocol.RESET}


class WorkerError(RuntimeError):
    """An environment raised inside a worker process, or a worker died."""


class LocalPool:
    """Runs all environments in this process (the default: no workers)."""

    def __init__(self, env_fns: Sequence[Callable], fields: Mapping[str, Field], make_steppers: Callable,
                 mode: str = SAME_STEP) -> None:
        self.n_envs = len(env_fns)
        self.arrays = {k: np.zeros(s, d) for k, (s, d) in fields.items()}
        self.block = EnvBlock(make_steppers(list(env_fns)), self.arrays, 0, mode)

    def run(self, command: str) -> None:
        getattr(self.block, command)()

    def send(self, command: str, workers=None) -> None:
        """Runs ``command`` at once: there is nothing to overlap with in one process."""
        self.run(command)

    def wait(self, workers=None) -> None:
        pass

    def call(self, env_index: int, method: str, *args):
        return self.block.call(env_index, method, *args)

    def close(self) -> None:
        self.block.close()


class _Worker:
    def __init__(self, index: int, lo: int, hi: int) -> None:
        self.index, self.lo, self.hi = index, lo, hi
        parent_sock, child_sock = socket.socketpair()
        self.wake_r, self.wake_w = os.pipe()
        self.done_r, self.done_w = os.pipe()
        for fd in (self.wake_w, self.done_r):
            os.set_blocking(fd, False)
        self.conn = Connection(parent_sock.detach())
        child_fd = child_sock.detach()
        child_fds = (child_fd, self.wake_r, self.done_w)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from aquaml.parallel.worker import main; main()", str(index),
                 *map(str, child_fds)], pass_fds=child_fds, stdin=subprocess.DEVNULL)
        except BaseException:
            self.conn.close()
            for fd in (*child_fds, self.wake_w, self.done_r):
                os.close(fd)
            raise
        for fd in child_fds:  # the child holds them now; closing ours lets EOF signal its death
            os.close(fd)
        self.seq = 0

    def describe(self) -> str:
        return f"worker {self.index} (pid {self.process.pid}, envs {self.lo}-{self.hi - 1})"


class RemotePool:
    """What the multi-process pools share: a step is a send and a wait; each env has one owner."""

    workers: list

    def run(self, command: str) -> None:
        self.send(command)
        self.wait()

    def owner(self, env_index: int):
        """The worker (or sampler rank) that steps env ``env_index``."""
        return next(w for w in self.workers if w.lo <= env_index < w.hi)


class WorkerPool(RemotePool):
    """Runs the environments in ``n_workers`` processes over one shared-memory table.

    Args:
        env_fns: one factory per environment; each is pickled with cloudpickle once, at start.
        fields: the table's arrays (``table_fields``).
        make_steppers: ``env_fns -> steppers``, run inside the worker (importable, JAX-free).
        mode: autoreset mode (see :mod:`aquaml.parallel.block`).
        n_workers: processes; envs are split into contiguous, nearly equal shares.
        spin_s: how long a waiting process polls before it sleeps on a pipe (None: 1 ms on
            x86-64, else 0).
        yield_cpu: give the core away between polls (None: when the processes outnumber the cores).
        start_timeout_s: how long a worker may take to build its environments.
    """

    def __init__(self, env_fns: Sequence[Callable], fields: Mapping[str, Field], make_steppers: Callable,
                 mode: str = SAME_STEP, n_workers: int = 1, spin_s: float | None = None,
                 yield_cpu: bool | None = None, start_timeout_s: float = 120.0) -> None:
        env_fns = list(env_fns)
        self.n_envs = len(env_fns)
        if not 1 <= n_workers <= self.n_envs:
            raise ValueError(f"n_workers must be between 1 and the number of envs ({self.n_envs}), got {n_workers}")
        default_s, default_yield = default_spin(n_workers + 1)
        self.spin_s = default_s if spin_s is None else float(spin_s)
        self.yield_cpu = default_yield if yield_cpu is None else bool(yield_cpu)
        table_fields = dict(fields)
        table_fields["control"] = ((n_workers, protocol.CONTROL_COLUMNS), np.dtype(np.int64))
        table_fields["learner_sleeping"] = ((1,), np.dtype(np.int64))
        self.table = SharedArrays(table_fields)
        self.arrays = {k: v for k, v in self.table.arrays.items() if k in fields}
        self._control, self._sleeping = self.table["control"], self.table["learner_sleeping"]
        self.workers: list[_Worker] = []
        self._waiters: dict = {}
        self._closed = False
        self._finalizer = weakref.finalize(self, WorkerPool._cleanup, self.table, self.workers)
        try:
            bounds = np.linspace(0, self.n_envs, n_workers + 1).round().astype(int)
            for w in range(n_workers):
                lo, hi = int(bounds[w]), int(bounds[w + 1])
                worker = _Worker(w, lo, hi)
                worker.row = self._control[w]  # this worker's control row (a view)
                self.workers.append(worker)
                try:
                    worker.conn.send(list(sys.path))  # where the env factories' modules are found, as here
                    worker.conn.send_bytes(cloudpickle.dumps(
                        (self.table.name, table_fields, lo, env_fns[lo:hi], make_steppers, mode, self.spin_s,
                         self.yield_cpu)))
                except OSError:
                    code = worker.process.wait(timeout=5.0)
                    raise WorkerError(f"{worker.describe()} exited with code {code} while starting") from None
            for worker in self.workers:
                self._handshake(worker, start_timeout_s)
        except BaseException:
            self.close()
            raise

    # -- protocol -----------------------------------------------------------------------
    def _handshake(self, worker: _Worker, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not worker.conn.poll(0.05):
            if worker.process.poll() is not None:
                raise WorkerError(f"{worker.describe()} exited with code {worker.process.returncode} while starting")
            if time.monotonic() > deadline:
                raise WorkerError(f"{worker.describe()} did not start within {timeout_s:.0f} s")
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            code = worker.process.wait(timeout=5.0)
            raise WorkerError(f"{worker.describe()} exited with code {code} while starting (its stderr says why)")
        if message[0] == "error":
            raise WorkerError(f"{worker.describe()} failed to build its environments:\n{message[2]}")

    def send(self, command: str, workers: Sequence[int] | None = None) -> None:
        """Start ``command`` on ``workers`` (all by default) without waiting."""
        if (self._closed or not self._finalizer.alive) and command != "close":
            raise WorkerError("the worker pool is closed (after close() or a worker failure)")
        code = protocol.CLOSE if command == "close" else protocol.CALL if command == "call" else COMMANDS[command]
        for w in range(len(self.workers)) if workers is None else workers:
            worker = self.workers[w]
            row = worker.row
            worker.seq += 1
            row[protocol.CODE] = code
            store_fence()  # the code (and the data) before the sequence number that announces them
            row[protocol.SEQ] = worker.seq
            fence()
            if row[protocol.SLEEPING]:
                wake(worker.wake_w)  # a dead worker is found by wait()

    def wait(self, workers: Sequence[int] | None = None) -> None:
        """Wait until ``workers`` (all by default) finished their last command; raise their errors."""
        key = None if workers is None else tuple(workers)
        waiter = self._waiters.get(key)
        if waiter is None:  # built once per set of workers: this runs at every step
            waiter = self._waiters[key] = self._waiter(self.workers if key is None else [self.workers[w] for w in key])
        pending, ready, set_sleeping, fds, check_alive = waiter
        try:
            wait_until(ready, self.spin_s, set_sleeping, fds, 0.1, check_alive, self.yield_cpu)
        except EOFError as e:
            dead = next(w for w in pending if w.done_r == e.args[0])
            try:
                dead.process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
            self._died(dead)
        for w in pending:
            if w.row[protocol.STATUS] == protocol.ERROR:
                _, env_index, trace = w.conn.recv()
                where = f"env {env_index}" if env_index >= 0 else "outside any env"
                self._fail(f"{w.describe()} raised in {where}:\n{trace}")

    def _waiter(self, pending: list[_Worker]):
        if len(pending) == 1:
            (only,) = pending

            def ready() -> bool:
                return only.row[protocol.DONE] == only.seq
        else:
            def ready() -> bool:
                return all(w.row[protocol.DONE] == w.seq for w in pending)

        sleeping = self._sleeping

        def set_sleeping(v: int) -> None:
            sleeping[0] = v

        def check_alive() -> None:
            for w in pending:
                if w.process.poll() is not None:
                    self._died(w)

        return pending, ready, set_sleeping, [w.done_r for w in pending], check_alive

    def _died(self, worker: _Worker) -> None:
        code = worker.process.poll()
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        self._fail(f"{worker.describe()} {how}")

    def _fail(self, message: str) -> None:
        """A pool with a failed worker cannot go on: stop the others, free the memory, raise."""
        self.close()
        raise WorkerError(message)

    def call(self, env_index: int, method: str, *args):
        """Run ``method(*args)`` of the block holding env ``env_index``, in its worker."""
        worker = self.owner(env_index)
        self.send("call", [worker.index])
        worker.conn.send((env_index, method, args))
        while not worker.conn.poll(0.1):  # the reply comes before DONE; read it while waiting
            if worker.process.poll() is not None:
                self._died(worker)
        reply = worker.conn.recv()
        self.wait([worker.index])
        if reply[0] == "error":
            self._fail(f"{worker.describe()} raised in env {reply[1]} during {method}:\n{reply[2]}")
        return reply[1]

    # -- shutdown -----------------------------------------------------------------------
    def close(self) -> None:
        """Stop the workers (politely, then by force) and remove the shared memory."""
        if self._closed:
            return
        self._closed = True
        for w in self.workers:
            if w.process.poll() is None:
                try:
                    self.send("close", [w.index])
                except (OSError, WorkerError):
                    pass
        self._finalizer()

    @staticmethod
    def _cleanup(table: SharedArrays, workers: list[_Worker]) -> None:
        # Closing our pipe ends is itself a stop signal: a waiting worker sees EOF and exits.
        for w in workers:
            for fd in (w.wake_w, w.done_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            w.conn.close()
        deadline = time.monotonic() + 2.0
        for w in workers:
            try:
                w.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.process.kill()
                w.process.wait()
        table.close()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_pool(env_fns: Sequence[Callable], fields: Mapping[str, Field], make_steppers: Callable,
              mode: str = SAME_STEP, n_workers: int = 0, **worker_options) -> LocalPool | WorkerPool:
    """A :class:`LocalPool` for ``n_workers == 0``, else a :class:`WorkerPool`."""
    if n_workers == 0:
        return LocalPool(env_fns, fields, make_steppers, mode)
    return WorkerPool(env_fns, fields, make_steppers, mode, n_workers, **worker_options)


__all__ = ["LocalPool", "RemotePool", "WorkerPool", "WorkerError", "make_pool"]
