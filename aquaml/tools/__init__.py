"""Run tools: logging, checkpoints, GPU placement, versions."""
from aquaml.tools.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from aquaml.tools.gpu import allocate_gpu
from aquaml.tools.logger import COLUMNS, RunLogger, format_table

__all__ = ["allocate_gpu", "RunLogger", "COLUMNS", "format_table", "save_checkpoint", "load_checkpoint", "latest_checkpoint"]
