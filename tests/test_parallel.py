"""The shared-memory sampler: Gymnasium vector-env semantics, faults, clean shutdown, seeding."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from aquaml.parallel import SharedArrays, SharedMemoryVectorEnv, WorkerError
from helpers import wait_until

SHM = Path("/dev/shm")
pytestmark = pytest.mark.skipif(not SHM.is_dir(), reason="needs Linux /dev/shm to check for leftovers")


def segments() -> set[str]:
    """The segments this test process created: SharedArrays names them aquaml_<creator pid>_<random>,
    so another process's segments (another test run, a user's training) never count here."""
    return {p.name for p in SHM.glob(f"aquaml_{os.getpid()}_*")}


@pytest.fixture(autouse=True)
def no_leftover_segments():
    before = segments()
    yield
    assert segments() - before == set(), "a shared-memory segment was left behind"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


class DictObsEnv(gym.Env):
    """Dict observations with an integer part; episodes of random length."""

    observation_space = gym.spaces.Dict({"pos": gym.spaces.Box(-10, 10, (2,), np.float32),
                                         "count": gym.spaces.Discrete(100)})
    action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.t = self.np_random.uniform(-1, 1, 2).astype(np.float32), 0
        self.length = int(self.np_random.integers(3, 8))
        return {"pos": self.pos.copy(), "count": 0}, {}

    def step(self, action):
        self.pos = (self.pos + action).astype(np.float32)
        self.t += 1
        obs = {"pos": self.pos.copy(), "count": self.t}
        return obs, float(-np.sum(self.pos ** 2)), self.t >= self.length, False, {}


class RaisingEnv(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        if action == 1:
            raise ValueError("the wheel came off")
        return np.zeros(3, np.float32), 0.0, False, False, {}


def assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("env_id, n_envs, n_workers", [("CartPole-v1", 3, 2), ("Pendulum-v1", 2, 1), ("dict", 3, 3)])
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_matches_sync_vector_env(env_id, n_envs, n_workers, mode):
    make = DictObsEnv if env_id == "dict" else (lambda: gym.make(env_id))
    ours = SharedMemoryVectorEnv([make] * n_envs, n_workers=n_workers, autoreset_mode=mode)
    ref = SyncVectorEnv([make] * n_envs, autoreset_mode=mode)
    assert ours.single_observation_space == ref.single_observation_space
    assert ours.action_space == ref.action_space and ours.observation_space == ref.observation_space
    assert ours.metadata["autoreset_mode"] == mode
    ours.action_space.seed(0)
    try:
        assert_same(ours.reset(seed=7)[0], ref.reset(seed=7)[0])
        finished = 0
        for _ in range(250):
            action = ours.action_space.sample()
            got, want = ours.step(action), ref.step(action)
            for x, y in zip(got[:4], want[:4]):
                assert_same(x, y)
            done = got[2] | got[3]
            finished += done.sum()
            if mode == AutoresetMode.SAME_STEP and done.any():
                np.testing.assert_array_equal(got[4]["_final_obs"], want[4]["_final_obs"])
                for i in np.flatnonzero(done):
                    assert_same(got[4]["final_obs"][i], want[4]["final_obs"][i])
        assert finished > 0  # autoreset was exercised
    finally:
        ours.close()
        ref.close()


def test_disabled_autoreset_with_reset_mask():
    make = lambda: gym.make("CartPole-v1")  # noqa: E731
    ours = SharedMemoryVectorEnv([make] * 2, autoreset_mode=AutoresetMode.DISABLED)
    ref = SyncVectorEnv([make] * 2, autoreset_mode=AutoresetMode.DISABLED)
    try:
        assert_same(ours.reset(seed=1)[0], ref.reset(seed=1)[0])
        for _ in range(200):
            got, want = ours.step(np.array([1, 1])), ref.step(np.array([1, 1]))
            for x, y in zip(got[:4], want[:4]):
                assert_same(x, y)
            done = got[2] | got[3]
            if done.any():
                with pytest.raises(RuntimeError, match="reset_mask"):
                    ours.step(np.array([1, 1]))
                assert_same(ours.reset(options={"reset_mask": done})[0], ref.reset(options={"reset_mask": done})[0])
                return
        pytest.fail("no episode finished")
    finally:
        ours.close()
        ref.close()


def test_bad_actions_and_options_are_refused():
    with SharedMemoryVectorEnv([lambda: gym.make("Pendulum-v1")] * 2, n_workers=1) as env:
        env.reset(seed=0)
        with pytest.raises(ValueError, match=r"actions have shape \(2,\), expected \(2, 1\)"):
            env.step(np.zeros(2))
        with pytest.raises(ValueError, match="options"):
            env.reset(options={"difficulty": 3})


def test_env_exception_names_worker_env_and_traceback():
    env = SharedMemoryVectorEnv([RaisingEnv] * 4, n_workers=2)
    env.reset(seed=0)
    env.step(np.zeros(4, np.int64))
    pids = [w.process.pid for w in env.pool.workers]
    with pytest.raises(WorkerError) as info:
        env.step(np.array([0, 0, 0, 1]))
    message = str(info.value)
    assert "worker 1" in message and "env 3" in message
    assert "ValueError: the wheel came off" in message and "Traceback" in message
    env.close()
    assert not any(alive(p) for p in pids)


def test_env_that_fails_to_build_is_reported():
    learner = os.getpid()

    def broken():  # builds here (the spaces are read from one env), fails in the worker
        if os.getpid() != learner:
            raise RuntimeError("no licence for this simulator")
        return gym.make("CartPole-v1")

    with pytest.raises(WorkerError, match="no licence for this simulator"):
        SharedMemoryVectorEnv([broken, broken], n_workers=1)


def test_killed_worker_is_detected_quickly():
    env = SharedMemoryVectorEnv([lambda: gym.make("CartPole-v1")] * 2, n_workers=2)
    env.reset(seed=0)
    victim = env.pool.workers[1].process
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    start = time.monotonic()
    with pytest.raises(WorkerError, match=r"worker 1 .* killed by signal 9"):
        for _ in range(100):
            env.step(np.zeros(2, np.int64))
    # The pool checks its workers every 0.1 s while it waits (usually well under a second here);
    # without that check the step would wait for ever. The bound only has to tell the two apart.
    assert time.monotonic() - start < 30
    env.close()


def test_workers_do_not_load_jax():
    with SharedMemoryVectorEnv([lambda: gym.make("CartPole-v1")], n_workers=1) as env:
        maps = Path(f"/proc/{env.pool.workers[0].process.pid}/maps").read_text()
    assert "jaxlib" not in maps and "xla_extension" not in maps


def default_sigint() -> None:
    """Ctrl-C's default action in the child: a shell starts background jobs (a CI script run with
    ``&``) with SIGINT ignored, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


