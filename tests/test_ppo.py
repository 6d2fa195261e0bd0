import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from aquaml.algorithm import PPO, PPO_parameter, PPOParameters, gae
from aquaml.data import normalizer
from aquaml.env import ActionSpace
from aquaml.model import MLPActor, MLPCritic, build_model
from aquaml.model.distributions import categorical_entropy, categorical_log_prob, gaussian_entropy


def gae_reference(r, v, next_v, term, trunc, gamma, lam):
    """Written per environment and step, backwards, with explicit episode boundaries."""
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):
        running = 0.0
        for t in reversed(range(T)):
            bootstrap = 0.0 if term[t, n] else gamma * next_v[t, n]
            delta = r[t, n] + bootstrap - v[t, n]
            if term[t, n] or trunc[t, n]:
                running = 0.0  # the next step belongs to another episode
            running = delta + gamma * lam * running
            adv[t, n] = running
    return adv, adv + v


def test_gae_against_hand_computed_reference():
    rng = np.random.default_rng(0)
    T, N = 9, 3
    r, v, next_v = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=(T, N))
    term = np.zeros((T, N)); trunc = np.zeros((T, N))
    term[3, 0] = 1; trunc[5, 0] = 1; trunc[2, 1] = 1; term[8, 2] = 1; trunc[4, 2] = 1
    expected_adv, expected_ret = gae_reference(r, v, next_v, term, trunc, 0.97, 0.9)
    adv, ret = gae(*(jnp.asarray(x, jnp.float32) for x in (r, v, next_v, term, trunc)), 0.97, 0.9)
    np.testing.assert_allclose(adv, expected_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, expected_ret, rtol=1e-5, atol=1e-5)


def test_gae_truncation_bootstraps_and_termination_does_not():
    # one step, reward 1, next value 10: truncated -> 1 + 0.9 * 10 - 0; terminated -> 1
    one = lambda x: jnp.asarray([[x]], jnp.float32)  # noqa: E731
    adv_trunc, _ = gae(one(1.0), one(0.0), one(10.0), one(0.0), one(1.0), 0.9, 0.95)
    adv_term, _ = gae(one(1.0), one(0.0), one(10.0), one(1.0), one(0.0), 0.9, 0.95)
    assert float(adv_trunc[0, 0]) == pytest.approx(10.0) and float(adv_term[0, 0]) == pytest.approx(1.0)


def test_categorical_log_prob_and_entropy_against_scipy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 4)).astype(np.float32)
    actions = rng.integers(0, 4, size=5)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(categorical_log_prob(jnp.asarray(logits), jnp.asarray(actions)),
                               np.log(p[np.arange(5), actions]), rtol=1e-5)
    np.testing.assert_allclose(categorical_entropy(jnp.asarray(logits)), stats.entropy(p, axis=-1), rtol=1e-5)


def test_gaussian_entropy_against_scipy():
    log_std = np.array([[-1.0, 0.3, 1.2]], np.float32)
    np.testing.assert_allclose(gaussian_entropy(jnp.asarray(log_std)),
                               stats.norm(0, np.exp(log_std)).entropy().sum(-1), rtol=1e-5)


def test_normalizer_matches_numpy_over_batches():
    rng = np.random.default_rng(2)
    batches = [rng.normal(3.0, 2.0, size=(n, 2)).astype(np.float32) for n in (7, 100, 33)]
    s = normalizer.init_stats({"x": (2,), "h": (1,)})
    for b in batches:
        s = normalizer.update_stats(s, {"x": b, "h": b[:, :1]})
    allx = np.concatenate(batches)
    np.testing.assert_allclose(s["mean"]["x"], allx.mean(0), rtol=1e-4)
    np.testing.assert_allclose(s["var"]["x"], allx.var(0), rtol=1e-3)
    out = normalizer.normalize({"mean": {"x": s["mean"]["x"]}, "var": {"x": s["var"]["x"]}, "count": s["count"]},
                               {"x": allx, "hidden": np.ones((len(allx), 3))})
    np.testing.assert_allclose(np.asarray(out["x"]).mean(0), 0, atol=1e-3)
    np.testing.assert_array_equal(out["hidden"], 1.0)  # names without statistics pass through


