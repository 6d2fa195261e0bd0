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
from benchmarks.learning_runs import last_mean
from helpers import PositionActor, assert_resumes_exactly, build_algorithm, pendulum_dataset, replay_batches


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    return str(save_data(tmp_path_factory.mktemp("data") / "pendulum.npz", pendulum_dataset()))


def small(P, data_file, **kw):
    base = dict(dataset=data_file, n_epochs=2, update_times=10, batch_size=32, display_interval=1,
                calculate_episodes=1, hidden_sizes=(16,), episode_length=30)
    return P(**{**base, **kw})


# -- losses against independent references ------------------------------------------------
def expectile_reference(u, tau):
    """Kostrikov et al. (2021), eq. 5: L_2^tau(u) = |tau - 1(u < 0)| u^2, averaged; one term at a time."""
    return sum(abs(tau - (1.0 if x < 0 else 0.0)) * x * x for x in u) / len(u)


def test_expectile_loss_against_hand_computed_values_and_a_loop():
    u = jnp.array([-2.0, -0.5, 0.0, 1.0, 3.0])
    # tau = 0.7: (0.3 * 4 + 0.3 * 0.25 + 0 + 0.7 * 1 + 0.7 * 9) / 5 = 8.275 / 5
    np.testing.assert_allclose(expectile_loss(u, 0.7), 1.655, rtol=1e-6)
    # tau = 0.9: (0.1 * 4 + 0.1 * 0.25 + 0 + 0.9 * 1 + 0.9 * 9) / 5 = 9.425 / 5
    np.testing.assert_allclose(expectile_loss(u, 0.9), 1.885, rtol=1e-6)
    # tau = 0.5: half the mean squared error, 0.5 * 14.25 / 5
    np.testing.assert_allclose(expectile_loss(u, 0.5), 1.425, rtol=1e-6)
    x = np.random.default_rng(0).normal(size=100).astype(np.float32)
    for tau in (0.1, 0.7, 0.9):
        np.testing.assert_allclose(expectile_loss(jnp.asarray(x), tau), expectile_reference(x, tau), rtol=1e-5)


