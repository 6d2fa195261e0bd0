"""From a run to a robot: ``aquaml.load_policy(...).predict``, ``aquaml export`` (ONNX) and
``aquaml.deploy.OnnxPolicy`` take the actions ``aquaml eval`` takes.

Parity runs on recorded evaluation episodes (at least 1,000 observations each) of tiny training
runs: SAC on Pendulum-v1, discrete PPO on CartPole-v1, a recurrent PPO actor on PendulumNoVel-v1
(its state carried through whole episodes) and TD3 with a two-input actor and a 6-D action.
"""
import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import aquaml  # noqa: E402
from aquaml import GymnasiumEnv, RLTaskStarter  # noqa: E402
from aquaml.algorithm import PPO, SAC, TD3, PPOParameters, SACParameters, TD3Parameters  # noqa: E402
from aquaml.apps.commands import main as command_main  # noqa: E402
from aquaml.deploy import OnnxPolicy  # noqa: E402
from aquaml.model.functional import ModelFunction  # noqa: E402
from aquaml.model.onnx_export import UnsupportedOperation, keras_layer_types, to_onnx  # noqa: E402
from aquaml.sampler import EVAL_FIRST_EPISODE  # noqa: E402
from helpers import Reach6, ReachActor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OBSERVATIONS = 1000
TOLERANCE = 1e-5


def train(root, env, algo, params, models=None) -> Path:
    starter = RLTaskStarter(env, models, algo, params, name="run", progress=False, run_root=root)
    run_dir = starter.run().run_dir
    starter.close()
    return run_dir


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory):
    params = SACParameters(n_epochs=4, update_interval=50, update_times=5, batch_size=32, hidden_sizes=(64, 64),
                           display_interval=4, calculate_episodes=1, seed=0)
    return train(tmp_path_factory.mktemp("sac"), "Pendulum-v1", SAC, params)


@pytest.fixture(scope="module")
def ppo_discrete_run(tmp_path_factory):
    params = PPOParameters(n_epochs=3, n_envs=2, rollout_length=32, batch_size=32, n_update_epochs=2,
                           display_interval=3, calculate_episodes=1, seed=0)
    return train(tmp_path_factory.mktemp("ppo"), "CartPole-v1", PPO, params)


@pytest.fixture(scope="module")
def recurrent_run(tmp_path_factory):
    params = PPOParameters(n_epochs=3, n_envs=2, rollout_length=32, batch_size=16, n_update_epochs=2,
                           sequence_length=8, lstm_size=8, hidden_sizes=(16,), display_interval=3,
                           calculate_episodes=1, seed=0)
    return train(tmp_path_factory.mktemp("rec"), "PendulumNoVel-v1", PPO, params)


@pytest.fixture(scope="module")
def reach_run(tmp_path_factory):
    params = TD3Parameters(n_epochs=4, update_interval=50, update_times=5, batch_size=32, display_interval=4,
                           calculate_episodes=1, seed=0)
    return train(tmp_path_factory.mktemp("reach"), Reach6, TD3, params, {"actor": ReachActor})


class ActionRecorder(gym.Wrapper):
    """Records each observation the policy acted on and the action the environment received."""

    def __init__(self, env, episodes: list) -> None:
        super().__init__(env)
        self.episodes, self.obs = episodes, None

    def reset(self, **kwargs):
        self.obs, info = self.env.reset(**kwargs)
        self.episodes.append([])
        return self.obs, info

    def step(self, action):
        self.episodes[-1].append((copy.deepcopy(self.obs), np.array(action)))
        self.obs, *rest = self.env.step(action)
        return (self.obs, *rest)


def eval_episodes(policy, make_env) -> list[list[tuple]]:
    """Seeded evaluation episodes, as ``aquaml eval`` plays them, until ``OBSERVATIONS`` steps are recorded."""
    episodes: list = []
    evaluator = policy.evaluator(lambda: GymnasiumEnv(ActionRecorder(make_env(), episodes)))
    first = EVAL_FIRST_EPISODE
    while sum(map(len, episodes)) < OBSERVATIONS:
        evaluator(policy.params, 5, first_episode=first)
        first += 5
    evaluator.close()
    return [e for e in episodes if e]