def make_ppo(discrete: bool, **kw):
    params = PPOParameters(n_envs=2, rollout_length=8, batch_size=4, update_times=3, **kw)
    n = 3
    action_shape = (n,) if discrete else (2,)
    actor = build_model(MLPActor(("obs",), action_shape, (8,), log_std=False), "actor", {"obs": (4,)}, actor=True)
    critic = build_model(MLPCritic(("obs",), (8,)), "critic", {"obs": (4,)}, actor=False)
    return PPO(params, {"actor": actor, "critic": critic}, ActionSpace(action_shape, n if discrete else None))


def fake_rollout(ppo, seed=0):
    rng = np.random.default_rng(seed)
    T, N = ppo.params.rollout_length, ppo.params.n_envs
    state = ppo.init_state(jax.random.PRNGKey(seed))
    obs = rng.normal(size=(T, N, 4)).astype(np.float32)
    actions, extras, key = ppo.act(ppo.actor_params(state), {"obs": obs.reshape(T * N, 4)}, jax.random.PRNGKey(1))
    batch = {"obs/obs": obs, "next_obs/obs": rng.normal(size=(T, N, 4)).astype(np.float32),
             "action": np.asarray(actions["action"]).reshape(T, N, *np.shape(actions["action"])[1:]),
             "reward": rng.normal(size=(T, N)).astype(np.float32),
             "terminated": rng.random((T, N)) < 0.1, "truncated": rng.random((T, N)) < 0.1}
    batch.update({f"extras/{k}": np.asarray(v).reshape(T, N, *np.shape(v)[1:]) for k, v in extras.items()})
    return state, ppo.prepare_rollout(batch)


@pytest.mark.parametrize("discrete", [True, False])
def test_ppo_update_is_one_compiled_call(discrete):
    ppo = make_ppo(discrete, scale_reward=True, clip_value=0.2)
    traces = {"n": 0}
    inner = ppo._update

    def counting(state, rollout):
        traces["n"] += 1
        return inner(state, rollout)

    ppo.update = jax.jit(counting)
    state, rollout = fake_rollout(ppo)
    new, metrics = ppo.update(state, rollout)
    new, metrics = ppo.update(new, fake_rollout(ppo, seed=1)[1])
    assert traces["n"] == 1
    assert ppo.grad_steps_per_update == 3 * 4
    assert all(np.isfinite(float(v)) for v in metrics.values())
    # the first pass's first minibatch sees ratio 1: the stored log-probs match the policy
    assert not np.array_equal(new.actor["net"][0], state.actor["net"][0])
    assert float(new.obs_stats["count"]) == pytest.approx(2 * 16, rel=1e-6)


def test_stored_log_probs_match_the_policy():
    ppo = make_ppo(False)
    state, rollout = fake_rollout(ppo)
    flat = lambda x: x.reshape(16, *x.shape[2:])  # noqa: E731
    obs = ppo._normalize(state.obs_stats, {"obs": flat(rollout["obs"]["obs"])})
    extras = {k: flat(v) for k, v in rollout["extras"].items()}
    outputs = ppo.policy.outputs(state.actor["net"], obs)
    log_prob, _ = ppo.policy.log_prob_entropy(state.actor, outputs, flat(rollout["action"]), extras)
    np.testing.assert_allclose(log_prob, extras["log_prob"], rtol=1e-5)
    assert np.all(np.abs(rollout["action"]) <= 1.0)  # the environment gets clipped actions


def test_ppo_parameters():
    p = PPO_parameter(gamma=0.98, lambada=0.9, epsilon=0.1, epoch_length=200)
    assert (p.discount, p.gae_lambda, p.clip_range, p.episode_length) == (0.98, 0.9, 0.1, 200)
    with pytest.raises(ValueError, match="batch_size = 300 must divide"):
        PPOParameters(batch_size=300)
    with pytest.raises(TypeError, match="unknown parameter"):
        PPO_parameter(tau=0.1)
