"""The sampler protocol over MPI: rank 0 learns, ranks 1..K step environments.

The same table of arrays and the same :class:`EnvBlock` as the shared-memory pool; only the
way the table's rows travel differs, per sampler rank:

* **on the learner's node** the table lives in an MPI-3 shared-memory window
  (``Win.Allocate_shared`` on the node communicator): samplers read their actions and write
  their observations in place, and a control row per sampler carries the command and done
  counters, as in :class:`aquaml.parallel.WorkerPool`;
* **on other nodes** (or everywhere with ``transport='messages'``) each step sends the
  sampler's action rows in one non-blocking message and receives its result rows in another,
  raw bytes without pickling.

Waiting ranks spin briefly, then sleep-poll (MPICH's blocking receive busy-waits, which would
starve an oversubscribed node). See ``docs/hpc.md`` for the cost model.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import Callable, Mapping, Sequence

import numpy as np

from aquaml.parallel import worker as protocol
from aquaml.parallel.block import SAME_STEP, EnvBlock, Field
from aquaml.parallel.pool import COMMANDS, RemotePool, WorkerError
from aquaml.parallel.shared_memory import layout, views
from aquaml.parallel.signal import default_spin, fence, futex_until, futex_wake, poll_until, store_fence
from aquaml.tools.imports import optional_import

TAG_CMD, TAG_RESULT, TAG_CALL, TAG_REPLY, TAG_ERROR = range(102, 107)  # the setup goes by bcast
TRANSPORTS = ("auto", "messages")
#: fields the learner writes (sent to samplers); every other field is written by samplers
LEARNER_WRITES = ("act/", "reset_seed", "reset_mask")
CONTROL_FIELDS = ("control", "learner_sleeping")  # the window's signalling words, never sent
HEADER = 2  # int64s before the rows of a message: (code or status, sequence number)


def _learner_field(name: str) -> bool:
    return name.startswith(LEARNER_WRITES)


class _Rows:
    """Packs rows ``lo:hi`` of some fields into one byte buffer and back."""

    def __init__(self, arrays: Mapping[str, np.ndarray], names: Sequence[str], lo: int, hi: int) -> None:
        self.parts = [arrays[k][lo:hi] for k in names]
        self.size = sum(p.nbytes for p in self.parts)
        self.buffer = np.zeros(HEADER * 8 + self.size, np.uint8)
        self.header = self.buffer[: HEADER * 8].view(np.int64)

    def pack(self) -> np.ndarray:
        offset = HEADER * 8
        for part in self.parts:
            self.buffer[offset:offset + part.nbytes] = part.reshape(-1).view(np.uint8)
            offset += part.nbytes
        return self.buffer

    def unpack(self) -> None:
        offset = HEADER * 8
        for part in self.parts:
            part.reshape(-1).view(np.uint8)[:] = self.buffer[offset:offset + part.nbytes]
            offset += part.nbytes


class _Sampler:
    """The learner's view of one sampler rank."""

    def __init__(self, index: int, rank: int, lo: int, hi: int, shared: bool) -> None:
        self.index, self.rank, self.lo, self.hi, self.shared = index, rank, lo, hi, shared
        self.seq, self.pid = 0, 0
        self.out = self.back = None  # message transport: rows to send, rows to receive
        self.send_request = self.recv_request = None

    def describe(self) -> str:
        where = "on the learner's node" if self.shared else "by messages"
        return f"sampler rank {self.rank} (pid {self.pid}, envs {self.lo}-{self.hi - 1}, {where})"


def _split(n_envs: int, parts: int) -> list[tuple[int, int]]:
    bounds = np.linspace(0, n_envs, parts + 1).round().astype(int)
    return [(int(bounds[i]), int(bounds[i + 1])) for i in range(parts)]


def _table_fields(fields: Mapping[str, Field], n_samplers: int) -> dict[str, Field]:
    table = dict(fields)
    table["control"] = ((n_samplers, protocol.CONTROL_COLUMNS), np.dtype(np.int64))
    table["learner_sleeping"] = ((1,), np.dtype(np.int64))
    return table