def replay(policy, episodes) -> np.ndarray:
    """``policy``'s action for every recorded observation, one at a time, its state carried through each episode."""
    actions = []
    for episode in episodes:
        state = None
        for obs, _ in episode:
            action, state = policy.predict(obs, state)
            actions.append(action)
    return np.asarray(actions)


def stacked(episodes):
    observations = [obs for episode in episodes for obs, _ in episode]
    if isinstance(observations[0], dict):
        return {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    return np.stack(observations)


def export(run_dir, path, capsys) -> OnnxPolicy:
    assert command_main(["export", str(run_dir), "--out", str(path)]) == 0
    out = capsys.readouterr().out
    assert "max |onnx - predict|" in out, out
    return OnnxPolicy(path)


def check_parity(run_dir, make_env, tmp_path, capsys, discrete=False, recurrent=False) -> dict:
    """ONNX, ``load_policy`` and the actions of ``aquaml eval`` agree on the recorded episodes."""
    policy = aquaml.load_policy(run_dir)
    episodes = eval_episodes(policy, make_env)
    taken = np.asarray([action for episode in episodes for _, action in episode])
    onnx_policy = export(run_dir, tmp_path / "policy.onnx", capsys)
    predicted, exported = replay(policy, episodes), replay(onnx_policy, episodes)
    assert predicted.shape == exported.shape == taken.reshape(predicted.shape).shape
    taken = taken.reshape(predicted.shape)
    results = {"steps": len(taken), "predict": float(np.max(np.abs(predicted - taken))),
               "onnx": float(np.max(np.abs(exported - taken)))}
    if not recurrent:  # the whole record as one batch
        batch = stacked(episodes)
        results["predict_batch"] = float(np.max(np.abs(policy.predict(batch)[0] - taken)))
        results["onnx_batch"] = float(np.max(np.abs(onnx_policy.predict(batch)[0] - taken)))
    print(f"\nparity {Path(run_dir).parent.parent.name}: {json.dumps(results)}")
    if discrete:
        assert predicted.dtype == exported.dtype == np.int64
        assert all(v == 0 for k, v in results.items() if k != "steps"), results
    else:
        assert all(v <= TOLERANCE for k, v in results.items() if k != "steps"), results
    assert results["steps"] >= OBSERVATIONS
    return results


def test_sac_pendulum_parity(sac_run, tmp_path, capsys):
    results = check_parity(sac_run, lambda: gym.make("Pendulum-v1"), tmp_path, capsys)
    assert results["predict"] == 0  # predict rescales as the adapter does: the very actions eval took


def test_ppo_discrete_cartpole_parity(ppo_discrete_run, tmp_path, capsys):
    check_parity(ppo_discrete_run, lambda: gym.make("CartPole-v1"), tmp_path, capsys, discrete=True)


def test_recurrent_ppo_parity_over_whole_episodes(recurrent_run, tmp_path, capsys):
    check_parity(recurrent_run, lambda: gym.make("PendulumNoVel-v1"), tmp_path, capsys, recurrent=True)
    model = onnx.load(tmp_path / "policy.onnx")
    assert [i.name for i in model.graph.input] == ["obs", "lstm_h", "lstm_c"]
    assert [o.name for o in model.graph.output] == ["action", "next_lstm_h", "next_lstm_c"]


def test_multi_input_actor_with_a_6d_action_parity(reach_run, tmp_path, capsys):
    check_parity(reach_run, Reach6, tmp_path, capsys)
    model = onnx.load(tmp_path / "policy.onnx")
    assert [i.name for i in model.graph.input] == ["pos", "goal"]
    shape = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert shape == ["batch", 6]


def test_loading_and_exporting_leave_the_run_folder_alone(sac_run, tmp_path, capsys):
    def listing():
        return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in Path(sac_run).rglob("*")}

    before = listing()
    policy = aquaml.load_policy(sac_run)
    policy.predict(np.zeros(3, np.float32))
    export(sac_run, tmp_path / "p.onnx", capsys)
    assert listing() == before


