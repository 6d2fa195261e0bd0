"""Keras backend selection: ``import aquaml`` first selects JAX; ``import keras`` first gets JAX
from the start-up hook installed with aquaml (``_aquaml_keras_backend.py``, run by
``aquaml-keras-backend.pth``) unless the user chose a backend, and aquaml's import then says
clearly when Keras runs another one. Also JAX's compilation cache: where it goes, cold and warm.

The subprocesses run with no ``KERAS_BACKEND`` and with ``HOME`` / ``KERAS_HOME`` in a temporary
directory, so the developer's own ~/.keras/keras.json plays no part."""
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys

import pytest

import _aquaml_keras_backend as hook

# what Keras 3 writes on its first import when there is no keras.json, whatever backend it runs
STALE_DEFAULT_KERAS_JSON = {"floatx": "float32", "epsilon": 1e-07, "backend": "tensorflow", "image_data_format": "channels_last"}
TENSORFLOW_INSTALLED = importlib.util.find_spec("tensorflow") is not None
KERAS_FIRST = "import keras\nimport aquaml\nimport os\nprint(keras.backend.backend(), os.environ.get('KERAS_BACKEND'))"


def _env(home, keras_home=True, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KERAS_HOME")}
    full.update(HOME=str(home), USERPROFILE=str(home), JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
    if keras_home:
        full["KERAS_HOME"] = str(home / ".keras")
    full.update(env)
    return full


def _run(code, home, keras_home=True, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_env(home, keras_home, **env), timeout=300)


def _write_keras_json(home, config):
    (home / ".keras").mkdir(exist_ok=True)
    (home / ".keras" / "keras.json").write_text(json.dumps(config, indent=4))


def _editable_or_uninstalled():
    """Why this environment may lack the start-up hook without a packaging bug, or None."""
    try:
        dist = importlib.metadata.distribution("aquaml")
    except importlib.metadata.PackageNotFoundError:
        return "aquaml is not installed (tests run from the source tree); the start-up hook ships with the package"
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct_url.get("dir_info", {}).get("editable"):
        return ("this editable install has no aquaml-keras-backend.pth (made before it existed, or by a "
                "setuptools that would not carry it): reinstall with `pip install -e .`")
    return None


@pytest.fixture(scope="module")
def startup_hook(tmp_path_factory):
    """The hook ran at start-up in a fresh interpreter of this environment."""
    home = tmp_path_factory.mktemp("home")
    r = _run("import sys, _aquaml_keras_backend as h\nprint(h.KerasImportHook in sys.meta_path)", home)
    if r.stdout.strip() != "True":
        reason = _editable_or_uninstalled()
        if reason:
            pytest.skip(reason)
        pytest.fail(f"aquaml is installed but its start-up hook did not run: {r.stdout}{r.stderr}")


# ---- import aquaml first --------------------------------------------------------------------


def test_import_selects_jax_backend_even_if_another_was_requested(tmp_path):
    r = _run("import aquaml, keras; print(keras.backend.backend())", tmp_path, KERAS_BACKEND="numpy")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "jax"


def test_keras_loaded_with_other_backend_is_a_clear_error(tmp_path):
    r = _run("import keras\nimport aquaml", tmp_path, KERAS_BACKEND="numpy")
    assert r.returncode != 0
    assert "BackendError" in r.stderr and "import aquaml before keras" in r.stderr
    assert "KERAS_BACKEND='numpy'" in r.stderr


# ---- import keras first (the start-up hook) -----------------------------------------------


@pytest.mark.skipif(TENSORFLOW_INSTALLED, reason="Keras' default backend (tensorflow) is installed and is kept")
def test_import_keras_first_gets_jax(startup_hook, tmp_path):
    r = _run(KERAS_FIRST, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["jax", "jax"]
    # Keras wrote its default keras.json ("tensorflow"); the next run must still work
    assert json.loads((tmp_path / ".keras" / "keras.json").read_text())["backend"] == "tensorflow"
    r = _run(KERAS_FIRST, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["jax", "jax"]


@pytest.mark.skipif(TENSORFLOW_INSTALLED, reason="the keras.json names tensorflow, which is installed here")
def test_stale_keras_json_naming_missing_tensorflow_gets_jax(startup_hook, tmp_path):
    _write_keras_json(tmp_path, STALE_DEFAULT_KERAS_JSON)  # in ~/.keras: no KERAS_HOME
    r = _run(KERAS_FIRST, tmp_path, keras_home=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["jax", "jax"]


def test_explicit_jax_is_unchanged(startup_hook, tmp_path):
    _write_keras_json(tmp_path, {**STALE_DEFAULT_KERAS_JSON, "backend": "numpy"})
    r = _run(KERAS_FIRST, tmp_path, KERAS_BACKEND="jax")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["jax", "jax"]


def test_keras_json_naming_an_installed_backend_is_honoured(startup_hook, tmp_path):
    # numpy: a Keras backend that needs no package beyond Keras' own dependencies
    _write_keras_json(tmp_path, {**STALE_DEFAULT_KERAS_JSON, "backend": "numpy"})
    r = _run("import keras, os\nprint(keras.backend.backend(), os.environ.get('KERAS_BACKEND'))", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["numpy", "None"]
    r = _run(KERAS_FIRST, tmp_path)
    assert r.returncode != 0
    assert "BackendError" in r.stderr and "'numpy' backend" in r.stderr and "keras.json" in r.stderr


def test_backend_chosen_in_code_before_import_keras_is_honoured(startup_hook, tmp_path):
    r = _run("import os\nos.environ.setdefault('KERAS_BACKEND', 'numpy')\nimport keras\n"
             "print(keras.backend.backend())", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "numpy"


def test_processes_without_keras_are_untouched(startup_hook, tmp_path):
    r = _run("import os, sys\nprint(os.environ.get('KERAS_BACKEND'), 'keras' in sys.modules)", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["None", "False"]


# ---- the hook's decision, in-process ----------------------------------------------------------


@pytest.mark.parametrize(
    ("keras_json", "expected"),
    [
        (None, None if TENSORFLOW_INSTALLED else "jax"),  # no keras.json: Keras' default, tensorflow
        (STALE_DEFAULT_KERAS_JSON, None if TENSORFLOW_INSTALLED else "jax"),
        ({"backend": "jax"}, None),
        ({"backend": "numpy"}, None),
        ({"floatx": "float32"}, None if TENSORFLOW_INSTALLED else "jax"),  # no "backend" key
        ({"backend": "no-such-backend"}, "jax"),
        ({"backend": None}, "jax"),
        ("{not json", None if TENSORFLOW_INSTALLED else "jax"),  # Keras ignores it too
        ([1, 2], None),  # Keras itself fails on this file; nothing to fix here
    ],
)
def test_backend_to_set(tmp_path, keras_json, expected):
    if keras_json is not None:
        text = keras_json if isinstance(keras_json, str) else json.dumps(keras_json)
        (tmp_path / "keras.json").write_text(text)
    assert hook.backend_to_set({"KERAS_HOME": str(tmp_path)}) == expected


def test_backend_to_set_leaves_a_chosen_backend(tmp_path):
    assert hook.backend_to_set({"KERAS_HOME": str(tmp_path), "KERAS_BACKEND": "torch"}) is None
    assert hook.backend_to_set({"KERAS_HOME": str(tmp_path), "KERAS_BACKEND": "jax"}) is None
    # an empty KERAS_BACKEND is no choice for Keras either
    assert hook.backend_to_set({"KERAS_HOME": str(tmp_path), "KERAS_BACKEND": ""}) == (None if TENSORFLOW_INSTALLED else "jax")


def test_keras_config_path_matches_keras(tmp_path):
    from keras.src.backend import config

    assert hook.keras_config_path(os.environ) == os.path.expanduser(os.path.join(config.keras_home(), "keras.json"))
    assert hook.keras_config_path({"KERAS_HOME": str(tmp_path)}) == str(tmp_path / "keras.json")


def test_a_broken_setup_never_raises(monkeypatch):
    monkeypatch.setattr(hook, "backend_to_set", lambda environ=None: 1 / 0)
    hook.select_backend()


# ---- the JAX compilation cache (aquaml/model/jax_setup.py) -------------------------------------

# Compiles one program big enough to be cached (over 0.1 s to compile) and prints JAX's cache
# hits and misses: what importing aquaml.model made of AQUAML_JAX_CACHE.
CACHE_PROBE = """
import jax, jax.numpy as jnp
import aquaml.model
events = []
jax.monitoring.register_event_listener(lambda event, **kwargs: events.append(event))
def f(x):
    for i in range(20):
        x = jnp.sin(x) @ x + i
    return x
jax.jit(f)(jnp.ones((8, 8))).block_until_ready()
jnp.ones((3,)) * 2.0  # an eager op: a program that compiles in milliseconds, stored too
print(jax.config.jax_compilation_cache_dir, events.count("/jax/compilation_cache/cache_hits"),
      events.count("/jax/compilation_cache/cache_misses"))
"""


def test_a_cold_compilation_cache_is_filled_and_a_warm_one_is_reused(tmp_path):
    cache = tmp_path / "jax"  # does not exist yet: the first process makes it
    cold = _run(CACHE_PROBE, tmp_path, AQUAML_JAX_CACHE=str(cache))
    assert cold.returncode == 0, cold.stderr[-3000:]
    folder, hits, misses = cold.stdout.split()
    assert folder == str(cache) and int(hits) == 0 and int(misses) > 0
    entries = set(os.listdir(cache))
    assert entries, "nothing was written to the cache"
    warm = _run(CACHE_PROBE, tmp_path, AQUAML_JAX_CACHE=str(cache))
    assert warm.returncode == 0, warm.stderr[-3000:]
    folder, hits, misses = warm.stdout.split()
    # everything loaded, the eager op's program included; nothing compiled and written again
    assert int(hits) >= 2 and int(misses) == 0 and set(os.listdir(cache)) == entries
    off = _run(CACHE_PROBE, tmp_path, AQUAML_JAX_CACHE="off")
    assert off.returncode == 0, off.stderr[-3000:]
    assert off.stdout.split()[0] == "None"


def test_the_test_session_compiles_into_its_own_cache():
    """tests/conftest.py gives every test session a fresh cache, which its subprocesses inherit;
    the user's ~/.cache/aquaml/jax plays no part."""
    import jax

    import aquaml.model  # noqa: F401  (points JAX at the cache)

    session = os.environ["AQUAML_TEST_JAX_CACHE"]
    assert jax.config.jax_compilation_cache_dir == os.environ["AQUAML_JAX_CACHE"] == session
    assert os.path.realpath(session) != os.path.realpath(os.path.expanduser("~/.cache/aquaml/jax"))