LEARNER = textwrap.dedent("""
    import sys, time
    import gymnasium as gym, numpy as np
    from aquaml.parallel import SharedMemoryVectorEnv
    env = SharedMemoryVectorEnv([lambda: gym.make("CartPole-v1")] * 2, n_workers=2)
    env.reset(seed=0)
    env.step(np.zeros(2, np.int64))  # stepping when the test reads the line below and kills it
    print(env.pool.table.name, *[w.process.pid for w in env.pool.workers], flush=True)
    while True:
        env.step(np.zeros(2, np.int64))
""")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_learner_death_or_ctrl_c_leaves_nothing(how):
    """A killed learner (SIGKILL) or Ctrl-C (SIGINT to the process group) leaves no worker and no segment."""
    learner = subprocess.Popen([sys.executable, "-c", LEARNER], stdout=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=default_sigint)
    try:
        name, *pids = learner.stdout.readline().split()
        assert (SHM / name).exists()
        if how == "SIGKILL":
            learner.kill()
        else:
            os.killpg(learner.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        learner.wait(timeout=60)
        wait_until(lambda: not any(alive(int(p)) for p in pids), 60, message="orphan worker: still alive")
        wait_until(lambda: not (SHM / name).exists(), 60, message="segment left behind: still in /dev/shm")
    finally:
        if learner.poll() is None:
            learner.kill()


def test_shared_arrays_attach_and_unlink():
    owner = SharedArrays({"x": ((3, 2), np.float32), "flag": ((), np.int64)})
    other = SharedArrays(owner.fields, name=owner.name)
    owner["x"][1, 1] = 5.0
    assert other["x"][1, 1] == 5.0 and other["x"].ctypes.data % 64 == 0
    other.close()
    assert (SHM / owner.name).exists()  # an attached process never removes the segment
    owner.close()
    assert not (SHM / owner.name).exists()


# -- the trainer with workers -------------------------------------------------------------
def _train(algo_name: str, env, n_workers: int, run_root, **params):
    from aquaml import RLTaskStarter
    from aquaml.algorithm import ALGORITHMS

    algo = ALGORITHMS[algo_name]
    starter = RLTaskStarter(env, None, algo, algo.Parameters(**params), run_root=run_root, progress=False,
                            n_workers=n_workers)
    starter.run()
    starter.close()
    return starter


@pytest.mark.parametrize("algo_name, env, params", [
    ("sac", "Pendulum-v1", dict(n_envs=3, n_epochs=4, update_interval=20, update_times=4, batch_size=32,
                                mini_buffer_size=60, episode_length=50, hidden_sizes=(16, 16))),
    ("ppo", "CartPole-v1", dict(n_envs=4, n_epochs=3, rollout_length=40, batch_size=40, n_update_epochs=2,
                                hidden_sizes=(16, 16))),
])
def test_workers_reproduce_the_in_process_run(run_root, algo_name, env, params):
    """Same seed, same trajectories and parameters with 0 and with 2 worker processes."""
    from aquaml.tools.checkpoint import tree_to_arrays

    params.update(display_interval=100, calculate_episodes=1, seed=5)
    local = _train(algo_name, env, 0, run_root, **params)
    workers = _train(algo_name, env, 2, run_root, **params)
    assert local.train_returns == workers.train_returns and len(local.train_returns) > 0
    a, b = tree_to_arrays(local.state), tree_to_arrays(workers.state)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_worker_counts_are_checked(run_root):
    from aquaml import RLTaskStarter, SACParameters

    with pytest.raises(ValueError, match=r"n_workers must be an integer from 0 to n_envs \(2\)"):
        RLTaskStarter("Pendulum-v1", algo_hyperparameter=SACParameters(n_envs=2), run_root=run_root, n_workers=3)
    with pytest.raises(ValueError, match="not both"):
        RLTaskStarter("Pendulum-v1", algo_hyperparameter=SACParameters(n_envs=2), run_root=run_root,
                      n_workers=1, envs_per_worker=2)


def test_overlap_is_deterministic_resumable_and_logs_policy_lag(run_root):
    """Collection overlapping the updates (and double-buffered workers) still gives exact runs."""
    import csv

    from aquaml import RLTaskStarter, SACParameters
    from aquaml.tools.checkpoint import tree_to_arrays

    params = SACParameters(n_envs=4, n_epochs=8, update_interval=10, update_times=4, batch_size=32,
                           mini_buffer_size=40, episode_length=50, hidden_sizes=(16, 16), display_interval=4,
                           calculate_episodes=1, seed=2, overlap=True)

    def start(p, **kw):
        return RLTaskStarter("Pendulum-v1", algo_hyperparameter=p, run_root=run_root, progress=False,
                             n_workers=2, **kw)

    full = start(params)
    summary = full.run()
    full.close()
    with open(summary.run_dir / "progress.csv") as f:
        lags = [float(r["policy_lag"]) for r in csv.DictReader(f)]
    # the first epoch of each display period acts with every update applied (the display epoch
    # drains the pipeline); the other three act one epoch (4 gradient steps) behind
    assert lags == [3.0, 3.0]
    half = start(params.replace(n_epochs=4), name="half")
    run_dir = half.run().run_dir
    half.close()
    resumed = start(params, resume=run_dir)
    resumed.run()
    resumed.close()
    a, b = tree_to_arrays(full.state), tree_to_arrays(resumed.state)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert full.train_returns == resumed.train_returns


class SlowEnv(RaisingEnv):
    """Never raises, but takes 0.3 s per step."""

    def step(self, action):
        time.sleep(0.3)
        return super().step(0)


def test_error_is_reported_while_another_worker_still_steps():
    env = SharedMemoryVectorEnv([RaisingEnv, SlowEnv], n_workers=2)
    env.reset(seed=0)
    with pytest.raises(WorkerError, match=r"(?s)worker 0 .*env 0.*the wheel came off"):
        env.step(np.array([1, 0]))
    env.close()


def test_large_calls_do_not_deadlock():
    """A resume replays a whole episode's actions through one call; larger than any socket buffer."""
    from aquaml.parallel.block import table_fields
    from aquaml.parallel.pool import WorkerPool
    from aquaml.parallel.vector_env import gym_steppers

    fields = table_fields(2, {"obs": ((3,), np.dtype(np.float32))}, {"action": ((1,), np.dtype(np.float32))})
    with WorkerPool([lambda: gym.make("Pendulum-v1")] * 2, fields, gym_steppers, n_workers=1) as pool:
        actions = {"action": np.full((80_000, 1), 0.5, np.float32)}  # 320 kB
        obs = pool.call(1, "replay", 1, 3, actions)
        assert obs["obs"].shape == (3,) and pool.arrays["episode_step"][1] == 80_000


def test_futex_sleeps_until_woken_and_never_misses_a_changed_word():
    import threading

    from aquaml.parallel.signal import HAVE_FUTEX, futex_wait, futex_wake

    # Long timeouts against generous bounds: a wait that returned at once or was woken ends in
    # milliseconds, one that slept to its timeout takes 30 s, and a loaded machine is in between.
    word = np.zeros(4, np.int64)
    start = time.perf_counter()
    futex_wait(word, 2, 1, 30.0)  # the word is not 1: returns at once
    assert time.perf_counter() - start < 10

    def wake_later():
        time.sleep(0.05)
        word[2] = 7
        futex_wake(word, 2)

    thread = threading.Thread(target=wake_later)
    start = time.perf_counter()
    thread.start()
    while word[2] == 0:
        futex_wait(word, 2, 0, 30.0)
    thread.join()
    assert time.perf_counter() - start < 10  # woken, not timed out
    if HAVE_FUTEX:
        start = time.perf_counter()
        futex_wait(word, 2, 7, 0.1)  # nobody wakes it: the timeout ends the wait, never before it
        assert 0.09 < time.perf_counter() - start < 10