class MPIPool(RemotePool):
    """The learner's (rank 0's) pool over the sampler ranks of ``comm``.

    Args:
        comm: the communicator; every rank but 0 must call :func:`serve` at the same time.
        n_envs: environments in all; split into contiguous shares, one per sampler rank.
        fields: the table's arrays (``table_fields``).
        make_steppers: ``env_fns -> steppers``, sent once to the samplers.
        mode: autoreset mode.
        transport: ``'auto'`` (shared window on the learner's node, messages elsewhere) or
            ``'messages'`` (messages for every sampler: the cross-node path on one machine).
    """

    def __init__(self, comm, n_envs: int, fields: Mapping[str, Field], make_steppers: Callable,
                 mode: str = SAME_STEP, transport: str = "auto") -> None:
        MPI = optional_import("mpi4py.MPI", "MPI", "mpi")

        if transport not in TRANSPORTS:
            raise ValueError(f"unknown MPI transport {transport!r}; use one of {TRANSPORTS}")
        self.comm, self.n_envs = comm, n_envs
        n_samplers = comm.Get_size() - 1
        if n_samplers < 1 or n_envs < n_samplers:
            raise ValueError(f"{n_samplers} sampler ranks need between 1 and n_envs ({n_envs}) of them")
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        on_node = set(node.allgather(comm.Get_rank()))
        use_window = transport == "auto" and len(on_node) > 1
        shares = _split(n_envs, n_samplers)
        self.workers = [_Sampler(i, i + 1, lo, hi, use_window and (i + 1) in on_node)
                        for i, (lo, hi) in enumerate(shares)]
        table_fields = _table_fields(fields, n_samplers)
        processes_on_node = len(on_node)
        spin_s, yield_cpu = default_spin(processes_on_node)
        self.spin_s, self.yield_cpu = spin_s, yield_cpu
        import cloudpickle

        setup = cloudpickle.dumps({"fields": table_fields, "shares": shares, "mode": mode, "use_window": use_window,
                                   "make_steppers": make_steppers, "spin_s": spin_s, "yield_cpu": yield_cpu})
        comm.bcast(setup, root=0)
        self.node, self.window = node, None
        if use_window:
            _, size = layout(table_fields)
            self.window = MPI.Win.Allocate_shared(size, 1, comm=node)
            table = views(table_fields, self.window.tomemory())
            for array in table.values():
                array.fill(0)
        else:
            table = {k: np.zeros(s, d) for k, (s, d) in table_fields.items()}
        node.Barrier()  # the window is zeroed, and every rank of the node has mapped its segments
        # Every rank of this node maps the MPI library's segments by now (its start-up segment
        # and the window's), so their names are no longer needed. MPICH removes them at
        # MPI_Finalize; a job that the MPI runtime kills (a rank died) finalises nothing, and
        # without this the names would stay in /dev/shm.
        _unlink(p for p in _mapped_segments() if os.path.basename(p).startswith("mpich_"))
        self.arrays = {k: v for k, v in table.items() if k in fields}
        self._control, self._sleeping = table["control"], table["learner_sleeping"]
        learner_names = [k for k in fields if _learner_field(k)]
        sampler_names = [k for k in fields if not _learner_field(k)]
        for w in self.workers:
            if not w.shared:
                w.out = _Rows(self.arrays, learner_names, w.lo, w.hi)
                w.back = _Rows(self.arrays, sampler_names, w.lo, w.hi)
        ready = comm.gather(None, root=0)  # each sampler: its pid, or the traceback of its failed start
        self._closed = False
        self.dead = False  # a sampler died: no orderly shutdown is possible any more
        for w, answer in zip(self.workers, ready[1:]):
            if isinstance(answer, str):
                raise WorkerError(f"{w.describe()} failed to build its environments:\n{answer}")
            w.pid = answer
        self._pids_local = {w.index: w.pid for w in self.workers if w.rank in on_node}

    # -- protocol -------------------------------------------------------------------------
    def send(self, command: str, workers: Sequence[int] | None = None) -> None:
        if self._closed and command != "close":
            raise WorkerError("the MPI sampler pool is closed")
        code = protocol.CLOSE if command == "close" else protocol.CALL if command == "call" else COMMANDS[command]
        for i in range(len(self.workers)) if workers is None else workers:
            w = self.workers[i]
            w.seq += 1
            if w.shared:
                row = self._control[i]
                row[protocol.CODE] = code
                store_fence()
                row[protocol.SEQ] = w.seq
                fence()
                if row[protocol.SLEEPING]:
                    futex_wake(row, protocol.SEQ)
            else:
                if w.send_request is not None:
                    w.send_request.Wait()
                w.out.header[:] = (code, w.seq)
                w.send_request = self.comm.Isend(w.out.pack(), dest=w.rank, tag=TAG_CMD)
                if code != protocol.CLOSE:  # a closing sampler sends nothing back
                    w.recv_request = self.comm.Irecv(w.back.buffer, source=w.rank, tag=TAG_RESULT)

    def wait(self, workers: Sequence[int] | None = None) -> None:
        pending = [self.workers[i] for i in (range(len(self.workers)) if workers is None else workers)]
        control = self._control

        sleeping = self._sleeping

        def set_sleeping(v: int) -> None:
            sleeping[0] = v

        check = lambda: self._check_alive(pending)  # noqa: E731
        for w in pending:  # on the window: sleep on each sampler's DONE word
            if w.shared:
                row = control[w.index]
                futex_until(lambda: row[protocol.DONE] == w.seq, self.spin_s, self.yield_cpu, set_sleeping,
                            row, protocol.DONE, check)
        messages = [w for w in pending if not w.shared]
        if messages:
            poll_until(lambda: all(w.recv_request.Test() for w in messages), self.spin_s, self.yield_cpu, check)
        for w in pending:
            if w.shared:
                failed = control[w.index, protocol.STATUS] == protocol.ERROR
            else:
                w.back.unpack()
                w.recv_request = None
                failed = w.back.header[0] == protocol.ERROR
            if failed:
                _, env_index, trace = self.comm.recv(source=w.rank, tag=TAG_ERROR)
                where = f"env {env_index}" if env_index >= 0 else "outside any env"
                raise WorkerError(f"{w.describe()} raised in {where}:\n{trace}")

    def _check_alive(self, pending: Sequence[_Sampler]) -> None:
        """Samplers on this node are checked by pid; elsewhere the MPI runtime ends the job."""
        for w in pending:
            pid = self._pids_local.get(w.index)
            if pid is None:
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                self.dead = True
                raise WorkerError(f"{w.describe()} died")

    def call(self, env_index: int, method: str, *args):
        """Run ``method(*args)`` of the block holding env ``env_index``, on its sampler rank."""
        w = self.owner(env_index)
        self.send("call", [w.index])  # the command first: the sampler then receives the arguments
        self.comm.send((env_index, method, args), dest=w.rank, tag=TAG_CALL)
        reply = self.comm.recv(source=w.rank, tag=TAG_REPLY)  # sent before DONE, read while it waits
        self.wait([w.index])
        if reply[0] == "error":
            raise WorkerError(f"{w.describe()} raised in env {reply[1]} during {method}:\n{reply[2]}")
        return reply[1]

    def close(self) -> None:
        """Stop every sampler (their ``serve`` returns) and free the window."""
        if self._closed or self.dead:
            return
        for w in self.workers:  # results still in flight arrive before the samplers read CLOSE
            if w.recv_request is not None:
                w.recv_request.Wait()
                w.recv_request = None
        self.send("close")
        self._closed = True
        for w in self.workers:
            if w.send_request is not None:
                w.send_request.Wait()
        if self.window is not None:
            self.window.Free()  # collective over the node's ranks
            self.window = None


