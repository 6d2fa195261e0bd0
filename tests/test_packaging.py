"""Packaging: no two paths that differ only in case (they merge on the default file systems of
macOS and Windows), the wheel's contents, and the seed's ``AquaML.*`` import paths."""
import importlib
import importlib.util
import os
import pkgutil
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import aquaml

ROOT = Path(__file__).resolve().parents[1]
PTH_NAME = "aquaml-keras-backend.pth"
SEED_FILES = [
    "AquaML.py",
    "aquaml/seed/__init__.py",
    "aquaml/seed/BaseClass.py",
    "aquaml/seed/DataType.py",
    "aquaml/seed/Tool.py",
    "aquaml/seed/rlalgo/__init__.py",
    "aquaml/seed/rlalgo/Parameters.py",
    "aquaml/seed/rlalgo/SAC2.py",
    "aquaml/seed/starter/__init__.py",
    "aquaml/seed/starter/RLTaskStarter.py",
]
SEED_IMPORTS = {  # seed import path -> the aquaml object it must be
    "AquaML.BaseClass.RLBaseEnv": "aquaml.env.RLBaseEnv",
    "AquaML.DataType.DataInfo": "aquaml.data.DataInfo",
    "AquaML.Tool.allocate_gpu": "aquaml.tools.gpu.allocate_gpu",
    "AquaML.rlalgo.Parameters.SAC2_parameter": "aquaml.algorithm.SAC2_parameter",
    "AquaML.rlalgo.Parameters.SACParameters": "aquaml.algorithm.SACParameters",
    "AquaML.rlalgo.SAC2.SAC2": "aquaml.algorithm.SAC2",
    "AquaML.starter.RLTaskStarter.RLTaskStarter": "aquaml.RLTaskStarter",
}


def case_collisions(paths):
    """Groups of distinct paths (files or their directories) equal when lowercased."""
    spellings = {}
    for path in paths:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            spellings.setdefault(prefix.lower(), set()).add(prefix)
    return sorted(sorted(group) for group in spellings.values() if len(group) > 1)


def _git_files():
    """Tracked files plus untracked ones git does not ignore; None without git or a checkout."""
    if shutil.which("git") is None:
        return None
    r = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True,
    )
    if r.returncode != 0:
        return None
    return [p for p in r.stdout.split("\0") if p]


def _resolve(dotted):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_case_collision_check_catches_the_old_layout():
    assert case_collisions(["AquaML/Tool.py", "aquaml/env/__init__.py"]) == [["AquaML", "aquaml"]]
    assert case_collisions(["a/README.md", "a/readme.md", "b/x.py"]) == [["a/README.md", "a/readme.md"]]
    assert case_collisions(["AquaML.py", "aquaml/__init__.py", "aquaml/seed/Tool.py", "aquaml/tools/gpu.py"]) == []


def test_no_case_only_collisions_in_the_source_tree():
    files = _git_files()
    if files is None:
        pytest.skip("not a git checkout (or git is missing): cannot list the repository's files")
    assert case_collisions(files) == []
    assert not any(p.startswith("AquaML/") for p in files)
    missing = [p for p in SEED_FILES if p not in files]
    assert not missing, f"seed modules not in the repository: {missing}"


