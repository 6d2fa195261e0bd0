"""Small environments, models, data and runners shared by the tests (test files import
from here, never from each other), ``mpirun`` for the MPI tests, and a deadline to poll against."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import pytest
from gymnasium import spaces

from aquaml import DataInfo, RLBaseEnv
from aquaml.data import Dataset, save_data

ROOT = Path(__file__).resolve().parents[1]
MPIRUN = shutil.which("mpirun", path=str(Path(sys.executable).parent)) or shutil.which("mpirun")


def wait_until(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    """Poll ``predicate()`` until it returns something true, and return that; fail the test after
    ``timeout`` seconds. Tests wait for another process this way instead of sleeping a fixed time or
    timing a step, so a slow or loaded machine only makes them slower: ``timeout`` is a generous
    bound, far above the usual wait, that only a real hang reaches."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message}: not reached within {timeout:g} s")
        time.sleep(interval)


class Drift(gym.Env):
    """1-D point: obs = position; reward = -|position|; asymmetric action bounds [-1, 3]."""

    observation_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = spaces.Box(np.array([-1.0], np.float32), np.array([3.0], np.float32))

    def __init__(self, horizon: int = 10):
        self.horizon = horizon

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-1, 1)), 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.last_action = np.array(action)
        self.x += 0.1 * float(action[0])
        self.t += 1
        return np.array([self.x], np.float32), -abs(self.x), False, self.t >= self.horizon, {}


