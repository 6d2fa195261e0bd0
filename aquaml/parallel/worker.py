"""The sampler worker process: runs one :class:`EnvBlock` on commands from the learner.

Started by :class:`aquaml.parallel.pool.WorkerPool` as a fresh Python running :func:`main`
with four inherited file descriptors: the control socket (pickled messages, used at
start-up and for rare calls), the wake pipe (learner -> worker) and the done pipe
(worker -> learner). Per step, nothing but the shared arrays and at most one byte each way
is exchanged. The worker imports neither JAX nor Keras, and it exits when the learner's
end of the wake pipe closes, so a killed learner leaves no worker behind.
"""
from __future__ import annotations

import os
import signal
import sys
import traceback
from multiprocessing.connection import Connection

import cloudpickle

from aquaml.parallel.block import EnvBlock
from aquaml.parallel.shared_memory import SharedArrays
from aquaml.parallel.signal import fence, store_fence, wait_until, wake

# Columns of a worker's row in the "control" array (one 64-byte row per worker).
SEQ, CODE, DONE, STATUS, SLEEPING = range(5)
STEP, RESET, CALL, CLOSE = 1, 2, 3, 4
OK, ERROR = 0, 1
CONTROL_COLUMNS = 8
WAIT_TIMEOUT_S = 0.5  # periodic wake-up: a lost wake-up or a vanished learner never hangs a worker


def serve(index: int, conn: Connection, wake_fd: int, done_fd: int) -> None:
    sys.path[:] = conn.recv()
    setup = conn.recv_bytes()
    segment, fields, lo, env_fns, make_steppers, mode, spin_s, yield_cpu = cloudpickle.loads(setup)
    table = SharedArrays(fields, name=segment)
    control, learner_sleeping = table["control"][index], table["learner_sleeping"]
    block = None
    try:
        try:
            block = EnvBlock(make_steppers(env_fns), table.arrays, lo, mode)
        except BaseException:
            conn.send(("error", -1, traceback.format_exc()))
            return
        conn.send(("ready", os.getpid()))
        parent = os.getppid()
        seen = 0

        def check_parent() -> None:
            if os.getppid() != parent:
                raise EOFError("learner gone")

        def set_sleeping(v: int) -> None:
            control[SLEEPING] = v

        while True:
            wait_until(lambda: control[SEQ] != seen, spin_s, set_sleeping, [wake_fd], WAIT_TIMEOUT_S, check_parent,
                       yield_cpu)
            seen = int(control[SEQ])
            code, status = int(control[CODE]), OK
            if code == CALL:
                # A call's arguments follow its command, and its one reply (result or error)
                # goes out before DONE while the learner reads it: no size can deadlock.
                env_index, method, args = conn.recv()
                try:
                    conn.send(("ok", block.call(env_index, method, *args)))
                except Exception:
                    conn.send(("error", block.current, traceback.format_exc()))
            else:
                try:
                    if code == STEP:
                        block.step()
                    elif code == RESET:
                        block.reset()
                except Exception:
                    status = ERROR
                    conn.send(("error", block.current, traceback.format_exc()))
            control[STATUS] = status
            store_fence()
            control[DONE] = seen
            fence()
            if learner_sleeping[0]:
                wake(done_fd)
            if code == CLOSE:  # after an error too, the worker waits for CLOSE: the learner reads its report first
                return
    except EOFError:  # the learner closed its pipes or died: nothing to report to
        return
    finally:
        if block is not None:
            block.close()
        table.close()


def main() -> None:
    # Ctrl-C reaches the whole process group: the learner decides how to stop its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    index, conn_fd, wake_fd, done_fd = (int(x) for x in sys.argv[-4:])
    for fd in (wake_fd, done_fd):
        os.set_blocking(fd, False)
    conn = Connection(conn_fd)
    try:
        serve(index, conn, wake_fd, done_fd)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