def _copy_source(dest: Path):
    """Copy what a clean checkout holds, so the build writes nothing into the working tree."""
    files = _git_files()
    if files is None:
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "runs"))
        return
    for rel in files:
        src = ROOT / rel
        if src.is_file():  # skips files deleted in the working tree but still in the index
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _can_build_without_isolation():
    try:
        import setuptools
    except ImportError:
        return False
    major = int(setuptools.__version__.split(".")[0])
    # setuptools >= 70.1 builds wheels itself; older ones need the wheel package
    return major >= 68 and (major >= 71 or importlib.util.find_spec("wheel") is not None)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src, out = tmp / "src", tmp / "dist"
    _copy_source(src)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-q", "-w", str(out), str(src)]
    isolated = not _can_build_without_isolation()
    if not isolated:
        cmd.insert(cmd.index("--no-deps"), "--no-build-isolation")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0 and isolated and "build dependencies" in r.stdout + r.stderr:
        pytest.skip("cannot build the wheel: no setuptools>=68 here (pip install \".[test]\") and pip "
                    f"could not fetch it for an isolated build:\n{r.stderr[-2000:]}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (path,) = out.glob("aquaml-*.whl")
    return path


def test_wheel_has_no_case_collisions_and_holds_the_seed_modules(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        pth = zf.read(PTH_NAME).decode()
    assert case_collisions(names) == []
    assert not any(n.startswith("AquaML/") for n in names)
    missing = [p for p in SEED_FILES + ["_aquaml_keras_backend.py", PTH_NAME] if p not in names]
    assert not missing, f"not in the wheel: {missing}"
    # a .pth line is only executed when it starts with "import"; one line, importing the hook
    assert pth.endswith("\n") and pth.count("\n") == 1
    assert pth.startswith("import ") and "_aquaml_keras_backend.install()" in pth


def test_wheel_works_as_installed(wheel, tmp_path):
    """Unpack the wheel as a site directory, ahead of this environment's packages (for the
    dependencies), and check that its own modules and start-up hook are the ones that run."""
    sitedir, home = tmp_path / "site", tmp_path / "home"
    home.mkdir()
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(sitedir)
    deps = [p for p in site.getsitepackages() + [site.getusersitepackages()] if os.path.isdir(p)]
    code = (
        "import site, sys\n"
        f"site.addsitedir({str(sitedir)!r})\n"  # runs the wheel's .pth first
        f"for d in {deps!r}: site.addsitedir(d)\n"
        "import keras\n"
        "backend = keras.backend.backend()\n"
        "import aquaml, AquaML, _aquaml_keras_backend\n"
        "from AquaML.BaseClass import RLBaseEnv\n"
        "from AquaML.rlalgo.SAC2 import SAC2\n"
        "import AquaML.starter.RLTaskStarter as starter\n"
        "assert RLBaseEnv is aquaml.RLBaseEnv and SAC2 is aquaml.SAC2\n"
        "from aquaml.algorithm.presets import builtin_presets\n"  # the preset files are package data
        "assert {'sac', 'td3', 'ppo'} <= set(builtin_presets())\n"
        "for m in (aquaml, AquaML, _aquaml_keras_backend, starter):\n"
        f"    assert m.__file__.startswith({str(sitedir)!r}), m.__file__\n"
        "print(backend)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KERAS_HOME", "PYTHONPATH")}
    env.update(HOME=str(home), USERPROFILE=str(home), JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
    # -S: no site-packages at start-up, so the installed aquaml (and its hook) cannot run first
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    if importlib.util.find_spec("tensorflow") is None:  # else Keras' installed default is kept
        assert r.stdout.strip() == "jax"


def test_seed_import_paths_give_aquaml_objects():
    for seed, target in SEED_IMPORTS.items():
        assert _resolve(seed) is _resolve(target), seed
    import AquaML

    assert AquaML.rlalgo.Parameters.SAC2_parameter is aquaml.SAC2_parameter  # attribute access, as in the seed
    from AquaML import BaseClass, DataType, Tool, rlalgo, starter  # noqa: F401

    # every seed module imports, and each name it exports is aquaml's
    expected = {seed.rpartition(".")[2]: _resolve(target) for seed, target in SEED_IMPORTS.items()}
    seen = set()
    for info in pkgutil.walk_packages(AquaML.__path__, prefix="AquaML."):
        module = importlib.import_module(info.name)
        seen.add(info.name)
        for name in getattr(module, "__all__", []):
            assert getattr(module, name) is expected[name], f"{info.name}.{name}"
    assert {s.rpartition(".")[0] for s in SEED_IMPORTS} <= seen


def test_seed_import_paths_in_a_fresh_process(tmp_path):
    """``AquaML`` imported first (no aquaml, no keras yet) selects the backend and resolves, in
    the installed package (the subprocess runs outside the repository)."""
    code = "".join(f"from {s.rpartition('.')[0]} import {s.rpartition('.')[2]}\n" for s in SEED_IMPORTS)
    code += (
        "import aquaml, keras\n"
        "assert RLBaseEnv is aquaml.RLBaseEnv and SAC2 is aquaml.SAC2 and RLTaskStarter is aquaml.RLTaskStarter\n"
        "assert allocate_gpu(None) is None\n"
        "print(keras.backend.backend())\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "jax"
