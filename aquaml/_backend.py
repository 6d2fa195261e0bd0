"""Select the JAX backend for Keras before Keras is imported anywhere.

Keras reads ``KERAS_BACKEND`` once, when it is first imported; afterwards the backend
cannot change within the process. AquaML's training steps are pure JAX functions over
``model.stateless_call``, so any other backend is unusable.

A plain ``import keras`` before ``import aquaml`` is covered by the start-up hook installed
with aquaml (``_aquaml_keras_backend.py``, run by ``aquaml-keras-backend.pth``): where the user
chose no backend and the one Keras would default to is not installed, it selects JAX.
"""
from __future__ import annotations

import os
import sys


class BackendError(ImportError):
    """Keras was loaded with a backend other than JAX before AquaML could select it."""


def select_jax_backend() -> None:
    """Point Keras at JAX, or explain how to fix a process where Keras already loaded."""
    keras_mod = sys.modules.get("keras")
    if keras_mod is None:
        requested = os.environ.get("KERAS_BACKEND")
        if requested not in (None, "", "jax"):
            # An explicit other backend is overridden: AquaML cannot work with it.
            print(f"aquaml: KERAS_BACKEND={requested!r} overridden with 'jax'", file=sys.stderr)
        os.environ["KERAS_BACKEND"] = "jax"
        return
    try:
        backend = keras_mod.backend.backend()
    except Exception:  # a half-initialised keras module; let the later import fail loudly
        return
    if backend != "jax":
        raise BackendError(
            f"Keras was imported with the {backend!r} backend ({_backend_source(keras_mod)}) "
            "before aquaml. AquaML needs the JAX backend: import aquaml before keras, or set "
            "KERAS_BACKEND=jax in the environment before starting Python."
        )


def _backend_source(keras_mod) -> str:
    """Where Keras took its backend from, for the error message."""
    requested = os.environ.get("KERAS_BACKEND")
    if requested:
        return f"KERAS_BACKEND={requested!r}"
    try:
        config_path = os.path.join(keras_mod.src.backend.config.keras_home(), "keras.json")
    except Exception:
        config_path = "keras.json"
    return f"the 'backend' entry of {config_path}, or Keras' default"
