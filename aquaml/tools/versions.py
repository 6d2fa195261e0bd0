"""Package versions recorded with every run."""
from __future__ import annotations

import platform
import sys
from importlib import metadata

PACKAGES = ("aquaml", "jax", "jaxlib", "keras", "optax", "numpy", "gymnasium", "tensorboardX")


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
