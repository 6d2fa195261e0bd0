"""Named data: descriptions, batches, replay storage, datasets and their files."""
from aquaml.data.info import DataInfo
from aquaml.data.batch import batch_size, flatten, nest
from aquaml.data.replay_buffer import ReplayBuffer
from aquaml.data.dataset import Dataset, DatasetError
from aquaml.data.io import load_data, load_dataset, save_data
from aquaml.data.rosbag import from_rosbag

__all__ = ["DataInfo", "ReplayBuffer", "Dataset", "DatasetError", "save_data", "load_data", "load_dataset",
           "from_rosbag", "nest", "flatten", "batch_size"]