class DictObsEnv(Drift):
    observation_space = spaces.Dict({"pos": spaces.Box(-np.inf, np.inf, (1,), np.float32),
                                     "goal": spaces.Box(-1, 1, (2,), np.float32)})

    def _obs(self):
        return {"pos": np.array([self.x], np.float32), "goal": np.array([0.5, -0.5], np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        _, r, term, trunc, info = super().step(action)
        return self._obs(), r, term, trunc, info


class SeedStyleEnv(RLBaseEnv):
    """The seed's four-value wrapper around ``Drift``; ``bad`` injects contract violations."""

    def __init__(self, bad: str | None = None, bad_at: int = 3):
        super().__init__()
        self.env = Drift(horizon=1000)
        self.bad, self.bad_at, self.t = bad, bad_at, 0
        self._obs_info = DataInfo(names=("obs",), shapes=((1,)), dtypes=np.float32)
        self._action_info = DataInfo(("action",), ((1,),))

    def reset(self):
        observation, _ = self.env.reset()
        self.t = 0
        return self.initial_obs({"obs": observation.reshape(1, -1)})

    def step(self, action_dict):
        observation, reward, _, _, info = self.env.step(action_dict["action"][0])
        self.t += 1
        obs = {"obs": observation.reshape(1, -1)}
        if self.t >= self.bad_at:
            if self.bad == "nan":
                obs["obs"][0, 0] = np.nan
            elif self.bad == "shape":
                obs["obs"] = observation  # forgot the batch dimension
            elif self.bad == "extra":
                obs["velocity"] = obs["obs"]
        obs = self.check_obs(obs, action_dict)
        return obs, {"total_reward": reward}, False, info


class TinyActor(keras.Model):
    """``action_dim`` action means from ``obs``; ``hidden=0`` makes it linear, so that a test can
    write its forward pass by hand (:func:`mlp_numpy`)."""

    def __init__(self, action_dim: int = 1, hidden: int = 8, optimizer: str = "Adam", learning_rate: float = 1e-3):
        super().__init__()
        self.d1 = keras.layers.Dense(hidden, activation="relu") if hidden else None
        self.mu = keras.layers.Dense(action_dim)
        self.input_name = ("obs",)
        self.output_info = {"action": (action_dim,)}
        self.learning_rate = learning_rate
        self.optimizer = optimizer

    def call(self, obs):
        return (self.mu(self.d1(obs) if self.d1 else obs),)

    def reset(self):
        pass


class TinyQ(keras.Model):
    """``Q([obs, action])`` for any action dimension; ``hidden=0``: linear."""

    def __init__(self, hidden: int = 8, optimizer: str = "Adam", learning_rate: float = 1e-3):
        super().__init__()
        self.d1 = keras.layers.Dense(hidden, activation="relu") if hidden else None
        self.q = keras.layers.Dense(1)
        self.input_name = ("obs", "action")
        self.learning_rate = learning_rate
        self.optimizer = optimizer

    def call(self, obs, action):
        x = keras.ops.concatenate([obs, action], axis=-1)
        return self.q(self.d1(x) if self.d1 else x)

    def reset(self):
        pass


def mlp_numpy(params, x):
    """The forward pass of TinyActor/TinyQ in float64 numpy: ``params`` = [kernel, bias, ...] of
    Dense layers, ReLU between them."""
    x = np.asarray(x, np.float64)
    for k in range(0, len(params), 2):
        if k:
            x = np.maximum(x, 0.0)
        x = x @ np.asarray(params[k], np.float64) + np.asarray(params[k + 1], np.float64)
    return x


def numeric_gradient(f, arrays, h=1e-6):
    """Central differences of the scalar ``f(arrays)`` with respect to every element of the
    float64 arrays in the list ``arrays``."""
    arrays = [np.array(a, np.float64) for a in arrays]
    grads = [np.zeros_like(a) for a in arrays]
    for a, g in zip(arrays, grads):
        for idx in np.ndindex(a.shape):
            keep = a[idx]
            a[idx] = keep + h
            up = f(arrays)
            a[idx] = keep - h
            down = f(arrays)
            a[idx] = keep
            g[idx] = (up - down) / (2 * h)
    return grads


def replay_batches(n, b=16, seed=0, reward=None, terminated=None, action_dim=1, obs_dim=3):
    """``n`` stacked batches of ``b`` random transitions (observations ``obs``, actions in [-1, 1])."""
    rng = np.random.default_rng(seed)
    terminated = rng.random((n, b)) < 0.2 if terminated is None else np.full((n, b), terminated)
    return {"obs": {"obs": rng.normal(size=(n, b, obs_dim)).astype(np.float32)},
            "next_obs": {"obs": rng.normal(size=(n, b, obs_dim)).astype(np.float32)},
            "action": rng.uniform(-1, 1, size=(n, b, action_dim)).astype(np.float32),
            "reward": (rng.normal(size=(n, b)) if reward is None else np.full((n, b), reward)).astype(np.float32),
            "terminated": terminated.astype(np.float32)}


def build_algorithm(algo, params, action_dim, models=None, obs_dim=3):
    """``algo`` on default models (or ``models``: role -> a model class or a function returning a
    model) for observations ``obs`` of ``obs_dim`` numbers and ``action_dim``-dimensional actions
    in [-1, 1]; no environment, so any action dimension can be tried. Keras is seeded before any
    model exists (a layer draws its initialiser's seed when constructed): the weights are the same
    whichever test ran before."""
    from types import SimpleNamespace

    from aquaml.env import ActionSpace
    from aquaml.starter.build import build_models, model_classes

    keras.utils.set_random_seed(0)
    models = {role: m if isinstance(m, type) else m() for role, m in (models or {}).items()}
    env = SimpleNamespace(obs_info=SimpleNamespace(shape_dict={"obs": (obs_dim,)}))
    space = ActionSpace((action_dim,))
    return algo(params, build_models(algo, model_classes(algo, models), env, params, space), space)


class PositionActor(keras.Model):
    """An actor that reads only ``'pos'`` (named data: the critics may read ``'obs'``)."""

    def __init__(self):
        super().__init__()
        self.d1, self.out = keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)
        self.input_name, self.output_info = ("pos",), {"action": (1,)}
        self.learning_rate, self.optimizer = 1e-3, "Adam"

    def call(self, pos):
        return (self.out(self.d1(pos)),)

    def reset(self):
        pass


def assert_resumes_exactly(make, epochs: int, steps: int, root):
    """``make(n_epochs, run_root)`` builds a starter. ``epochs`` straight against ``epochs // 2``,
    then a resume to ``steps``: the same evaluations and a bit-identical state. Returns the
    straight run's summary and the resumed run's folder."""
    import jax

    from aquaml import RLTaskStarter

    straight = make(epochs, root / "straight")
    full = straight.run()
    first = make(epochs // 2, root / "halves")
    run_dir = first.run().run_dir
    first.close()
    resumed = RLTaskStarter.from_run_dir(run_dir, steps=steps, progress=False)
    assert resumed.run().eval_history == full.eval_history
    for a, b in zip(jax.tree_util.tree_leaves(straight.state), jax.tree_util.tree_leaves(resumed.state)):
        np.testing.assert_array_equal(a, b)
    resumed.close()
    straight.close()
    return full, run_dir


class LSTMDiscriminator(keras.Model):
    """A recurrent discriminator on (positions, action): its LSTM state is a named input it also
    returns, as a recurrent actor's is; class attributes set the sizes and the learning rate."""

    units, hidden_units, lr = 8, 32, 1e-3

    def __init__(self):
        super().__init__()
        self.lstm = keras.layers.LSTM(self.units, return_state=True)
        self.hidden, self.out = keras.layers.Dense(self.hidden_units, activation="relu"), keras.layers.Dense(1)
        self.input_name = ("pos", "action", "disc_h", "disc_c")
        self.output_info = {"logit": (1,), "disc_h": (self.units,), "disc_c": (self.units,)}
        self.learning_rate, self.optimizer = self.lr, "Adam"

    def call(self, pos, action, disc_h, disc_c):
        x = keras.ops.expand_dims(keras.ops.concatenate([pos, action], axis=-1), 1)
        _, h, c = self.lstm(x, initial_state=(disc_h, disc_c))
        return self.out(self.hidden(h)), h, c

    def reset(self):
        pass


class Reach6(gym.Env):
    """A 6-D reach: named observations ``'pos'`` and ``'goal'``; a 6-D action with unequal bounds moves ``pos``."""

    observation_space = spaces.Dict({"pos": spaces.Box(-np.inf, np.inf, (6,), np.float32),
                                     "goal": spaces.Box(-1, 1, (6,), np.float32)})
    action_space = spaces.Box(np.array([-1, -2, -0.5, 0, -3, -1], np.float32),
                              np.array([1, 2, 0.5, 2, 1, 3], np.float32))
    spec = gym.envs.registration.EnvSpec("Reach6-v0", max_episode_steps=50)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.goal = self.np_random.uniform(-1, 1, (2, 6)).astype(np.float32)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return {"pos": self.pos.copy(), "goal": self.goal.copy()}

    def step(self, action):
        self.pos = (self.pos + 0.05 * np.asarray(action, np.float32)).astype(np.float32)
        self.t += 1
        return self._obs(), -float(np.linalg.norm(self.pos - self.goal)), False, self.t >= 50, {}


class ReachActor(keras.Model):
    """Reads two named observations: their concatenation through layer normalisation and SiLU/GELU layers."""

    def __init__(self):
        super().__init__()
        self.d1, self.norm = keras.layers.Dense(32, activation="silu"), keras.layers.LayerNormalization()
        self.d2, self.out = keras.layers.Dense(32, activation="gelu"), keras.layers.Dense(6)
        self.input_name, self.output_info = ("pos", "goal"), {"action": (6,)}
        self.learning_rate, self.optimizer = 1e-3, "Adam"

    def call(self, pos, goal):
        return (self.out(self.d2(self.norm(self.d1(keras.ops.concatenate([pos, goal - pos], axis=-1))))),)

    def reset(self):
        pass


def pendulum_dataset(episodes=4, T=200, seed=0, with_pos=False):
    """Episodes of Pendulum-v1 under a noisy energy-pumping controller (actions in [-1, 1])."""
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(seed)
    eps = []
    for e in range(episodes):
        o, _ = env.reset(seed=seed * 1000 + e)
        obs, actions, rewards = [o], [], []
        for _ in range(T):
            a = np.clip(np.sign(o[2] * o[0]) + 0.3 * rng.normal(), -1, 1).astype(np.float32).reshape(1)
            o, r, _, _, _ = env.step(2.0 * a)
            obs.append(o), actions.append(a), rewards.append(r)
        obs = np.array(obs, np.float32)
        observations = {"obs": obs, **({"pos": obs[:, :2]} if with_pos else {})}
        ends = np.zeros(T, bool)
        ends[-1] = True
        eps.append({"observations": observations, "action": np.array(actions), "reward": np.array(rewards),
                    "terminated": np.zeros(T, bool), "truncated": ends})
    return Dataset.from_episodes(eps, {"env": "Pendulum-v1", "action_low": [-2.0], "action_high": [2.0]})


def cartpole_demos(path, episodes=3):
    """Episodes of CartPole-v1 under a balancing controller, saved to ``path``; returns its path as text."""
    from benchmarks.recipes import controller_episodes

    balance = lambda o: int(o[2] + 0.5 * o[3] > 0)  # noqa: E731
    return str(save_data(path, controller_episodes("CartPole-v1", balance, episodes)))


def mpirun(args, transport="auto", timeout=240, cwd=None, n=3, **env_vars):
    """Run ``args`` under ``mpirun -n n``; the test fails if the job is still running after ``timeout`` s."""
    env = dict(os.environ, AQUAML_MPI_TRANSPORT=transport, PYTHONPATH=str(ROOT), **env_vars)
    start = time.monotonic()
    try:
        result = subprocess.run([MPIRUN, "-n", str(n), sys.executable, *map(str, args)], capture_output=True,
                                text=True, timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as e:  # its output comes as bytes, whatever text= says
        output = b"".join(x if isinstance(x, bytes) else x.encode() for x in (e.stdout, e.stderr) if x)
        pytest.fail(f"mpirun still running after {timeout} s:\n{output[-3000:].decode(errors='replace')}")
    return result, time.monotonic() - start


def summary_line(stdout: str) -> dict:
    """The first JSON line of a script's output."""
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))
