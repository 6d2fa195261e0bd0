"""Waking a process that waits for a counter in shared memory: bounded spinning, then a pipe.

The waiter first polls the counter for ``spin_s`` seconds (sub-microsecond reaction when it
has a core to itself), then announces that it sleeps and blocks on a pipe, so no process
spins for long. With fewer cores than processes the poll loop yields the CPU between polls
(``sched_yield``): a spinning process never keeps a runnable one off a core, and a round
trip still costs about 12 us instead of a pipe's 30-50 us (measured on this project's
2-core machine). The other side writes one byte
only when the waiter announced sleep. A pipe also carries death: a closed write end (the
peer exited or was killed) ends the wait at once.

The flag/counter hand-over is Dekker-style (store, then load the other's store), which needs
a full memory barrier between the two; taking an uncontended lock provides one. Waits also
time out periodically, so a lost wake-up could never hang a process.
"""
from __future__ import annotations

import ctypes
import os
import platform
import select
import sys
import threading
import time
from typing import Callable

_barrier = threading.Lock()

#: spinning relies on stores becoming visible in program order (x86-64 total store order);
#: other architectures wait on the pipe only
SPIN_SAFE = platform.machine().lower() in ("x86_64", "amd64")


def fence() -> None:
    """A full memory barrier between a store and a following load."""
    with _barrier:
        pass


def store_fence() -> None:
    """Order two stores (data, then the counter announcing it): free under x86-64's total store
    order, a full barrier elsewhere."""
    if not SPIN_SAFE:
        fence()


def default_spin(processes: int) -> tuple[float, bool]:
    """``(spin_s, yield_cpu)`` for ``processes`` taking turns: yield when they outnumber the cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return (1e-3 if SPIN_SAFE else 0.0), processes > cores


def drain(fd: int) -> bool:
    """Read whatever wake-up bytes are waiting; False when the write end is closed."""
    while True:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return True
        if not data:
            return False
        if len(data) < 4096:
            return True


def _spin(ready: Callable[[], bool], spin_s: float, yield_cpu: bool) -> bool:
    """Poll ``ready()`` for up to ``spin_s`` seconds (yielding the core between polls if asked)."""
    if ready():
        return True
    end = time.perf_counter() + spin_s
    while time.perf_counter() < end:
        if ready():
            return True
        if yield_cpu:
            os.sched_yield()
    return False


def wait_until(ready: Callable[[], bool], spin_s: float, set_sleeping: Callable[[int], None],
               fds: list[int], timeout_s: float, on_timeout: Callable[[], None], yield_cpu: bool = False) -> None:
    """Return once ``ready()``; between polls, ``on_timeout()`` may raise (peer death checks).

    Raises ``EOFError`` when one of ``fds`` is closed by its writer.
    """
    if _spin(ready, spin_s, yield_cpu):
        return
    poller = select.poll()  # no limit on descriptor numbers, unlike select()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    while True:
        set_sleeping(1)
        try:
            fence()
            if ready():
                return
            events = poller.poll(timeout_s * 1000)
        finally:
            set_sleeping(0)
        for fd, _ in events:
            if not drain(fd):
                raise EOFError(fd)
        if ready():
            return
        if not events:
            on_timeout()


def poll_until(ready: Callable[[], bool], spin_s: float, yield_cpu: bool, check: Callable[[], None],
               check_every_s: float = 0.1, max_sleep_s: float = 1e-3) -> None:
    """Like :func:`wait_until` for peers that share no pipe (MPI ranks): spin, then sleep-poll.

    After the spin, the sleeps grow from 20 us to ``max_sleep_s``, so an idle wait costs
    almost no CPU and a wake-up arrives within about a millisecond; ``check()`` runs every
    ``check_every_s`` and may raise (peer death).
    """
    if _spin(ready, spin_s, yield_cpu):
        return
    next_check = time.perf_counter() + check_every_s
    sleep = 20e-6
    while not ready():
        time.sleep(sleep)
        sleep = min(2 * sleep, max_sleep_s)
        if time.perf_counter() > next_check:
            check()
            next_check = time.perf_counter() + check_every_s


def wake(fd: int) -> None:
    """Write one wake-up byte; a full pipe (the peer will wake anyway) or a gone peer is not an error."""
    try:
        os.write(fd, b"w")
    except (BlockingIOError, BrokenPipeError):  # a gone peer is found by its own checks
        pass


# -- futexes: sleeping on a word of shared memory (MPI ranks share no pipe) ----------------------
_FUTEX_WAIT, _FUTEX_WAKE = 0, 1
_SYS_FUTEX = {"x86_64": 202, "amd64": 202}.get(platform.machine().lower())


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


try:
    _libc = ctypes.CDLL(None, use_errno=True) if _SYS_FUTEX is not None and sys.platform == "linux" else None
except OSError:
    _libc = None
#: whether :func:`futex_wait` really sleeps in the kernel (Linux x86-64); elsewhere it sleep-polls
HAVE_FUTEX = _libc is not None


def _word(array, index: int) -> int:
    """Address of the low 32 bits of the int64 ``array[index]`` (little-endian)."""
    return array.ctypes.data + index * array.strides[0]


def futex_wait(array, index: int, expected: int, timeout_s: float) -> None:
    """Sleep while the low 32 bits of ``array[index]`` equal ``expected``, for at most ``timeout_s``.

    The kernel compares and sleeps atomically, so a store plus :func:`futex_wake` by another
    process can never be missed. Returns early on a wake-up, a changed value or a signal.
    """
    if _libc is None:
        time.sleep(min(timeout_s, 1e-4))
        return
    ts = _Timespec(int(timeout_s), int((timeout_s % 1) * 1e9))
    _libc.syscall(_SYS_FUTEX, ctypes.c_void_p(_word(array, index)), _FUTEX_WAIT,
                  ctypes.c_uint32(expected & 0xFFFFFFFF), ctypes.byref(ts), None, 0)


def futex_wake(array, index: int) -> None:
    """Wake every process sleeping in :func:`futex_wait` on ``array[index]``."""
    if _libc is not None:
        _libc.syscall(_SYS_FUTEX, ctypes.c_void_p(_word(array, index)), _FUTEX_WAKE, 2**31 - 1, None, None, 0)


def futex_until(ready: Callable[[], bool], spin_s: float, yield_cpu: bool, set_sleeping: Callable[[int], None],
                array, index: int, check: Callable[[], None], check_every_s: float = 0.1) -> None:
    """Like :func:`wait_until`, sleeping on the word ``array[index]`` that the peer changes.

    The peer stores the word, then (after a fence) calls :func:`futex_wake` if this side
    announced sleep with ``set_sleeping(1)``.
    """
    if _spin(ready, spin_s, yield_cpu):
        return
    while True:
        value = int(array[index])
        set_sleeping(1)
        try:
            fence()
            if ready():
                return
            futex_wait(array, index, value, check_every_s)
        finally:
            set_sleeping(0)
        if ready():
            return
        check()
