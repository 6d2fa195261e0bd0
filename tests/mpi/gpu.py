"""Run under mpirun by tests/test_mpi.py with CUDA_VISIBLE_DEVICES=0,1: writes each rank's placement."""
import json
import os
import sys
from pathlib import Path

from mpi4py import MPI

from aquaml.tools.gpu import allocate_gpu

comm = MPI.COMM_WORLD
chosen = allocate_gpu(comm, learners=2)
Path(sys.argv[1], f"rank{comm.Get_rank()}.json").write_text(json.dumps(
    {"chosen": chosen, "visible": os.environ["CUDA_VISIBLE_DEVICES"], "platforms": os.environ.get("JAX_PLATFORMS")}))
