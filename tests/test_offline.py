"""Offline algorithms (BC, TD3+BC, IQL): losses against numpy/scipy, batches drawn from the dataset,
observation statistics, named data, exact resume, and bad input failing before training."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from aquaml import RLTaskStarter
from aquaml.algorithm import BC, IQL, TD3BC, BCParameters, IQLParameters, TD3BCParameters
from aquaml.algorithm.iql import awr_weights, expectile_loss
from aquaml.algorithm.offline import STD_FLOOR
from aquaml.algorithm.td3bc import td3bc_actor_loss
from aquaml.data import Dataset, DatasetError, save_data
from helpers import PositionActor, assert_resumes_exactly, pendulum_dataset


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    return str(save_data(tmp_path_factory.mktemp("data") / "pendulum.npz", pendulum_dataset()))


def small(P, data_file, **kw):
    base = dict(dataset=data_file, n_epochs=2, update_times=10, batch_size=32, display_interval=1,
                calculate_episodes=1, hidden_sizes=(16,), episode_length=30)
    return P(**{**base, **kw})


# -- losses against independent references ------------------------------------------------
def test_expectile_loss_matches_numpy():
    rng = np.random.default_rng(0)
    u = rng.normal(size=100).astype(np.float32)
    for tau in (0.5, 0.7, 0.9):
        want = np.mean(np.where(u < 0, 1 - tau, tau) * u ** 2)
        np.testing.assert_allclose(expectile_loss(jnp.asarray(u), tau), want, rtol=1e-5)
    # tau = 0.5 is half the squared error
    np.testing.assert_allclose(expectile_loss(jnp.asarray(u), 0.5), 0.5 * np.mean(u ** 2), rtol=1e-5)


def test_awr_weights_are_clipped_exponentials():
    adv = np.array([-1.0, 0.0, 0.5, 3.0], np.float32)
    np.testing.assert_allclose(awr_weights(jnp.asarray(adv), 3.0, 100.0), np.minimum(np.exp(3 * adv), 100), rtol=1e-6)


def test_td3bc_actor_loss_matches_numpy():
    rng = np.random.default_rng(1)
    q = rng.normal(size=64).astype(np.float32) * 10
    pi, a = rng.uniform(-1, 1, (2, 64, 2)).astype(np.float32)
    want = -2.5 / np.mean(np.abs(q)) * np.mean(q) + np.mean((pi - a) ** 2)  # F.mse_loss: every element
    np.testing.assert_allclose(td3bc_actor_loss(jnp.asarray(q), jnp.asarray(pi), jnp.asarray(a), 2.5), want, rtol=1e-5)
    # lambda carries no gradient: d loss / d q = -lambda / n
    g = jax.grad(lambda q: td3bc_actor_loss(q, jnp.asarray(pi), jnp.asarray(a), 2.5))(jnp.asarray(q))
    np.testing.assert_allclose(g, np.full(64, -2.5 / np.mean(np.abs(q)) / 64), rtol=1e-5)


def test_bounded_gaussian_log_likelihood_matches_scipy():
    from aquaml.model.contract import build_actor
    from aquaml.model.defaults import MLPActor
    from aquaml.model.policy import BoundedGaussianPolicy

    spec = build_actor(MLPActor(("obs",), (2,), (8,), 1e-3, log_std=False), "actor", {"obs": (3,)},
                       action_shape=(2,))
    policy = BoundedGaussianPolicy(spec, log_std_init=-0.5)
    params = policy.init_params()
    obs = {"obs": jnp.asarray(np.random.default_rng(2).normal(size=(5, 3)), jnp.float32)}
    outputs = policy.outputs(params["net"], obs)
    action = np.array([[1.0, -1.0], [0.3, 0.2], [0.0, 1.0], [-0.99, 0.5], [1.0, 1.0]], np.float32)
    mean = np.tanh(np.asarray(outputs["action"]).reshape(5, 2))
    want = stats.norm.logpdf(action, mean, np.exp(-0.5)).sum(axis=1)
    np.testing.assert_allclose(policy.log_prob(params, outputs, jnp.asarray(action)), want, rtol=1e-5)
    assert np.isfinite(np.asarray(policy.log_prob(params, outputs, jnp.asarray(action)))).all()  # finite at +-1
    det, _ = policy.act(params, obs, jax.random.PRNGKey(0), deterministic=True)
    np.testing.assert_allclose(det["action"], mean, rtol=1e-6)


# -- the learner: batches and statistics ----------------------------------------------------
def test_observation_statistics_come_from_the_dataset(data_file):
    starter = RLTaskStarter("Pendulum-v1", None, TD3BC, small(TD3BCParameters, data_file), progress=False)
    stats_ = starter.state.obs_stats
    obs = starter.dataset.transitions()["obs/obs"].astype(np.float64)
    np.testing.assert_allclose(stats_["mean"]["obs"], obs.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats_["var"]["obs"], (obs.std(0) + STD_FLOOR) ** 2, rtol=1e-5)
    starter.close()
    plain = RLTaskStarter("Pendulum-v1", None, TD3BC, small(TD3BCParameters, data_file, normalize_obs=False),
                          progress=False)
    assert plain.state.obs_stats["mean"] == {}
    plain.close()


def test_sequence_windows_never_cross_an_episode_end(data_file):
    params = small(BCParameters, data_file, lstm_size=4, sequence_length=8, burn_in=2, batch_size=64,
                   update_times=50)
    starter = RLTaskStarter("Pendulum-v1", None, BC, params, progress=False)
    batch = starter.learner.prepare(None, np.random.default_rng(0))
    mask, obs = batch["mask"], batch["obs"]["obs"]
    assert mask.shape == (50, 8, 8) and (mask == 0).any()  # some windows reach an episode end
    ds = starter.dataset
    episode = ds.episode_of_step
    steps = ds.transitions()["obs/obs"]
    for b in range(50):
        for w in range(8):
            valid = int(mask[b, w].sum())
            # every valid step is the same episode's consecutive step
            rows = [int(np.flatnonzero((steps == obs[b, w, t]).all(1))[0]) for t in range(valid)]
            assert rows == list(range(rows[0], rows[0] + valid))
            assert len({episode[r] for r in rows}) == 1
            assert valid == 8 or rows[-1] == np.cumsum(ds.lengths)[episode[rows[0]]] - 1
    state_names = list(starter.state_outputs)
    assert state_names and all(not batch["obs"][k].any() for k in state_names)  # no stored state: zeros
    starter.close()


# -- training, resume and bad input ---------------------------------------------------------
@pytest.mark.parametrize("algo,P", [(BC, BCParameters), (TD3BC, TD3BCParameters), (IQL, IQLParameters)])
def test_offline_runs_count_gradient_steps_and_resume_exactly(algo, P, data_file, tmp_path):
    def make(epochs, root):
        return RLTaskStarter("Pendulum-v1", None, algo, small(P, data_file, n_epochs=epochs), run_root=root,
                             progress=False)

    full, run_dir = assert_resumes_exactly(make, 4, 40, tmp_path)
    assert full.env_steps == 0 and full.grad_steps == 40
    assert [s for s, _ in full.eval_history] == [10, 20, 30, 40]
    rows = (run_dir / "progress.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("env_steps,grad_steps")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["dataset"]["episodes"] == 4 and len(config["dataset"]["sha256"]) == 64


def test_resume_refuses_a_changed_dataset(data_file, tmp_path):
    path = tmp_path / "d.npz"
    save_data(path, pendulum_dataset(episodes=2))
    run_dir = RLTaskStarter("Pendulum-v1", None, BC, small(BCParameters, str(path)), run_root=tmp_path,
                            progress=False).run().run_dir
    save_data(path, pendulum_dataset(episodes=2, seed=1))
    with pytest.raises(ValueError, match="changed since"):
        RLTaskStarter.from_run_dir(run_dir, steps=40, progress=False)


def test_named_data_each_model_reads_its_own_fields(tmp_path):
    """The actor reads positions only, the critics the full observation: both come from one dataset."""
    from aquaml.env import PositionOnlyEnv

    path = save_data(tmp_path / "d.npz", pendulum_dataset(episodes=2, with_pos=True))

    starter = RLTaskStarter(PositionOnlyEnv("Pendulum-v1"), {"actor": PositionActor}, TD3BC,
                            small(TD3BCParameters, str(path)), run_root=tmp_path, progress=False)
    assert starter.models["actor"].input_names == ("pos",) and "obs" in starter.models["qf1"].input_names
    assert set(starter.state.obs_stats["mean"]) == {"pos", "obs"}
    assert np.isfinite(starter.run().final_eval_return)
    # a dataset without 'pos' cannot feed that actor
    bare = save_data(tmp_path / "bare.npz", pendulum_dataset(episodes=1))
    with pytest.raises(DatasetError, match="lacks observation 'pos' that the actor model reads; it holds obs"):
        RLTaskStarter(PositionOnlyEnv("Pendulum-v1"), {"actor": PositionActor}, TD3BC, small(TD3BCParameters, str(bare)),
                      run_root=tmp_path, progress=False)


def test_bad_offline_input_fails_before_training(data_file, tmp_path):
    with pytest.raises(ValueError, match=r"bc learns from a dataset: set dataset=PATH"):
        RLTaskStarter("Pendulum-v1", None, BC, small(BCParameters, ""), progress=False)
    with pytest.raises(FileNotFoundError, match="no data file"):
        RLTaskStarter("Pendulum-v1", None, BC, small(BCParameters, str(tmp_path / "absent.npz")), progress=False)
    with pytest.raises(ValueError, match="max_episodes = 9, but .* holds 4 episodes"):
        RLTaskStarter("Pendulum-v1", None, BC, small(BCParameters, data_file, max_episodes=9), progress=False)
    with pytest.raises(DatasetError, match=r"observation 'obs' has shape \(3,\) per step in the dataset; the models "
                                           r"read \(2,\)"):
        RLTaskStarter("PendulumNoVel-v1", None, BC, small(BCParameters, data_file), progress=False)
    with pytest.raises(ValueError, match="is recurrent .* set sequence_length"):
        RLTaskStarter("Pendulum-v1", None, BC, small(BCParameters, data_file, lstm_size=4), progress=False)
    with pytest.raises(ValueError, match="offline algorithms step no environments"):
        BCParameters(dataset=data_file, n_envs=4)
    with pytest.raises(ValueError, match="loss = 'l1'"):
        BCParameters(loss="l1")
    with pytest.raises(ValueError, match="steps no environments: run it in one process"):
        RLTaskStarter("Pendulum-v1", None, BC, small(BCParameters, data_file), progress=False, n_workers=2)


def test_bc_clones_discrete_actions(tmp_path):
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    eps = []
    for e in range(4):
        o, _ = env.reset(seed=e)
        obs, acts, rews, term = [o], [], [], []
        while True:
            a = int(o[2] + 0.5 * o[3] > 0)  # a simple balancing rule
            o, r, te, tr, _ = env.step(a)
            obs.append(o), acts.append(a), rews.append(r), term.append(te)
            if te or tr:
                break
        T = len(acts)
        eps.append({"observations": {"obs": np.array(obs)}, "action": np.array(acts), "reward": np.array(rews),
                    "terminated": np.array(term), "truncated": np.r_[np.zeros(T - 1, bool), not term[-1]]})
    path = save_data(tmp_path / "cartpole.npz", Dataset.from_episodes(eps))
    params = BCParameters(dataset=str(path), n_epochs=3, update_times=300, batch_size=64, display_interval=3,
                          calculate_episodes=2, hidden_sizes=(32,), learning_rate=1e-3)
    starter = RLTaskStarter("CartPole-v1", None, BC, params, run_root=tmp_path, progress=False)
    summary = starter.run()
    assert starter.loop.metrics["accuracy"] > 0.85  # states near the rule's boundary are ambiguous
    assert summary.final_eval_return >= 195, summary.eval_history


def test_cli_trains_offline_algorithms_and_steps_count_gradient_steps(data_file, tmp_path, capsys):
    from aquaml.cli import main

    for algo in ("bc", "td3bc", "iql"):
        code = main(["train", algo, "Pendulum-v1", "--set", f"dataset={data_file}", "--steps", "30",
                     "--set", "update_times=10", "--set", "batch_size=32", "--set", "hidden_sizes=16",
                     "--set", "calculate_episodes=1", "--run-root", str(tmp_path)])
        assert code == 0
        out = capsys.readouterr().out
        assert "final evaluation return:" in out
        row = (next((tmp_path / f"{algo}_Pendulum-v1").glob("*")) / "progress.csv").read_text().splitlines()[-1]
        assert row.startswith("0,30,3,")  # no env steps, 30 gradient steps, 3 epochs
    assert main(["train", "bc", "Pendulum-v1", "--run-root", str(tmp_path)]) == 2
    assert "set dataset=PATH" in capsys.readouterr().err
