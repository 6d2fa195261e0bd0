"""Named data: descriptions, batches, replay storage and datasets on disk."""
from aquaml.data.info import DataInfo
from aquaml.data.batch import batch_size, flatten, nest
from aquaml.data.replay_buffer import ReplayBuffer
from aquaml.data.io import load_data, save_data

__all__ = ["DataInfo", "ReplayBuffer", "save_data", "load_data", "nest", "flatten", "batch_size"]
