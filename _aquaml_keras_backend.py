"""Start-up hook installed with aquaml: a plain ``import keras`` gets the JAX backend when Keras'
own choice could not load.

Keras 3 picks its backend once, on first import: ``KERAS_BACKEND`` if set (and non-empty), else
the ``"backend"`` entry of ``$KERAS_HOME/keras.json`` (default ``~/.keras/keras.json``), else
``"tensorflow"``; its first import also writes a keras.json naming ``"tensorflow"`` when none
exists, whatever backend it runs with. So in an environment with aquaml and without
TensorFlow, ``import keras`` before ``import aquaml`` crashes with ``No module named
'tensorflow'`` unless something selected JAX first.

``aquaml-keras-backend.pth`` (installed next to this module in site-packages) calls
:func:`install` at interpreter start-up. It puts a one-shot finder in front of
``sys.meta_path`` that, just before the first import of ``keras``, sets ``KERAS_BACKEND=jax``
when

* ``KERAS_BACKEND`` is unset or empty (the user chose no backend), and
* the backend Keras would take from keras.json (or its ``"tensorflow"`` default) is not
  installed, e.g. the stale default keras.json written by an earlier import.

A backend that is set, or configured and installed, is left alone; aquaml's import then
raises ``BackendError`` if it is not JAX. Processes that never import Keras are not changed at
all (not even their environment), so nothing here runs before a backend choice a program
makes itself (``os.environ.setdefault("KERAS_BACKEND", ...)``) and child processes inherit no
setting they would not have made themselves. At start-up this costs one small import; it never
raises.
"""
import os  # os and sys: already loaded at start-up; json, importlib.util: only when Keras is
import sys

# Keras' backend names and the module each needs (keras/src/backend/__init__.py).
_BACKEND_MODULES = {
    "jax": "jax",
    "tensorflow": "tensorflow",
    "torch": "torch",
    "numpy": "numpy",
    "openvino": "openvino",
}


def keras_config_path(environ=None) -> str:
    """The keras.json that Keras reads, computed as keras/src/backend/config.py does."""
    environ = os.environ if environ is None else environ
    if "KERAS_HOME" in environ:
        keras_dir = environ["KERAS_HOME"]
    else:
        base = os.path.expanduser("~")
        if not os.access(base, os.W_OK):
            base = "/tmp"
        keras_dir = os.path.join(base, ".keras")
    return os.path.expanduser(os.path.join(keras_dir, "keras.json"))


UNREADABLE = object()  # a keras.json that Keras itself fails on


def configured_backend(environ=None):
    """The backend Keras would use with ``KERAS_BACKEND`` unset (the value of keras.json's
    ``"backend"``, whatever it is), or ``UNREADABLE`` where Keras would fail to read its
    configuration anyway (a file it cannot open, JSON that is not an object)."""
    path = keras_config_path(environ)
    if not os.path.exists(path):
        return "tensorflow"
    import json

    try:
        with open(path) as f:
            config = json.load(f)
    except ValueError:  # Keras ignores a keras.json that is not JSON
        return "tensorflow"
    except OSError:
        return UNREADABLE
    if not isinstance(config, dict):
        return UNREADABLE
    return config.get("backend", "tensorflow")


def backend_to_set(environ=None):
    """``"jax"`` where the start-up hook should set ``KERAS_BACKEND=jax``, else None."""
    environ = os.environ if environ is None else environ
    if environ.get("KERAS_BACKEND"):
        return None  # the user's choice, honoured by Keras
    backend = configured_backend(environ)
    if backend is UNREADABLE or backend == "jax":
        return None  # Keras would fail on its own config file, or already picks JAX
    module = _BACKEND_MODULES.get(backend) if isinstance(backend, str) else None
    if module is not None:
        from importlib.util import find_spec

        try:
            if find_spec(module) is not None:
                return None  # an installed backend the user (or Keras' default) chose
        except (ImportError, ValueError):
            pass
    return "jax"


def select_backend() -> None:
    """Set ``KERAS_BACKEND=jax`` if :func:`backend_to_set` says so; never raises."""
    try:
        if backend_to_set() == "jax":
            os.environ["KERAS_BACKEND"] = "jax"
    except Exception:  # a start-up hook must never break the interpreter or the import
        pass


class KerasImportHook:
    """Meta-path finder that runs :func:`select_backend` once, when ``keras`` is first looked
    up. It finds nothing itself (the regular finders import Keras), and it stays in place as a
    no-op afterwards: removing it while the import system iterates ``sys.meta_path`` would
    make that lookup skip the next finder."""

    done = False

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname == "keras" and not cls.done:
            cls.done = True
            select_backend()
        return None


def install() -> None:
    """Put :class:`KerasImportHook` first on ``sys.meta_path`` unless Keras is already loaded."""
    if "keras" not in sys.modules and KerasImportHook not in sys.meta_path:
        sys.meta_path.insert(0, KerasImportHook)
