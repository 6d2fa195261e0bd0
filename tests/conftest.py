import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

import aquaml  # noqa: E402,F401  (selects the JAX backend before keras loads)
import pytest  # noqa: E402


@pytest.fixture
def run_root(tmp_path):
    return tmp_path / "runs"
