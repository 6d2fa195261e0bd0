import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from aquaml.algorithm import PPO, PPO_parameter, PPOParameters, gae
from aquaml.algorithm.on_policy import advantages, rollout_windows, scale_rewards
from aquaml.algorithm.ppo import minibatch_epochs, normalize_advantages, policy_loss, value_loss
from aquaml.data import normalizer
from aquaml.env import ActionSpace
from aquaml.model import MLPActor, MLPCritic, build_actor, build_critic
from aquaml.model.distributions import categorical_entropy, categorical_log_prob, gaussian_entropy
from aquaml.model.optimizers import gradients_transformed_by, learner_sum
from aquaml.parallel.data_parallel import mean_across


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


def make_ppo(discrete: bool, action_dim: int = 2, **kw):
    params = PPOParameters(n_envs=2, rollout_length=8, batch_size=4, n_update_epochs=3, **kw)
    n = 3
    action_shape = (n,) if discrete else (action_dim,)
    actor = build_actor(MLPActor(("obs",), action_shape, (8,), log_std=False), "actor", {"obs": (4,)})
    critic = build_critic(MLPCritic(("obs",), (8,)), "critic", {"obs": (4,)})
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


@pytest.mark.parametrize("action_dim", [1, 6])
def test_stored_log_probs_match_the_policy(action_dim):
    ppo = make_ppo(False, action_dim, log_std_init=-0.7)
    state, rollout = fake_rollout(ppo)
    flat = lambda x: x.reshape(16, *x.shape[2:])  # noqa: E731
    obs = ppo._normalize(state.obs_stats, {"obs": flat(rollout["obs"]["obs"])})
    extras = {k: flat(v) for k, v in rollout["extras"].items()}
    outputs = ppo.policy.outputs(state.actor["net"], obs)
    log_prob, _ = ppo.policy.log_prob_entropy(state.actor, outputs, flat(rollout["action"]), extras)
    np.testing.assert_allclose(log_prob, extras["log_prob"], rtol=1e-5)
    # the density of the unclipped sample under N(mean(s), diag std^2), from scipy
    mean, std = np.asarray(outputs["action"], np.float64), np.exp(np.asarray(state.actor["log_std"], np.float64))
    want = [stats.multivariate_normal(m, np.diag(std ** 2)).logpdf(u) for m, u in zip(mean, extras["raw_action"])]
    np.testing.assert_allclose(extras["log_prob"], want, rtol=1e-5)
    assert np.all(np.abs(rollout["action"]) <= 1.0)  # the environment gets clipped actions


def test_ppo_parameters():
    p = PPO_parameter(gamma=0.98, lambada=0.9, epsilon=0.1, epoch_length=200)
    assert (p.discount, p.gae_lambda, p.clip_range, p.episode_length) == (0.98, 0.9, 0.1, 200)
    with pytest.raises(ValueError, match="batch_size = 300 must divide"):
        PPOParameters(batch_size=300)
    with pytest.raises(TypeError, match="unknown parameter"):
        PPO_parameter(tau=0.1)


def test_ppo_parameters_burn_in():
    assert PPOParameters(rollout_length=16, batch_size=16, sequence_length=4, burn_in=4).burn_in == 4
    with pytest.raises(ValueError, match=r"burn_in = 5 must lie in \[0, sequence_length = 4\]"):
        PPOParameters(rollout_length=16, batch_size=16, sequence_length=4, burn_in=5)
    with pytest.raises(ValueError, match="needs sequence_length < rollout_length"):
        PPOParameters(rollout_length=16, batch_size=16, batch_trajectory=True, burn_in=2)
    with pytest.raises(ValueError, match="burn_in needs sequence_length"):
        PPOParameters(burn_in=2)


# -- the pure functions of the update, each against numpy written out by hand ---------------

def weighted(x, w):
    return float(np.sum(w * x) / np.sum(w))