def serve(comm, env_fns: Callable[[int, int], Sequence[Callable]]) -> None:
    """A sampler rank's life: build its envs, run the learner's commands until it closes.

    ``env_fns(lo, hi)`` returns the factories of envs ``lo..hi-1``, built in this rank (in
    the seed's pattern every rank runs the same script, so each has the environment).
    """
    import cloudpickle

    MPI = optional_import("mpi4py.MPI", "MPI", "mpi")

    # the collectives in the learner's order: node split, node allgather, setup broadcast
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    learner_here = 0 in node.allgather(comm.Get_rank())
    setup = cloudpickle.loads(comm.bcast(None, root=0))
    index = comm.Get_rank() - 1
    lo, hi = setup["shares"][index]
    table_fields = setup["fields"]
    # every node's ranks allocate their own (collective) window; only the learner's holds the table
    window = MPI.Win.Allocate_shared(0, 1, comm=node) if setup["use_window"] else None
    shared = window is not None and learner_here
    if shared:
        buffer, _ = window.Shared_query(0)
        table = views(table_fields, buffer)
    else:
        table = {k: np.zeros(s, d) for k, (s, d) in table_fields.items()}
    node.Barrier()
    if not learner_here and node.Get_rank() == 0:  # the learner does this on its own node
        _unlink(p for p in _mapped_segments() if os.path.basename(p).startswith("mpich_"))
    block = None
    try:
        block = EnvBlock(setup["make_steppers"](list(env_fns(lo, hi))), table, lo, setup["mode"])
        comm.gather(os.getpid(), root=0)
    except Exception:
        comm.gather(traceback.format_exc(), root=0)
    try:
        if block is not None:
            _serve_loop(comm, block, table, index, lo, hi, shared, setup)
    finally:
        if block is not None:
            block.close()
        if window is not None:
            window.Free()


