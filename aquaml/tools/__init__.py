"""Run tools: logging, checkpoints, GPU placement, versions, command-line helpers.

The names below load their modules on first use: the command-line helpers
(:mod:`aquaml.tools.console`) serve ``aquaml plot``, which must not pay for JAX, which
checkpoints import.
"""
from importlib import import_module

_EXPORTS = {"latest_checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
            "allocate_gpu": "gpu", "COLUMNS": "logger", "RunLogger": "logger", "format_table": "logger"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"aquaml.tools.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'aquaml.tools' has no attribute {name!r}")