def test_awr_weights_against_hand_computed_values():
    # min(exp(3 * A), 100) at A = -1, 0, 0.5, 3: e^-3, 1, e^1.5, and e^9 = 8103 clipped to 100
    adv = jnp.array([-1.0, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(awr_weights(adv, 3.0, 100.0), [0.0497871, 1.0, 4.4816891, 100.0], rtol=1e-6)


def test_td3bc_actor_loss_against_hand_computed_values():
    # Fujimoto and Gu (2021): -lambda mean Q + mean over all elements of (pi - a)^2, lambda = alpha / mean |Q|.
    # Q = (2, -4): lambda = 2.5 / 3, mean Q = -1, so the Q term is 2.5 / 3 = 0.8333333;
    # pi - a = [[0.5, -1], [0, 2]]: squares 0.25 + 1 + 0 + 4 = 5.25 over 4 elements = 1.3125
    q = jnp.array([2.0, -4.0])
    pi, a = jnp.array([[0.5, -0.5], [0.2, 1.0]]), jnp.array([[0.0, 0.5], [0.2, -1.0]])
    np.testing.assert_allclose(td3bc_actor_loss(q, pi, a, 2.5), 2.5 / 3 + 1.3125, rtol=1e-6)
    # lambda carries no gradient: d loss / d Q_i = -lambda / N = -(2.5 / 3) / 2
    np.testing.assert_allclose(jax.grad(lambda q: td3bc_actor_loss(q, pi, a, 2.5))(q), [-2.5 / 6] * 2, rtol=1e-6)


@pytest.mark.parametrize("action_dim", [1, 6])
def test_iql_losses_of_one_update_against_numpy(action_dim):
    """Kostrikov et al. (2021), eqs. 5-7 with their code's clipped weights, per sample in numpy:
    L_V = 1/N sum_i L_2^tau(Q'(s_i, a_i) - V(s_i)), Q' = min_k of the target critics;
    L_Q = sum_k 1/N sum_i (Q_k(s_i, a_i) - r_i - gamma (1 - d_i) V_new(s'_i))^2;
    L_pi = -1/N sum_i min(exp(beta (Q'(s_i, a_i) - V(s_i))), w_max) log N(a_i; tanh(mu(s_i)), sigma^2)."""
    params = IQLParameters(hidden_sizes=(8,), expectile=0.8, temperature=3.0, max_weight=1.5, log_std_init=-0.5)
    algo = build_algorithm(IQL, params, action_dim)
    state = algo.init_state(jax.random.PRNGKey(0)).inner
    batch = jax.tree_util.tree_map(lambda x: x[0], replay_batches(1, b=32, action_dim=action_dim, seed=action_dim))
    new, metrics = jax.jit(algo._update_one)(state, batch)

    obs, next_obs, action = batch["obs"], batch["next_obs"], batch["action"]
    # the networks' outputs, from the models; every formula on them below is written out
    q_target = [np.asarray(algo.critics.q(k, state.targets[k], obs, action), np.float64) for k in range(2)]
    q_old = [np.asarray(algo.critics.q(k, state.critics[k], obs, action), np.float64) for k in range(2)]  # pre-step
    v = np.asarray(algo._v(state.value, obs), np.float64)
    v_next = np.asarray(algo._v(new.value, next_obs), np.float64)  # the critics learn from the updated value
    mu = np.asarray(algo.policy.outputs(state.actor["net"], obs)["action"], np.float64).reshape(32, action_dim)
    sigma = np.exp(np.asarray(state.actor["log_std"], np.float64))

    N = 32
    u = [min(q_target[0][i], q_target[1][i]) - v[i] for i in range(N)]
    assert min(u) < 0 < max(u)
    np.testing.assert_allclose(metrics["v_loss"], expectile_reference(u, 0.8), rtol=1e-5)
    gamma = params.discount
    y = [batch["reward"][i] + gamma * (1 - batch["terminated"][i]) * v_next[i] for i in range(N)]
    q_loss = sum((q_old[k][i] - y[i]) ** 2 for k in range(2) for i in range(N)) / N
    np.testing.assert_allclose(metrics["q_loss"], q_loss, rtol=1e-5)
    weights = [min(np.exp(3.0 * u[i]), 1.5) for i in range(N)]
    assert 0 < sum(w == 1.5 for w in weights) < N  # some weights clipped, some not
    log_pi = [stats.norm.logpdf(action[i], np.tanh(mu[i]), sigma).sum() for i in range(N)]
    np.testing.assert_allclose(metrics["actor_loss"], -sum(w * lp for w, lp in zip(weights, log_pi)) / N, rtol=1e-5)
    np.testing.assert_allclose(metrics["adv_weight"], np.mean(weights), rtol=1e-5)


@pytest.mark.parametrize("action_dim", [1, 6])
def test_bc_losses_against_numpy(action_dim):
    """Behaviour cloning's two continuous losses, per sample: -log N(a; tanh(mu(s)), diag sigma^2)
    (scipy), or the squared distance |tanh(mu(s)) - a|^2 summed over the action's dimensions."""
    rng = np.random.default_rng(action_dim)
    batch = {"obs": {"obs": rng.normal(size=(16, 3)).astype(np.float32)},
             "action": rng.uniform(-1, 1, (16, action_dim)).astype(np.float32), "reward": np.zeros(16, np.float32)}
    for loss in ("gaussian", "mse"):
        algo = build_algorithm(BC, BCParameters(hidden_sizes=(8,), log_std_init=-0.5, loss=loss), action_dim)
        state = algo.init_state(jax.random.PRNGKey(0)).inner
        got, metrics = algo._losses(state.actor, batch)
        mu = np.asarray(algo.policy.outputs(state.actor["net"], batch["obs"])["action"], np.float64)
        mean = np.tanh(mu.reshape(16, action_dim))
        nll = -np.mean([stats.norm.logpdf(batch["action"][i], mean[i], np.exp(-0.5)).sum() for i in range(16)])
        sq = np.mean([sum((mean[i, j] - batch["action"][i, j]) ** 2 for j in range(action_dim)) for i in range(16)])
        np.testing.assert_allclose(metrics["action_mse"], sq, rtol=1e-5)
        np.testing.assert_allclose(got, nll if loss == "gaussian" else sq, rtol=1e-5)


@pytest.mark.parametrize("action_dim", [1, 6])
def test_bounded_gaussian_log_likelihood_matches_scipy(action_dim):
    from aquaml.model.contract import build_actor
    from aquaml.model.defaults import MLPActor
    from aquaml.model.policy import BoundedGaussianPolicy

    spec = build_actor(MLPActor(("obs",), (action_dim,), (8,), 1e-3, log_std=False), "actor", {"obs": (3,)},
                       action_shape=(action_dim,))
    policy = BoundedGaussianPolicy(spec, log_std_init=-0.5)
    params = policy.init_params()
    rng = np.random.default_rng(2)
    obs = {"obs": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)}
    outputs = policy.outputs(params["net"], obs)
    action = rng.uniform(-1, 1, (5, action_dim)).astype(np.float32)
    action[0], action[1, 0], action[4] = 1.0, -1.0, -1.0  # experts act at the bounds: finite there
    mean = np.tanh(np.asarray(outputs["action"], np.float64).reshape(5, action_dim))
    want = [stats.multivariate_normal(mean[i], np.exp(-0.5) ** 2 * np.eye(action_dim)).logpdf(action[i])
            for i in range(5)]
    got = policy.log_prob(params, outputs, jnp.asarray(action))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert np.isfinite(np.asarray(got)).all()
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
    params = BCParameters(dataset=str(path), n_epochs=3, update_times=300, batch_size=64, display_interval=1,
                          calculate_episodes=2, hidden_sizes=(32,), learning_rate=1e-3)
    starter = RLTaskStarter("CartPole-v1", None, BC, params, run_root=tmp_path, progress=False)
    summary = starter.run()
    assert starter.loop.metrics["accuracy"] > 0.85  # states near the rule's boundary are ambiguous
    assert last_mean(summary, 2) >= 195, summary.eval_history


def test_cli_trains_offline_algorithms_and_steps_count_gradient_steps(data_file, tmp_path, capsys):
    from aquaml.cli import main

    for algo in ("bc", "td3bc", "iql"):
        code = main(["train", algo, "Pendulum-v1", "--set", f"dataset={data_file}", "--steps", "30",
                     "--set", "update_times=10", "--set", "batch_size=32", "--set", "hidden_sizes=16",
                     "--set", "calculate_episodes=1", "--run-root", str(tmp_path), "-v"])
        assert code == 0
        out = capsys.readouterr().out
        assert "final evaluation return:" in out
        # the table shows what an offline run has: no env steps, training episodes or policy lag
        assert "| grad_steps " in out and "| eval_return_mean " in out
        assert not {"env_steps", "train_return_mean", "train_episodes", "policy_lag"} & set(out.split())
        row = (next((tmp_path / f"{algo}_Pendulum-v1").glob("*")) / "progress.csv").read_text().splitlines()[-1]
        assert row.startswith("0,30,3,")  # no env steps, 30 gradient steps, 3 epochs
    assert main(["train", "bc", "Pendulum-v1", "--run-root", str(tmp_path)]) == 2
    assert "set dataset=PATH" in capsys.readouterr().err