def _serve_loop(comm, block: EnvBlock, table, index: int, lo: int, hi: int, shared: bool, setup) -> None:
    fields = [k for k in table if k not in CONTROL_FIELDS]
    inbox = outbox = request = None
    if shared:
        control, learner_sleeping = table["control"][index], table["learner_sleeping"]

        def set_sleeping(v: int) -> None:
            control[protocol.SLEEPING] = v
    else:
        inbox = _Rows(table, [k for k in fields if _learner_field(k)], lo, hi)
        outbox = _Rows(table, [k for k in fields if not _learner_field(k)], lo, hi)
    seen = 0
    while True:
        if shared:
            futex_until(lambda: control[protocol.SEQ] != seen, setup["spin_s"], setup["yield_cpu"], set_sleeping,
                        control, protocol.SEQ, lambda: None)
            seen = int(control[protocol.SEQ])
            code = int(control[protocol.CODE])
        else:
            request = comm.Irecv(inbox.buffer, source=0, tag=TAG_CMD)
            poll_until(request.Test, setup["spin_s"], setup["yield_cpu"], lambda: None)
            inbox.unpack()
            code, seen = int(inbox.header[0]), int(inbox.header[1])
        status, report = protocol.OK, None
        if code == protocol.CALL:  # one reply, received by the learner before it waits for DONE
            env_index, method, args = comm.recv(source=0, tag=TAG_CALL)
            try:
                comm.send(("ok", block.call(env_index, method, *args)), dest=0, tag=TAG_REPLY)
            except Exception:
                comm.send(("error", block.current, traceback.format_exc()), dest=0, tag=TAG_REPLY)
        else:
            try:
                if code == protocol.STEP:
                    block.step()
                elif code == protocol.RESET:
                    block.reset()
            except Exception:
                status = protocol.ERROR
                # non-blocking: the learner receives it only after it sees the status below
                report = comm.isend(("error", block.current, traceback.format_exc()), dest=0, tag=TAG_ERROR)
        if shared:
            control[protocol.STATUS] = status
            store_fence()
            control[protocol.DONE] = seen
            fence()
            if learner_sleeping[0]:
                futex_wake(control, protocol.DONE)
        elif code != protocol.CLOSE:
            outbox.header[:] = (status, seen)
            comm.Send(outbox.pack(), dest=0, tag=TAG_RESULT)
        if report is not None:
            report.wait()
        if code == protocol.CLOSE:
            return


def rank_message(comm, error: BaseException) -> str:
    return f"aquaml: rank {comm.Get_rank()} of {comm.Get_size()} failed: {type(error).__name__}: {error}"


def _mapped_segments() -> set[str]:
    """The /dev/shm files this process maps (Linux; empty elsewhere)."""
    try:
        with open("/proc/self/maps") as f:
            return {line.split(maxsplit=5)[5].strip() for line in f
                    if "/dev/shm/" in line and not line.rstrip().endswith("(deleted)")}
    except OSError:
        return set()


def _unlink(paths) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


def abort(comm, error: BaseException) -> None:
    """End every rank of the job after ``error`` on this one (no rank is left waiting)."""
    traceback.print_exception(error, file=sys.stderr)
    print(rank_message(comm, error), file=sys.stderr, flush=True)
    comm.Abort(1)
