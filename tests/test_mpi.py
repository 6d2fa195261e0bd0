"""The same script under ``mpirun -n 3``: it learns, both data paths give the same run, faults end every rank."""
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import MPIRUN, ROOT, cartpole_demos, mpirun, pendulum_dataset, summary_line

SCRIPT = Path(__file__).resolve().parent / "mpi" / "train_sac.py"
pytestmark = pytest.mark.skipif(MPIRUN is None, reason="needs mpirun (pip install 'aquaml[mpi]')")


@pytest.mark.slow
def test_sac_under_mpirun_reaches_the_single_process_threshold(tmp_path):
    """-200 within 20k env steps counted over both samplers (the mean of the last two of eight
    evaluations, as in one process). One transport: that the on-node window and the message path
    give the same run is test_overlap_under_mpi_gives_the_same_run_on_both_paths's."""
    result, _ = mpirun([SCRIPT, tmp_path])
    assert result.returncode == 0, result.stderr[-3000:]
    out = summary_line(result.stdout)
    print(out)
    assert out["rank"] == 0 and out["steps"] == 20_000 and len(out["history"]) == 8
    assert np.mean([r for _, r in out["history"][-2:]]) >= -200, out["history"]
    assert len(list(tmp_path.glob("*/*/progress.csv"))) == 1  # only rank 0 wrote a run directory


