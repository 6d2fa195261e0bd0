import os
import subprocess
import sys


def _run(code: str, **env):
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120)


def test_import_selects_jax_backend_even_if_another_was_requested():
    r = _run("import aquaml, keras; print(keras.backend.backend())", KERAS_BACKEND="numpy")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "jax"


def test_keras_loaded_with_other_backend_is_a_clear_error():
    r = _run("import keras\nimport aquaml", KERAS_BACKEND="numpy")
    assert r.returncode != 0
    assert "BackendError" in r.stderr and "import aquaml before keras" in r.stderr


def test_seed_import_paths_are_reexports():
    r = _run(
        "from AquaML.BaseClass import RLBaseEnv\n"
        "from AquaML.DataType import DataInfo\n"
        "from AquaML.rlalgo.Parameters import SAC2_parameter\n"
        "from AquaML.rlalgo.SAC2 import SAC2\n"
        "from AquaML.starter.RLTaskStarter import RLTaskStarter\n"
        "from AquaML.Tool import allocate_gpu\n"
        "import aquaml\n"
        "assert RLBaseEnv is aquaml.RLBaseEnv and SAC2 is aquaml.SAC and RLTaskStarter is aquaml.RLTaskStarter\n"
        "assert allocate_gpu(None) is None\n"
        "print('ok')",
        CUDA_VISIBLE_DEVICES="",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