def test_policy_loss_against_numpy():
    rng = np.random.default_rng(3)
    n, eps, c = 64, 0.2, 0.01
    old = rng.normal(size=n)
    new = old + rng.normal(0, 0.4, size=n)  # ratios from about 0.3 to 3: many clipped either way
    adv, entropy = rng.normal(size=n), rng.uniform(0, 2, size=n)
    w = (rng.random(n) < 0.7).astype(np.float64)
    loss, (ent, _, clipped) = policy_loss(*(jnp.asarray(x, jnp.float32) for x in (new, old, entropy, adv, w)),
                                          eps, c)
    objective, outside = np.empty(n), np.empty(n)
    for i in range(n):  # the clipped objective case by case (the paper's figure 1)
        r, a = np.exp(new[i] - old[i]), adv[i]
        objective[i] = min(r, 1 + eps) * a if a >= 0 else max(r, 1 - eps) * a
        outside[i] = r < 1 - eps or r > 1 + eps
    assert 0.1 < weighted(outside, w) < 0.9  # both clipped and unclipped cases
    np.testing.assert_allclose(float(loss), -weighted(objective, w) - c * weighted(entropy, w), rtol=1e-5)
    np.testing.assert_allclose(float(ent), weighted(entropy, w), rtol=1e-5)
    np.testing.assert_allclose(float(clipped), weighted(outside, w), rtol=1e-6)

    # by hand: log-ratios 0.5, -0.5, 0 (and 3 at weight 0, left out), advantages 1, eps = 0.2, no entropy:
    # r = 1.6487213 -> clipped to 1.2;  r = 0.6065307 < 0.8 counts as it is (min);  r = 1 -> 1
    # loss = -(1.2 + 0.6065307 + 1) / 3;  approx KL (r - 1) - log r: (0.1487213 + 0.1065307 + 0) / 3
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    zeros, ones = f32([0, 0, 0, 0]), f32([1, 1, 1, 1])
    loss, (_, kl, clipped) = policy_loss(f32([0.5, -0.5, 0, 3]), zeros, zeros, ones, f32([1, 1, 1, 0]), 0.2, 0.01)
    np.testing.assert_allclose([float(loss), float(kl), float(clipped)], [-0.9355102, 0.0850840, 2 / 3], rtol=1e-5)


@pytest.mark.parametrize("clip_value", [None, 0.3])
def test_value_loss_against_numpy(clip_value):
    rng = np.random.default_rng(4)
    n = 50
    v, ret, old = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    w = (rng.random(n) < 0.8).astype(np.float64)
    got = value_loss(*(jnp.asarray(x, jnp.float32) for x in (v, ret, old, w)), clip_value)
    errors = []
    for i in range(n):
        e = (v[i] - ret[i]) ** 2
        if clip_value is not None:  # pessimistic: the worse of the new and the clipped new value
            clipped = old[i] + min(max(v[i] - old[i], -clip_value), clip_value)
            e = max(e, (clipped - ret[i]) ** 2)
        errors.append(e)
    np.testing.assert_allclose(float(got), 0.5 * weighted(np.array(errors), w), rtol=1e-5)
    if clip_value is not None:
        assert float(got) > float(value_loss(*(jnp.asarray(x, jnp.float32) for x in (v, ret, old, w))))


def test_advantage_normalisation_with_weights():
    rng = np.random.default_rng(5)
    a = rng.normal(3.0, 2.0, size=40)
    w = (rng.random(40) < 0.6).astype(np.float64)
    kept = a[w == 1]
    expected = (a - kept.mean()) / (kept.std() + 1e-8)
    got = np.asarray(normalize_advantages(jnp.asarray(a, jnp.float32), jnp.asarray(w, jnp.float32)))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    b = np.where(w == 1, a, 1e3)  # steps of weight 0 change nothing
    np.testing.assert_allclose(normalize_advantages(jnp.asarray(b, jnp.float32), jnp.asarray(w, jnp.float32))[w == 1],
                               got[w == 1], rtol=1e-6)