def test_seed_tutorial_pattern_runs_under_mpirun(tmp_path):
    """allocate_gpu at the top, mpi_comm=comm, run() on every rank: the seed's MPI recipe."""
    result, _ = mpirun([ROOT / "examples" / "tutorial1_sac_pendulum.py"], cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("final evaluation return") == 1  # printed by rank 0 only
    assert "2 sampler ranks: n_envs 1 -> 2" in result.stderr


@pytest.mark.parametrize("fault, message", [
    ("raise", "sampler rank 2 .* raised in env 1:.*RuntimeError: actuator 3 overheated"),
    ("kill", "sampler rank 2 .* died|BAD TERMINATION"),
])
def test_a_failing_sampler_rank_ends_every_rank(tmp_path, fault, message):
    import re

    # A rank left waiting for the dead one would keep the job alive until the timeout (the job
    # usually ends within a minute here; the bound is generous for a loaded machine).
    result, _ = mpirun([SCRIPT, tmp_path, fault], timeout=180)
    assert result.returncode != 0
    assert re.search(message, result.stdout + result.stderr, re.S), (result.stdout + result.stderr)[-3000:]
    # Only the segments this job's ranks mapped (train_sac.py lists them), not anyone else's: the
    # MPI library's and aquaml's must all be gone, however the ranks ended.
    mapped = {name for f in (tmp_path / "shm").glob("*.names") for name in f.read_text().split()}
    ours = {name for name in mapped if name.startswith(("mpich_", "aquaml_"))}
    assert any(name.startswith("mpich_") for name in ours), f"no MPI segment recorded: {sorted(mapped)}"
    leftovers = sorted(name for name in ours if (Path("/dev/shm") / name).exists())
    assert not leftovers, f"left in /dev/shm: {leftovers}"


@pytest.mark.slow
def test_data_parallel_learners_keep_identical_parameters(tmp_path):
    """mpirun -n 4, learners=2: two learners with a sampler each, gradients averaged every step."""
    result, _ = mpirun([Path(__file__).resolve().parent / "mpi" / "data_parallel.py", tmp_path, 40], n=4)
    assert result.returncode == 0, result.stderr[-3000:]
    out = summary_line(result.stdout)
    assert out["learners"] == 2 and out["grad_steps"] > 0
    assert out["identical"], "the learners' parameters differ"
    assert out["different_data"], "both learners collected the same episodes"


@pytest.mark.slow
def test_data_parallel_gail_learners_average_discriminator_gradients(tmp_path):
    """mpirun -n 4, learners=2, GAIL: generator and discriminator (and the absorbing logit) stay
    bit-identical over the learners while each group collects its own episodes."""
    from aquaml.data import save_data

    demos = save_data(tmp_path / "demos.npz", pendulum_dataset(episodes=2))
    result, _ = mpirun([Path(__file__).resolve().parent / "mpi" / "data_parallel.py", tmp_path, 20, "gail", demos],
                       n=4)
    assert result.returncode == 0, result.stderr[-3000:]
    out = summary_line(result.stdout)
    assert out["learners"] == 2 and out["grad_steps"] > 0
    assert out["identical"], "the learners' parameters differ"
    assert out["different_data"], "both learners collected the same episodes"


@pytest.mark.slow
def test_data_parallel_gail_ppo_learners_keep_identical_states(tmp_path):
    """mpirun -n 4, learners=2, GAIL with a PPO generator on CartPole: PPO's merged statistics and
    the discriminator's averaged gradients keep every piece of learner state identical."""

    demos = cartpole_demos(tmp_path / "cartpole.npz")
    result, _ = mpirun([Path(__file__).resolve().parent / "mpi" / "data_parallel_ppo.py", tmp_path, 4, demos], n=4)
    assert result.returncode == 0, result.stderr[-3000:]
    out = summary_line(result.stdout)
    assert out["learners"] == 2 and out["grad_steps"] == 4 * 2 * 2
    assert out["identical"], "the learners' states differ"
    assert out["different_data"], "both learners collected the same episodes"


@pytest.mark.slow
def test_data_parallel_ppo_learners_keep_identical_states(tmp_path):
    """mpirun -n 4, learners=2, PPO with normalize_obs and scale_reward: the running observation and
    return statistics are merged over the learners, so every piece of learner state stays
    bit-identical (all but ``returns``, each env's running discounted return: per-env data)."""
    result, _ = mpirun([Path(__file__).resolve().parent / "mpi" / "data_parallel_ppo.py", tmp_path, 6], n=4)
    assert result.returncode == 0, result.stderr[-3000:]
    out = summary_line(result.stdout)
    assert out["learners"] == 2 and out["grad_steps"] == 6 * 2 * 2
    assert out["identical"], "the learners' states differ"
    assert out["different_data"] and out["returns_differ"], "both learners collected the same episodes"
    assert out["obs_count"] == pytest.approx(2 * out["env_steps"])  # the statistics saw both learners' steps


def test_allocate_gpu_gives_learners_gpus_and_samplers_the_cpu(tmp_path):
    result, _ = mpirun([Path(__file__).resolve().parent / "mpi" / "gpu.py", tmp_path], n=4, CUDA_VISIBLE_DEVICES="0,1")
    assert result.returncode == 0, result.stderr[-3000:]
    placed = {r: json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(4)}
    assert [placed[r]["chosen"] for r in range(4)] == ["0", "1", None, None]
    assert placed[0]["visible"] == "0" and placed[1]["visible"] == "1"
    assert placed[2]["visible"] == "" and placed[3]["platforms"] == "cpu"


def test_allocate_gpu_after_jax_started_warns(monkeypatch):
    import jax

    from aquaml.tools.gpu import allocate_gpu

    jax.devices()  # JAX has created its devices
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.warns(UserWarning, match="after JAX created its devices"):
        assert allocate_gpu(None) is None


@pytest.mark.slow
def test_overlap_under_mpi_gives_the_same_run_on_both_paths(tmp_path):
    script = Path(__file__).resolve().parent / "mpi" / "overlap.py"
    runs = {}
    for transport in ("auto", "messages"):
        result, _ = mpirun([script, tmp_path / transport], transport)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[transport] = summary_line(result.stdout)
    assert runs["auto"]["steps"] == 2000 and runs["auto"]["grad_steps"] > 0
    assert runs["auto"] == runs["messages"]


def test_mpirun_spreads_tuning_trials_over_the_ranks(tmp_path):
    """mpirun -n 2 aquaml tune: each rank is a tuner of the same study; together exactly --trials."""
    import optuna

    (tmp_path / "space.yaml").write_text("learning_rate: {type: log_float, low: 1.0e-4, high: 3.0e-3}\n")
    args = ["-m", "aquaml.cli", "tune", "sac", "Pendulum-v1", "--trials", "3", "--budget", "200", "--pruner", "none",
            "--out", tmp_path / "study", "--space", tmp_path / "space.yaml", "--set", "update_interval=50",
            "--set", "mini_buffer_size=100", "--set", "display_interval=2", "--set", "calculate_episodes=1",
            "--set", "hidden_sizes=16"]
    result, _ = mpirun(args, n=2, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "study" / "journal.log")))
    trials = optuna.load_study(study_name="sac_Pendulum-v1", storage=storage).trials
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.user_attrs["tuner"]["pid"] for t in trials}) == 2  # both ranks ran trials
    assert len((tmp_path / "study" / "trials.csv").read_text().splitlines()) == 4