def test_predict_single_batched_and_stochastic(recurrent_run):
    policy = aquaml.load_policy(recurrent_run)
    obs = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    actions, state = policy.predict(obs)
    assert actions.shape == (4, 1) and state["lstm_h"].shape == (4, 8)
    one, one_state = policy.predict(obs[1], {k: v[1] for k, v in state.items()})
    two, _ = policy.predict(obs, state)
    np.testing.assert_allclose(one, two[1], atol=1e-6)  # a batch may round differently in the last bit
    assert one_state["lstm_c"].shape == (8,)
    sampled = np.stack([policy.predict(obs[0], deterministic=False)[0] for _ in range(20)])
    assert np.all(np.abs(sampled) <= 2.0) and len(np.unique(sampled)) > 1


@pytest.mark.parametrize("name,env", [("bc", "Pendulum-v1"), ("bc", "CartPole-v1"), ("dagger", "Pendulum-v1"),
                                      ("td3bc", "Pendulum-v1"), ("iql", "Pendulum-v1"), ("gail", "Pendulum-v1"),
                                      ("airl_ppo", "Pendulum-v1"), ("amp", "Pendulum-v1")])
def test_every_algorithm_with_an_actor_exports(name, env, tmp_path):
    """The other actors, untrained (random observation statistics where the algorithm keeps them):
    the file takes predict's actions."""
    import jax

    from aquaml.algorithm import ALGORITHMS
    from aquaml.apps.export import export_policy, random_inputs
    from aquaml.starter.build import build_agent
    from aquaml.starter.loading import agent_policy

    algo = ALGORITHMS[name]
    agent = build_agent(env, None, algo, algo.Parameters(hidden_sizes=(16, 16)))
    state = agent.algo.init_state(jax.random.PRNGKey(1))
    stats = getattr(state, "obs_stats", None)
    if stats is not None and stats["mean"]:  # offline algorithms: the dataset's statistics
        rng = np.random.default_rng(1)
        state = state._replace(obs_stats={**stats, "mean": {k: rng.normal(size=v.shape).astype(np.float32)
                                                            for k, v in stats["mean"].items()},
                                          "var": {k: rng.uniform(0.5, 2.0, v.shape).astype(np.float32)
                                                  for k, v in stats["var"].items()}})
    policy = agent_policy(agent, state, seed=0)
    agent.env.close()
    summary = export_policy(policy, tmp_path / "p.onnx")
    obs, _ = random_inputs(policy, 64, np.random.default_rng(2))
    expected, got = policy.predict(obs)[0], OnnxPolicy(summary.path).predict(obs)[0]
    assert summary.discrete == (env == "CartPole-v1")
    if summary.discrete:
        np.testing.assert_array_equal(got, expected)
    else:
        assert np.max(np.abs(got - expected)) <= TOLERANCE and summary.max_difference <= TOLERANCE


# -- bad input ------------------------------------------------------------------------------------------
def test_a_run_without_a_complete_checkpoint(sac_run, tmp_path, capsys):
    folder = tmp_path / "fresh"
    folder.mkdir()
    shutil.copy(Path(sac_run) / "config.json", folder)
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        aquaml.load_policy(folder)
    assert command_main(["export", str(folder), "--out", str(tmp_path / "p.onnx")]) == 2
    assert "no complete checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "p.onnx").exists()


def test_a_run_without_an_actor(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"algo": "vae", "env": "Pendulum-v1", "parameters": {}}))
    with pytest.raises(ValueError, match="vae run: .* no actor"):
        aquaml.load_policy(tmp_path)
    assert command_main(["export", str(tmp_path), "--out", str(tmp_path / "p.onnx")]) == 2
    assert "no actor" in capsys.readouterr().err


