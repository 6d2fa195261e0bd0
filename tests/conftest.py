import atexit
import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # a pytest-xdist worker shares the cores with the others (-n 2 in pyproject.toml): one XLA thread
    # each, instead of every worker's thread pool claiming every core
    os.environ["XLA_FLAGS"] += " --xla_cpu_multi_thread_eigen=false"

# The session's own JAX compilation cache (aquaml/model/jax_setup.py), set before aquaml is
# imported: every run starts cold, so neither its time nor its results depend on what
# ~/.cache/aquaml/jax holds, and the user's cache is left alone. Subprocesses (mpirun's ranks,
# tuning trials, workers, a pytest-xdist worker) inherit it; AQUAML_TEST_JAX_CACHE marks it as
# this session's, so a worker process reuses its controller's folder instead of making another.
if "AQUAML_TEST_JAX_CACHE" not in os.environ:
    os.environ["AQUAML_TEST_JAX_CACHE"] = tempfile.mkdtemp(prefix="aquaml-test-jax-")
    atexit.register(shutil.rmtree, os.environ["AQUAML_TEST_JAX_CACHE"], ignore_errors=True)
os.environ["AQUAML_JAX_CACHE"] = os.environ["AQUAML_TEST_JAX_CACHE"]
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)  # JAX's own setting would win over AQUAML_JAX_CACHE
# Minari datasets a test writes (minari:NAME ids) go to a folder of this process, not ~/.minari/datasets:
# a dataset id left there by an earlier run would make the next run's `aquaml collect --out minari:...` fail
os.environ["MINARI_DATASETS_PATH"] = tempfile.mkdtemp(prefix="aquaml-test-minari-")
atexit.register(shutil.rmtree, os.environ["MINARI_DATASETS_PATH"], ignore_errors=True)

import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

import aquaml  # noqa: E402,F401  (selects the JAX backend before keras loads)
import keras  # noqa: E402
import pytest  # noqa: E402

from benchmarks.recipes import Reference  # noqa: E402


#: files of long tests that share no costly module-scoped fixture: under pytest-xdist their tests
#: spread over the workers one by one (the imitation tests' session-scoped expert is then trained
#: once per worker, 30 s, and tests sharing a costlier fixture carry their own xdist_group); every
#: other file runs on one worker, as one xdist group, so that its fixtures are built once
SPREAD = {"test_learning.py", "test_mujoco_learning.py", "test_imitation_learning.py", "test_mpi.py", "test_tune.py",
          "test_parallel.py", "test_docs.py", "test_guides.py", "test_starter.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name not in SPREAD and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
    # the long tests first: pytest-xdist hands tests out in this order, so the two workers end
    # together instead of one finishing a late long test while the other waits (stable otherwise)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _seeded():
    """The same Python, numpy and Keras seeds before every test: a model a test builds without a
    seed of its own gets the same weights whichever tests ran before it."""
    keras.utils.set_random_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _cwd_outside_the_repository(tmp_path_factory):
    """Run the tests from a temporary folder, so that whatever writes into the current
    directory (MuJoCo's ``MUJOCO_LOG.TXT``, the default ``run_root='runs'``) stays out of
    the working tree. Tests reach the repository through ``Path(__file__)``."""
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(previous)


@pytest.fixture
def run_root(tmp_path):
    return tmp_path / "runs"


@dataclasses.dataclass
class PendulumExpert(Reference):
    run_dir: Path  #: the expert's run folder


@pytest.fixture(scope="session")
def pendulum_expert(tmp_path_factory) -> PendulumExpert:
    """A SAC expert on Pendulum-v1 trained once per test session (20k steps, about 40 s on 2 cores),
    with the returns that normalise imitation scores (``benchmarks.recipes.Reference``: its own and
    random actions' over 20 held-out episodes) and its ``run_dir``. Its score is asserted, since a
    weak expert would make every normalised imitation threshold easier."""
    from benchmarks.learning_runs import sac_pendulum, train
    from benchmarks.recipes import expert_reference

    run_dir = train(sac_pendulum(0, 20_000, evals=1), tmp_path_factory.mktemp("expert"), name="expert").run_dir
    expert = PendulumExpert(**dataclasses.asdict(expert_reference(run_dir, "Pendulum-v1")), run_dir=run_dir)
    print(f"\nPendulum expert: R_expert {expert.expert_return:.1f}, R_random {expert.random_return:.1f}")
    # measured (benchmarks/pendulum_data.py, the same run): R_expert -125.7, R_random -1180.5; SAC's
    # five seeds at 20k steps span -120 to -189 on the evaluation episodes (tests/test_learning.py)
    assert expert.expert_return >= -160 and expert.random_return <= -1000, expert
    return expert
