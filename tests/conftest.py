import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

import aquaml  # noqa: E402,F401  (selects the JAX backend before keras loads)
import pytest  # noqa: E402


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