def test_observations_that_do_not_fit(reach_run, tmp_path, capsys):
    policy = aquaml.load_policy(reach_run)
    onnx_policy = export(reach_run, tmp_path / "p.onnx", capsys)
    good = {"pos": np.zeros(6, np.float32), "goal": np.ones(6, np.float32)}
    for p in (policy, onnx_policy):
        assert p.predict({**good, "unused": np.zeros(2)})[0].shape == (6,)  # names it does not read are ignored
        with pytest.raises(ValueError, match="observation 'goal' is missing; the policy reads 'pos' "):
            p.predict({"pos": good["pos"]})
        with pytest.raises(ValueError, match=r"observation 'goal' has shape \(5,\); the policy reads \(6,\)"):
            p.predict({**good, "goal": np.zeros(5, np.float32)})
        with pytest.raises(ValueError, match=r"'goal' has shape \(3, 6\); the policy reads \(2, \*\(6,\)\)"):
            p.predict({"pos": np.zeros((2, 6)), "goal": np.zeros((3, 6))})
        with pytest.raises(TypeError, match="observation 'pos' has dtype int64; the policy reads floating-point"):
            p.predict({**good, "pos": np.zeros(6, np.int64)})
        with pytest.raises(ValueError, match="reads several observations"):
            p.predict(good["pos"])


def test_a_recurrent_state_that_does_not_fit(recurrent_run):
    policy = aquaml.load_policy(recurrent_run)
    with pytest.raises(ValueError, match="state 'lstm_c' is missing"):
        policy.predict(np.zeros(2, np.float32), {"lstm_h": np.zeros(8, np.float32)})
    with pytest.raises(ValueError, match=r"state 'lstm_h' has shape \(4,\)"):
        policy.predict(np.zeros(2, np.float32), {"lstm_h": np.zeros(4, np.float32), "lstm_c": np.zeros(8)})


# -- the runtime ----------------------------------------------------------------------------------------
def test_onnx_policy_needs_neither_jax_nor_keras(sac_run, tmp_path, capsys):
    path = tmp_path / "p.onnx"
    export(sac_run, path, capsys)
    check = ("import sys, numpy as np\n{imp}\n"
             f"action, state = OnnxPolicy({str(path)!r}).predict(np.zeros(3, np.float32))\n"
             "assert action.shape == (1,) and state is None\n"
             "loaded = [m for m in ('jax', 'keras', 'tensorflow', 'torch') if m in sys.modules]\n"
             "assert not loaded, loaded\nprint('ok')")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    package = subprocess.run([sys.executable, "-P", "-c", check.format(imp="from aquaml.deploy import OnnxPolicy")],
                             capture_output=True, text=True, env=env, cwd=tmp_path)
    assert package.stdout.strip() == "ok", package.stderr
    alone = tmp_path / "robot"  # the module copied alone onto a computer without aquaml
    alone.mkdir()
    shutil.copy(REPO / "aquaml" / "deploy.py", alone)
    lone = subprocess.run([sys.executable, "-P", "-c", check.format(imp="from deploy import OnnxPolicy\n"
                                                                       "assert 'aquaml' not in sys.modules")],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(alone)}, cwd=alone)
    assert lone.stdout.strip() == "ok", lone.stderr


def test_the_robot_side_code_of_the_guide_runs(sac_run, tmp_path, capsys):
    """docs/deploy.md's Python for the robot (OnnxPolicy, onnxruntime alone) runs as printed."""
    export(sac_run, tmp_path / "policy.onnx", capsys)
    text = (REPO / "docs" / "deploy.md").read_text()
    blocks = [b.split("```")[0] for b in text.split("```python\n")[1:]]
    robot = [b for b in blocks if '"policy.onnx"' in b and "lstm" not in b]
    assert len(robot) == 2
    for code in robot:
        done = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 0, done.stderr