def test_windows_layout_against_numpy():
    T, N, L = 6, 3, 2
    step = np.arange(T * N, dtype=np.float32).reshape(T, N)  # step t of env n: t * N + n
    obs = np.stack([step, -step], axis=-1)  # a feature axis travels along
    term, trunc = np.zeros((T, N), np.float32), np.zeros((T, N), np.float32)
    term[1, 0] = trunc[2, 1] = term[3, 2] = trunc[5, 2] = 1
    out = rollout_windows({"x": jnp.asarray(step), "obs": {"o": jnp.asarray(obs)}}, jnp.asarray(term),
                          jnp.asarray(trunc), L)
    expected, starts = [], []
    for n in range(N):  # env-major, each env's windows in time order
        for j in range(T // L):
            expected.append([step[j * L + i, n] for i in range(L)])
            starts.append([i > 0 and max(term[j * L + i - 1, n], trunc[j * L + i - 1, n]) > 0 for i in range(L)])
    np.testing.assert_array_equal(out["x"], expected)
    np.testing.assert_array_equal(out["obs"]["o"][..., 1], -np.array(expected))
    np.testing.assert_array_equal(out["starts"], starts)
    assert np.asarray(out["starts"]).any()
    single = rollout_windows({"x": jnp.asarray(step)}, jnp.asarray(term), jnp.asarray(trunc), 1)
    np.testing.assert_array_equal(single["x"][:, 0], step.T.reshape(-1))  # L = 1: single steps, env-major
    assert not np.asarray(single["starts"]).any()


def pooled(count, mean, var, x):
    """Running statistics (count, mean, var) pooled with the samples ``x`` (axis 0), numpy."""
    n, m, v = len(x), x.mean(0), x.var(0)
    total = count + n
    grand = (count * mean + n * m) / total
    return total, grand, (count * (var + (mean - grand) ** 2) + n * (v + (m - grand) ** 2)) / total


def test_reward_scaling_against_a_numpy_loop():
    rng = np.random.default_rng(6)
    T, N, gamma = 12, 3, 0.9
    r = rng.normal(1.0, 2.0, size=(T, N))
    done = (rng.random((T, N)) < 0.2).astype(np.float64)
    start = rng.normal(size=N)
    stats = {"mean": {"r": jnp.asarray(0.5, jnp.float32)}, "var": {"r": jnp.asarray(2.0, jnp.float32)},
             "count": jnp.asarray(30.0, jnp.float32)}
    scaled, new_stats, running = scale_rewards(*(jnp.asarray(x, jnp.float32) for x in (r, done, start)), stats, gamma)
    ret, seen = start.copy(), []
    for t in range(T):
        for n in range(N):
            ret[n] = gamma * ret[n] + r[t, n]
            seen.append(ret[n])
            if done[t, n]:
                ret[n] = 0.0
    count, mean, var = pooled(30.0, 0.5, 2.0, np.array(seen))
    np.testing.assert_allclose(running, ret, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([float(new_stats["count"]), float(new_stats["mean"]["r"]), float(new_stats["var"]["r"])],
                               [count, mean, var], rtol=1e-5)
    np.testing.assert_allclose(scaled, r / np.sqrt(var + 1e-8), rtol=1e-5)

    # two data-parallel learners (a fake reducer: psum over a vmapped axis) scale by the std of both
    r2 = rng.normal(-2.0, 1.0, size=(T, N))
    both = jnp.asarray(np.stack([r, r2]), jnp.float32)
    psum = lambda tree: jax.lax.psum(tree, "learners")  # noqa: E731
    scaled2, stats2, _ = jax.vmap(lambda x: scale_rewards(x, jnp.zeros((T, N)), jnp.zeros(N), stats, 1.0, psum),
                                  axis_name="learners")(both)
    seen2 = np.concatenate([np.cumsum(r, 0).ravel(), np.cumsum(r2, 0).ravel()])
    _, _, var2 = pooled(30.0, 0.5, 2.0, seen2)
    np.testing.assert_allclose(float(stats2["var"]["r"][0]), var2, rtol=1e-4)
    np.testing.assert_array_equal(stats2["var"]["r"][0], stats2["var"]["r"][1])
    np.testing.assert_allclose(scaled2, np.stack([r, r2]) / np.sqrt(var2), rtol=1e-4)


def test_advantages_against_numpy():
    rng = np.random.default_rng(7)
    T, N, gamma, lam = 5, 2, 0.95, 0.9
    obs, next_obs = rng.normal(2.0, 3.0, size=(T, N, 3)), rng.normal(2.0, 3.0, size=(T, N, 3))
    r = rng.normal(size=(T, N))
    term, trunc = np.zeros((T, N)), np.zeros((T, N))
    term[2, 0] = trunc[3, 1] = 1
    mean, var = np.array([1.0, 2.0, 40.0]), np.array([4.0, 9.0, 0.01])  # the last feature hits the clip
    stats = {"mean": {"o": jnp.asarray(mean, jnp.float32)}, "var": {"o": jnp.asarray(var, jnp.float32)},
             "count": jnp.asarray(10.0, jnp.float32)}
    w = rng.normal(size=3)
    value = lambda critic, o: o["o"] @ critic  # noqa: E731  (a linear critic)
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    got_obs, v, adv, ret = advantages(value, f32(w), stats, {"o": f32(obs)}, {"o": f32(next_obs)}, f32(r), f32(term),
                                      f32(trunc), gamma, lam)
    norm = lambda x: np.clip((x - mean) / np.sqrt(var + 1e-8), -10, 10)  # noqa: E731
    expected_adv, expected_ret = gae_reference(r, norm(obs) @ w, norm(next_obs) @ w, term, trunc, gamma, lam)
    np.testing.assert_allclose(got_obs["o"], norm(obs), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(v, norm(obs) @ w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(adv, expected_adv, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ret, expected_ret, rtol=1e-4, atol=1e-5)
    raw = advantages(value, f32(w), None, {"o": f32(obs)}, {"o": f32(next_obs)}, f32(r), f32(term), f32(trunc), gamma,
                     lam)
    np.testing.assert_allclose(raw[1], obs @ w, rtol=1e-5, atol=1e-5)  # obs_stats None: raw observations


def test_minibatch_epochs_against_a_numpy_loop():
    units, epochs, n_mb = 12, 3, 4
    x = np.arange(units, dtype=np.float32) ** 1.5

    def step(carry, mb):  # order-dependent, so the minibatch order is checked too
        return carry * 0.5 + jnp.sum(mb["x"]), mb["i"]

    key = jax.random.PRNGKey(11)
    carry, seen, next_key = minibatch_epochs(step, jnp.asarray(0.0), {"x": jnp.asarray(x), "i": jnp.arange(units)},
                                             key, epochs, n_mb)
    keys = jax.random.split(key, epochs + 1)
    expected, order = 0.0, []
    for e in range(epochs):
        perm = np.asarray(jax.random.permutation(keys[e + 1], units))
        for b in range(n_mb):
            idx = perm[b * units // n_mb:(b + 1) * units // n_mb]
            expected = expected * 0.5 + x[idx].sum()
            order.append(idx)
    np.testing.assert_allclose(float(carry), expected, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(seen).reshape(-1, units // n_mb), order)
    for e in range(epochs):  # each epoch visits every unit once
        np.testing.assert_array_equal(np.sort(np.asarray(seen[e]).ravel()), np.arange(units))
    np.testing.assert_array_equal(next_key, keys[0])


# -- data-parallel learners: the running statistics are merged over learners -------------

def test_statistics_merged_over_learners_equal_those_of_the_whole_batch():
    """Two learners (a fake reducer: psum over a vmapped axis) each merge their half; both end
    with the statistics of the whole batch, bit-identical to each other."""
    rng = np.random.default_rng(8)
    prior_batch = rng.normal(-1.0, 0.5, size=(30, 3)).astype(np.float32)
    prior = normalizer.update_stats(normalizer.init_stats({"x": (3,)}), {"x": prior_batch})
    halves = rng.normal(100.0, 2.0, size=(2, 40, 3)).astype(np.float32)  # a large mean: no cancellation allowed
    psum = lambda tree: jax.lax.psum(tree, "learners")  # noqa: E731
    merged = jax.vmap(lambda half: normalizer.update_stats(prior, {"x": half}, psum), axis_name="learners")(halves)
    for leaf in jax.tree_util.tree_leaves(merged):
        np.testing.assert_array_equal(leaf[0], leaf[1])
    whole = np.concatenate([prior_batch, halves[0], halves[1]]).astype(np.float64)
    assert float(merged["count"][0]) == pytest.approx(len(whole))
    np.testing.assert_allclose(merged["mean"]["x"][0], whole.mean(0), rtol=1e-6)
    np.testing.assert_allclose(merged["var"]["x"][0], whole.var(0), rtol=1e-4)
    # the same as one learner merging the whole batch at once
    one = normalizer.update_stats(prior, {"x": halves.reshape(80, 3)})
    np.testing.assert_allclose(merged["var"]["x"][0], one["var"]["x"], rtol=1e-4)


class TwinComm:
    """A learners' communicator of 2 whose other learner holds exactly this one's data."""

    def Get_size(self):
        return 2

    def Reduce(self, send, recv, op, root):
        recv[:] = send + send

    def Bcast(self, buf, root):
        pass


def test_ppo_finds_the_learners_sum_in_the_starters_context():
    """Built inside gradients_transformed_by(mean_across(comm)), as the starter does, PPO merges its
    statistics over the learners: two learners with the same rollout count every step twice."""
    assert learner_sum() is None
    single = make_ppo(False, scale_reward=True)
    with gradients_transformed_by(mean_across(TwinComm())):
        assert learner_sum() is not None
        twin = make_ppo(False, scale_reward=True)
    assert single.tree_sum is None and twin.tree_sum is not None
    state, rollout = fake_rollout(single)
    # the same parameters; the twin's optimizer states hold the averaging's (empty) state too
    twin_state = state._replace(actor_opt=twin.actor_tx.init(state.actor),
                                critic_opt=twin.critic_tx.init(state.critic))
    a, _ = single.update(state, rollout)
    b, _ = twin.update(twin_state, rollout)
    for field in ("obs_stats", "return_stats"):
        sa, sb = getattr(a, field), getattr(b, field)
        assert float(sb["count"]) == pytest.approx(2 * float(sa["count"]), rel=1e-6)  # both learners' steps
        for x, y in zip(jax.tree_util.tree_leaves((sa["mean"], sa["var"])),
                        jax.tree_util.tree_leaves((sb["mean"], sb["var"]))):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)  # the same data twice: the same moments
    for x, y in zip(jax.tree_util.tree_leaves(a.actor), jax.tree_util.tree_leaves(b.actor)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)  # the mean of two equal gradients
