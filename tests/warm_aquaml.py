"""A warm ``aquaml`` for tests that run many shell commands (tests/test_docs.py).

Every ``aquaml`` process spends about 3 s of the 2-core machine importing JAX, Keras, Gymnasium
and AquaML before it reads its arguments; the documents hold about 50 such commands. Here one
server process imports them once, and each ``aquaml ARGS`` the shell runs is a small client
that hands its arguments, working directory, environment and its stdin/stdout/stderr (the file
descriptors themselves, so pipes and redirections behave as printed) to the server, which forks
a child that runs ``python -m aquaml.cli ARGS`` in that state and exits with its exit status.

Each command is still its own process: the child starts from the server's imported modules and
nothing else, and no command sees another's state. What differs from a fresh interpreter is
only what is decided at import time, so a command whose environment differs from the server's in
a variable read at import (:data:`IMPORT_TIME`) is run by a fresh interpreter instead, as is
every command when the server is not running. The JAX backend is never started in the server
(checked): its threads would not survive a fork.

    python tests/warm_aquaml.py serve SOCKET   # the server (tests start it with start_new_session)
    python -I -S tests/warm_aquaml.py ARGS...  # the client: the ``aquaml`` on the tests' PATH
"""
from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys

#: the variable naming the server's socket in a client's environment
SOCKET_VAR = "AQUAML_WARM_SOCKET"
#: prefixes of variables read when modules are imported: a client whose values differ runs fresh
IMPORT_TIME = ("JAX_", "XLA_", "KERAS_", "TF_", "CUDA_", "AQUAML_JAX_CACHE", "MPLBACKEND", "PYTHON")
#: modules the server imports (each pulls in its own imports)
PRELOAD = ("jax", "jax.numpy", "optax", "keras", "gymnasium", "numpy", "aquaml.cli", "aquaml.apps.commands",
           "aquaml.algorithm", "aquaml.starter", "aquaml.starter.rl_task_starter", "aquaml.env", "aquaml.data",
           "aquaml.model.defaults")
FALLBACK = -1000  #: the server's answer "run it fresh"


def import_time_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME) and k != SOCKET_VAR}


def _send(sock: socket.socket, payload: bytes, fds: list[int] = ()) -> None:
    message = struct.pack("<I", len(payload)) + payload
    if fds:
        socket.send_fds(sock, [message], list(fds))
    else:
        sock.sendall(message)


def _receive(sock: socket.socket, want_fds: int = 0) -> tuple[bytes, list[int]]:
    if want_fds:
        data, fds, _, _ = socket.recv_fds(sock, 1 << 16, want_fds)
    else:
        data, fds = sock.recv(1 << 16), []
    while len(data) < 4 or len(data) < 4 + struct.unpack_from("<I", data)[0]:
        more = sock.recv(1 << 16)
        if not more:
            raise ConnectionError("the other side closed the connection mid-message")
        data += more
    return data[4:4 + struct.unpack_from("<I", data)[0]], list(fds)


def client(argv: list[str]) -> None:
    """Run ``aquaml argv`` in a child of the server, or in a fresh interpreter."""
    path = os.environ.get(SOCKET_VAR)
    if path:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(path)
                request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
                _send(sock, json.dumps(request).encode(), [0, 1, 2])
                code = int(_receive(sock)[0])
            if code != FALLBACK:
                sys.exit(code)
        except (ConnectionError, FileNotFoundError) as error:
            print(f"warm_aquaml: no server at {path} ({error}); running a fresh interpreter", file=sys.stderr)
    os.execv(sys.executable, [sys.executable, "-P", "-m", "aquaml.cli", *argv])


def _run_child(request: dict, fds: list[int]) -> None:
    """In the forked child: become ``python -m aquaml.cli ARGS`` in the client's state; never returns."""
    import atexit
    import runpy
    import traceback

    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["aquaml", *request["argv"]]
        try:
            runpy.run_module("aquaml.cli", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as stop:
            if stop.code is None or isinstance(stop.code, int):
                code = stop.code or 0
            else:
                print(stop.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        atexit._run_exitfuncs()  # what an interpreter runs at exit (os._exit skips it)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def serve(path: str) -> None:
    """Import :data:`PRELOAD`, then fork one child per request until killed."""
    import importlib

    from aquaml.tools.imports import import_without_torch

    import_without_torch("tensorboardX")
    for module in PRELOAD:
        importlib.import_module(module)
    from jax._src import xla_bridge

    assert not xla_bridge._backends, "importing started the JAX backend: its threads would not survive fork"
    server_env = import_time_env(dict(os.environ))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    os.replace(path + ".tmp", path)  # the socket appears once the server is ready
    listener.listen(16)
    waiting: dict[int, socket.socket] = {}  # child pid -> the client's connection
    while True:
        ready, _, _ = select.select([listener], [], [], 0.05)
        if ready:
            conn, _ = listener.accept()
            payload, fds = _receive(conn, 3)
            request = json.loads(payload)
            if import_time_env(request["env"]) != server_env or len(fds) != 3:
                for fd in fds:
                    os.close(fd)
                _send(conn, str(FALLBACK).encode())
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                conn.close()
                _run_child(request, fds)
            for fd in fds:
                os.close(fd)
            waiting[pid] = conn
        while waiting:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = waiting.pop(pid, None)
            if conn is not None:
                _send(conn, str(os.waitstatus_to_exitcode(status)).encode())
                conn.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2])
    else:
        client(sys.argv[1:])