def test_onnx_policy_is_deterministic_only(sac_run, tmp_path, capsys):
    onnx_policy = export(sac_run, tmp_path / "p.onnx", capsys)
    with pytest.raises(ValueError, match="deterministic"):
        onnx_policy.predict(np.zeros(3, np.float32), deterministic=False)
    assert onnx_policy.metadata["aquaml.action"] == {"discrete": False, "low": [-2.0], "high": [2.0]}


# -- the converter, layer by layer --------------------------------------------------------------------
def max_onnx_difference(model: keras.Model, inputs: dict) -> float:
    """Build ``model`` on ``inputs``, convert its function and compare onnxruntime with JAX."""
    import jax
    import onnxruntime as ort

    model(*inputs.values())
    fn = ModelFunction(model, tuple(inputs))
    params = fn.init_params()

    def named(x):
        out = fn.apply(params, x)
        return {f"y{i}": y for i, y in enumerate(out if isinstance(out, (tuple, list)) else (out,))}

    proto = to_onnx(named, {k: v.shape[1:] for k, v in inputs.items()}, layer_types=keras_layer_types(model))
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = jax.jit(named)(inputs)
    got = session.run(list(expected), inputs)
    return max(float(np.max(np.abs(g - np.asarray(expected[k])) / (1.0 + np.abs(g)))) for g, k in zip(got, expected))


class OneDense(keras.Model):
    def __init__(self, activation):
        super().__init__()
        self.dense = keras.layers.Dense(4, activation=activation)

    def call(self, x):
        return self.dense(x)


ACTIVATIONS = sorted(n for n in dir(keras.activations) if not n.startswith("_")
                     and n not in ("get", "serialize", "deserialize", "threshold"))  # threshold needs arguments


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_with_every_keras_activation(activation):
    x = np.random.default_rng(0).normal(0.0, 2.0, (16, 5)).astype(np.float32)
    assert max_onnx_difference(OneDense(activation), {"x": x}) <= TOLERANCE


class Recurrent(keras.Model):
    """A recurrent layer over a sequence with a second, concatenated input; its state in and out."""

    def __init__(self, kind, sequences):
        super().__init__()
        self.rnn = getattr(keras.layers, kind)(6, return_state=True, return_sequences=sequences)
        self.norm, self.drop = keras.layers.LayerNormalization(), keras.layers.Dropout(0.5)
        self.head = keras.layers.Dense(2, activation="tanh")

    def call(self, x, goal, *state):
        goal = keras.ops.repeat(keras.ops.expand_dims(goal, 1), x.shape[1], axis=1)
        out, *state = self.rnn(keras.ops.concatenate([x, goal], axis=-1), initial_state=list(state))
        out = keras.ops.reshape(out, (-1, 6 * (3 if self.rnn.return_sequences else 1)))
        return (self.head(self.drop(self.norm(out))), *state)


@pytest.mark.parametrize("kind,states", [("LSTM", 2), ("GRU", 1), ("SimpleRNN", 1)])
@pytest.mark.parametrize("sequences", [False, True])
def test_recurrent_layers(kind, states, sequences):
    rng = np.random.default_rng(1)
    inputs = {"x": rng.normal(size=(5, 3, 4)).astype(np.float32), "goal": rng.normal(size=(5, 2)).astype(np.float32),
              **{f"state{i}": rng.normal(size=(5, 6)).astype(np.float32) for i in range(states)}}
    assert max_onnx_difference(Recurrent(kind, sequences), inputs) <= TOLERANCE


class WithConv(keras.Model):
    def __init__(self):
        super().__init__()
        self.first, self.conv, self.last = keras.layers.Dense(3), keras.layers.Conv1D(4, 2), keras.layers.Dense(2)

    def call(self, x):
        return self.last(self.conv(self.first(x)))


def test_an_unsupported_layer_is_named():
    with pytest.raises(UnsupportedOperation, match=r"layer 'conv1d\w*' \(Conv1D\).*'conv_general_dilated'"):
        max_onnx_difference(WithConv(), {"x": np.zeros((2, 5, 3), np.float32)})
