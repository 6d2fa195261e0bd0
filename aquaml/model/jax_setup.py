"""JAX settings that make small, frequently repeated training programs fast.

Two settings, applied when :mod:`aquaml.model` is imported (before anything compiles):

* **Persistent compilation cache.** Compiling PPO's whole update takes about 1.5 s on this
  project's 2-core machine, as long as 40k CartPole steps. Compiled programs are stored in
  ``~/.cache/aquaml/jax`` (or ``$AQUAML_JAX_CACHE``; ``AQUAML_JAX_CACHE=off`` disables it),
  so a rerun, a tuning trial or another MPI rank with the same shapes loads them instead.
  Every program is stored, however quick to compile: building a SAC agent runs about 60 small
  eager programs (Keras' initializers, one program per op), 1.4 s of compiling in every new
  process when only programs slower than 0.1 s to compile were kept (startup of a SAC run on
  Pendulum, after the imports: 2.9 s, 1.6 s with all of them loaded from the cache).
* **Unrolled Threefry for acting on CPU.** JAX lowers its random-bit generator on CPU as a
  rolled loop (to keep compile times short on big programs); each loop iteration is a
  separate kernel launch. Acting for a few environments draws random numbers in every call,
  and there the loop dominates: SAC's act went from 31.6 to 16.7 us and PPO's from 59 to
  23 us per call with the unrolled lowering JAX uses on GPUs. In a training update the
  unrolled form only doubles compile time (SAC's update: 3.5-3.9 s rolled, 5.7-7.6 s
  unrolled on a 2-core AVX2 machine, same run time), so programs compiled through
  :func:`acting_jit` get the unrolled form and every other program JAX's rolled one. The
  bits are identical (the same function, unrolled; a test checks known values). This uses
  JAX internals, so it is skipped, keeping JAX's default everywhere, if they move.
"""
from __future__ import annotations

import contextlib
import functools
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Callable

_unrolled = False
#: whether a program being lowered now is an acting program (see :func:`acting_jit`)
_acting: ContextVar[bool] = ContextVar("aquaml_acting_lowering", default=False)


@contextlib.contextmanager
def unrolled_random():
    """Programs first traced inside this block use the unrolled Threefry lowering on CPU."""
    token = _acting.set(True)
    try:
        yield
    finally:
        _acting.reset(token)


def use_unrolled_threefry() -> bool:
    """Register a CPU Threefry lowering that unrolls inside :func:`unrolled_random`; True when in place."""
    global _unrolled
    if not _unrolled:
        try:
            from jax._src.interpreters import mlir
            from jax._src.random import threefry2x32 as threefry

            unrolled, rolled = threefry._threefry2x32_lowering_rule, threefry._threefry2x32_cpu_lowering_rule

            def lowering(ctx, *args, **kwargs):
                return (unrolled if _acting.get() else rolled)(ctx, *args, **kwargs)

            mlir.register_lowering(threefry.threefry2x32_p, lowering, platform="cpu")
            _unrolled = True
        except (ImportError, AttributeError):
            pass
    return _unrolled


def acting_jit(fn: Callable, **jit_kwargs) -> Callable:
    """``jax.jit(fn)`` for a small program called every environment step (a policy's ``act``).

    It is compiled with the unrolled random-bit generator (see the module docstring).
    """
    import jax

    jitted = jax.jit(fn, **jit_kwargs)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        token = _acting.set(True)  # tracing and lowering happen inside the first call
        try:
            return jitted(*args, **kwargs)
        finally:
            _acting.reset(token)

    call.jitted = jitted
    return call


def compilation_cache_dir() -> Path | None:
    """Where compiled programs are kept, or None when ``AQUAML_JAX_CACHE`` is ``off``/``0``."""
    setting = os.environ.get("AQUAML_JAX_CACHE", "")
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    return Path(setting).expanduser() if setting else Path.home() / ".cache" / "aquaml" / "jax"


def use_compilation_cache() -> Path | None:
    """Point JAX's persistent cache at :func:`compilation_cache_dir` unless the user set one."""
    import jax

    if jax.config.jax_compilation_cache_dir:  # the user's own choice wins
        return Path(jax.config.jax_compilation_cache_dir)
    path = compilation_cache_dir()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: run without the cache
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # every program: see above
    return path
