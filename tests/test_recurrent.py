"""Sequence training (recurrent form 2): state resets, burn-in, masks."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from aquaml.model import build_actor, build_critic
from aquaml.model.recurrent import episode_starts, unroll


class Accumulator(keras.Model):
    """h' = w * h + x; outputs (h', h'): a recurrent model with one weight."""

    def __init__(self):
        super().__init__()
        self.w = self.add_weight(shape=(), initializer="ones", name="w")
        self.input_name = ("x", "h")
        self.output_info = {"action": (1,), "h": (1,)}
        self.learning_rate, self.optimizer = 1e-3, "Adam"

    def call(self, x, h):
        h2 = self.w * h + x
        return h2, h2

    def reset(self):
        pass


@pytest.fixture(scope="module")
def spec():
    return build_actor(Accumulator, "actor", {"x": (1,)})


def test_episode_starts_flags_the_step_after_an_end():
    term = jnp.array([[0, 0, 1, 0, 0]], jnp.float32)
    trunc = jnp.array([[0, 0, 0, 1, 0]], jnp.float32)
    np.testing.assert_array_equal(episode_starts(term, trunc), [[False, False, False, True, True]])


def test_state_starts_from_stored_value_and_resets_at_episode_boundaries(spec):
    x = jnp.ones((2, 6, 1))
    h = jnp.zeros((2, 6, 1)).at[:, 0].set(jnp.array([[10.0], [0.0]]))
    starts = jnp.array([[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]], bool)
    out = unroll(spec, spec.fn.init_params(), {"x": x, "h": h}, starts)
    np.testing.assert_allclose(out["h"][0, :, 0], [11, 12, 13, 1, 2, 3])  # nothing carried across the reset
    np.testing.assert_allclose(out["h"][1, :, 0], [1, 2, 3, 4, 5, 6])


def test_stored_states_after_the_first_step_are_ignored(spec):
    x = jnp.ones((1, 4, 1))
    starts = jnp.zeros((1, 4), bool)
    a = unroll(spec, spec.fn.init_params(), {"x": x, "h": jnp.zeros((1, 4, 1))}, starts)
    b = unroll(spec, spec.fn.init_params(), {"x": x, "h": jnp.full((1, 4, 1), 99.0).at[:, 0].set(0)}, starts)
    np.testing.assert_array_equal(a["h"], b["h"])


def test_burn_in_steps_carry_no_gradient(spec):
    x = jnp.arange(1.0, 7.0).reshape(1, 6, 1)
    h = jnp.zeros((1, 6, 1))
    starts = jnp.zeros((1, 6), bool)
    w = spec.fn.init_params()

    def loss(params, part):
        out = unroll(spec, params, {"x": x, "h": h}, starts, burn_in=3)["h"]
        return jnp.sum(out[:, :3] if part == "burn" else out[:, 3:])

    g_burn = jax.grad(loss)(w, "burn")
    assert float(g_burn[0]) == 0.0
    # the tail's gradient equals that of an unroll that starts from the warmed-up state as a constant
    warm = unroll(spec, w, {"x": x, "h": h}, starts)["h"][:, 2]

    def tail_only(params):
        h_tail = jnp.zeros((1, 3, 1)).at[:, 0].set(warm)
        return jnp.sum(unroll(spec, params, {"x": x[:, 3:], "h": h_tail}, starts[:, 3:])["h"])

    np.testing.assert_allclose(jax.grad(loss)(w, "tail")[0], jax.grad(tail_only)(w)[0], rtol=1e-6)
    assert float(jax.grad(loss)(w, "tail")[0]) != 0.0


def test_sample_sequences_follow_one_env_and_mask_past_the_newest():
    from aquaml.data import ReplayBuffer

    buf = ReplayBuffer(12, {"t": ((), np.int64), "env": ((), np.int64)})
    T, N = 5, 2  # 5 vector steps of 2 envs, inserted step-major
    buf.add({"t": np.repeat(np.arange(T), N), "env": np.tile(np.arange(N), T)})
    seq = buf.sample_sequences(np.random.default_rng(0), 64, 3, stride=N)
    for t, env, mask in zip(seq["t"], seq["env"], seq["mask"]):
        assert len(set(env[mask])) == 1  # one environment per window
        valid = t[mask]
        np.testing.assert_array_equal(valid, np.arange(t[0], t[0] + len(valid)))  # consecutive steps
        assert len(valid) == min(3, T - t[0])  # padded exactly past the newest step


def _sequence_sac(burn_in=0):
    from aquaml.algorithm import SAC, SACParameters
    from helpers import TinyQ

    class Rec(keras.Model):
        def __init__(self):
            super().__init__()
            self.cell = keras.layers.Dense(4, activation="tanh")
            self.mu = keras.layers.Dense(1)
            self.input_name = ("obs", "h")
            self.output_info = {"action": (1,), "h": (4,)}
            self.learning_rate, self.optimizer = 1e-3, "Adam"

        def call(self, obs, h):
            h2 = self.cell(keras.ops.concatenate([obs, h], axis=-1))
            return self.mu(h2), h2

        def reset(self):
            pass

    actor = build_actor(Rec, "actor", {"obs": (3,)})
    critic_in = {"obs": (3,), "h": (4,), "action": (1,)}
    models = {"actor": actor, "qf1": build_critic(TinyQ, "qf1", critic_in),
              "qf2": build_critic(TinyQ, "qf2", critic_in)}
    return SAC(SACParameters(batch_size=8, sequence_length=4, burn_in=burn_in), models)


def _sequence_batch(rng, mask):
    B, L = mask.shape
    return {"obs": {"obs": rng.normal(size=(1, B, L, 3)).astype(np.float32),
                    "h": rng.normal(size=(1, B, L, 4)).astype(np.float32)},
            "next_obs": {"obs": rng.normal(size=(1, B, L, 3)).astype(np.float32),
                         "h": rng.normal(size=(1, B, L, 4)).astype(np.float32)},
            "action": rng.uniform(-1, 1, size=(1, B, L, 1)).astype(np.float32),
            "reward": rng.normal(size=(1, B, L)).astype(np.float32),
            "terminated": np.zeros((1, B, L), np.float32), "truncated": np.zeros((1, B, L), np.float32),
            "mask": mask[None].astype(np.float32)}


@pytest.mark.parametrize("burn_in", [0, 1])
def test_padded_steps_carry_no_loss(burn_in):
    """Changing everything in padded steps changes nothing in the update."""
    sac = _sequence_sac(burn_in)
    state = sac.init_state(jax.random.PRNGKey(0))
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    a = _sequence_batch(np.random.default_rng(1), mask)
    b = _sequence_batch(np.random.default_rng(2), mask)
    for path in (("obs", "obs"), ("obs", "h"), ("next_obs", "obs"), ("next_obs", "h")):  # same valid steps
        b[path[0]][path[1]][0][mask == 1] = a[path[0]][path[1]][0][mask == 1]
    for k in ("action", "reward"):
        b[k][0][mask == 1] = a[k][0][mask == 1]
    b["obs"]["h"][0][:, 0] = a["obs"]["h"][0][:, 0]
    new_a, metrics_a = sac.update(state, a)
    new_b, metrics_b = sac.update(state, b)
    for x, y in zip(jax.tree_util.tree_leaves(new_a), jax.tree_util.tree_leaves(new_b)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    # and the valid steps do matter
    c = _sequence_batch(np.random.default_rng(3), mask)
    new_c, _ = sac.update(state, c)
    assert not np.allclose(new_c.actor["net"][0], new_a.actor["net"][0])


class StackedGRU(keras.Model):
    """Two stacked GRUs in step form: each layer's state is its own named input and output."""

    def __init__(self):
        super().__init__()
        self.gru1 = keras.layers.GRU(4, return_state=True)
        self.gru2 = keras.layers.GRU(3, return_state=True)
        self.mu = keras.layers.Dense(1)
        self.input_name = ("x", "g1", "g2")
        self.output_info = {"action": (1,), "g1": (4,), "g2": (3,)}
        self.learning_rate, self.optimizer = 1e-3, "Adam"

    def call(self, x, g1, g2):
        out1, g1 = self.gru1(keras.ops.expand_dims(x, 1), initial_state=g1)
        out2, g2 = self.gru2(keras.ops.expand_dims(out1, 1), initial_state=g2)
        return self.mu(out2), g1, g2

    def reset(self):
        pass


def test_stacked_gru_unrolls_like_stepping_it_by_hand():
    spec = build_actor(StackedGRU, "actor", {"x": (2,)})
    assert spec.state_outputs == {"g1": (4,), "g2": (3,)}
    params = spec.fn.init_params()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 2)).astype(np.float32)
    starts = np.zeros((3, 5), bool)
    starts[1, 2] = True
    zeros = {"g1": np.zeros((3, 5, 4), np.float32), "g2": np.zeros((3, 5, 3), np.float32)}
    out = unroll(spec, params, {"x": x, **zeros}, jnp.asarray(starts))
    state = {"g1": np.zeros((3, 4), np.float32), "g2": np.zeros((3, 3), np.float32)}
    for t in range(5):
        state = {k: np.where(starts[:, t:t + 1], 0.0, v) for k, v in state.items()}
        action, g1, g2 = spec.fn.apply(params, {"x": x[:, t], **state})
        np.testing.assert_allclose(out["action"][:, t], action, rtol=1e-5, atol=1e-6)
        state = {"g1": np.asarray(g1), "g2": np.asarray(g2)}
    np.testing.assert_allclose(out["g2"][:, -1], state["g2"], rtol=1e-5, atol=1e-6)


# -- PPO's burn-in: windows preceded by the same env's previous steps ----------------------

def _windows_with_burn_in(T, N, L, B, seed=0, acting_w=None):
    """An Accumulator rollout laid out as PPO lays it out: windows, and each window's burn-in prefix.

    Stored states are random (as an older network might have left them) or, with ``acting_w``,
    those of the accumulator with that weight that acted (zero at each episode start).
    """
    from aquaml.algorithm.on_policy import burn_in_prefixes, rollout_windows, windows

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, N, 1)).astype(np.float32)
    h = rng.normal(size=(T, N, 1)).astype(np.float32)
    term = (rng.random((T, N)) < 0.15).astype(np.float32)
    trunc = (rng.random((T, N)) < 0.1).astype(np.float32)
    if acting_w is not None:
        state = h[0]  # carried over from the previous rollout
        for t in range(T):
            h[t] = state
            state = np.where(np.maximum(term[t], trunc[t])[:, None] > 0, 0.0, acting_w * state + x[t])
    data = rollout_windows({"x": jnp.asarray(x), "h": jnp.asarray(h)}, jnp.asarray(term), jnp.asarray(trunc), L)
    plain_starts = data.pop("starts")
    prefix, starts = burn_in_prefixes(data, windows(jnp.asarray(term), L), windows(jnp.asarray(trunc), L),
                                      plain_starts, T // L, B)
    return (x, h, np.maximum(term, trunc)), data, plain_starts, prefix, starts


def _burn_in_reference(x, h, done, L, B, w):
    """Accumulator (h' = w h + x) stepped by hand per window: a window of env n starting at
    s > 0 restarts from the state stored at s - B and steps through s - B .. s - 1 (outputs
    dropped); the env's first window starts from its stored state. Returns the windows'
    outputs and the state entering each window's first step (after any reset)."""
    T, N, _ = x.shape
    out, entering = [], []
    for n in range(N):
        for s in range(0, T, L):
            first = s - B if s > 0 else s
            state, row = h[first, n, 0], []
            for t in range(first, s + L):
                if t > first and done[t - 1, n]:
                    state = 0.0  # a new episode starts at t
                if t == s:
                    entering.append(state)
                state = w * state + x[t, n, 0]
                if t >= s:
                    row.append(state)
            out.append(row)
    return np.array(out), np.array(entering)


@pytest.mark.parametrize("L, B", [(3, 1), (3, 3), (4, 2)])
def test_ppo_burn_in_unrolls_the_preceding_steps_with_the_current_network(spec, L, B):
    from aquaml.algorithm.on_policy import unroll_windows

    T, N = 12, 3
    (x, h, done), data, plain_starts, prefix, starts = _windows_with_burn_in(T, N, L, B)
    params = [jnp.asarray(0.7)]
    out = unroll_windows(spec, params, data, starts, prefix)["h"][..., 0]
    np.testing.assert_allclose(out, _burn_in_reference(x, h, done, L, B, 0.7)[0], rtol=1e-5, atol=1e-6)
    valid = np.asarray(prefix["valid"])
    assert not valid[::T // L].any() and valid.sum() == N * (T // L - 1)  # only each env's first window lacks one
    # without burn-in each window starts from its stored state
    plain = unroll_windows(spec, params, data, plain_starts)["h"][..., 0]
    np.testing.assert_allclose(plain, _burn_in_reference(x, h, done, L, 0, 0.7)[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(out, plain)


def test_ppo_burn_in_carries_no_gradient(spec):
    """The gradient equals that of unrolling each window from the refreshed state held constant."""
    from aquaml.algorithm.on_policy import unroll_windows

    L, B, w = 4, 2, 0.8
    (x, h, done), data, plain_starts, prefix, starts = _windows_with_burn_in(8, 2, L, B, seed=1)
    _, entering = _burn_in_reference(x, h, done, L, B, w)

    def loss(params):
        return jnp.sum(unroll_windows(spec, params, data, starts, prefix)["h"] ** 2)

    def from_constant_state(params):
        stored = data["h"].at[:, 0].set(jnp.asarray(entering, jnp.float32)[:, None])
        return jnp.sum(unroll(spec, params, {"x": data["x"], "h": stored}, plain_starts)["h"] ** 2)

    g = jax.grad(loss)([jnp.asarray(w)])[0]
    np.testing.assert_allclose(g, jax.grad(from_constant_state)([jnp.asarray(w)])[0], rtol=1e-5)
    assert float(g) != 0.0


class GRUActor(keras.Model):
    """A one-GRU PPO actor in step form."""

    def __init__(self):
        super().__init__()
        self.gru = keras.layers.GRU(5, return_state=True)
        self.mu = keras.layers.Dense(2)
        self.input_name = ("obs", "h")
        self.output_info = {"action": (2,), "h": (5,)}
        self.learning_rate, self.optimizer = 1e-3, "Adam"

    def call(self, obs, h):
        out, h = self.gru(keras.ops.expand_dims(obs, 1), initial_state=h)
        return self.mu(out), h

    def reset(self):
        pass


def _recurrent_ppo_update(burn_in, acting_h, stored_h):
    from aquaml.algorithm import PPO, PPOParameters
    from aquaml.env import ActionSpace
    from aquaml.model import MLPCritic

    T, N, L = 12, 2, 4
    keras.utils.set_random_seed(0)
    actor = build_actor(GRUActor, "actor", {"obs": (3,)})
    critic = build_critic(MLPCritic(("obs",), (8,)), "critic", {"obs": (3,)})
    ppo = PPO(PPOParameters(n_envs=N, rollout_length=T, batch_size=8, n_update_epochs=2, sequence_length=L,
                            burn_in=burn_in), {"actor": actor, "critic": critic}, ActionSpace((2,), None))
    state = ppo.init_state(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(T, N, 3)).astype(np.float32)
    actor_obs = {"obs": obs.reshape(T * N, 3), "h": acting_h.reshape(T * N, 5)}
    actions, extras, _ = ppo.act(ppo.actor_params(state), actor_obs, jax.random.PRNGKey(1))
    batch = {"obs/obs": obs, "obs/h": stored_h, "next_obs/obs": rng.normal(size=(T, N, 3)).astype(np.float32),
             "next_obs/h": rng.normal(size=(T, N, 5)).astype(np.float32),
             "action": np.asarray(actions["action"]).reshape(T, N, 2), "reward": rng.normal(size=(T, N)),
             "terminated": rng.random((T, N)) < 0.1, "truncated": np.zeros((T, N), bool)}
    batch.update({f"extras/{k}": np.asarray(v).reshape(T, N, *np.shape(v)[1:]) for k, v in extras.items()})
    return ppo.update(state, ppo.prepare_rollout(batch))[0]


def test_ppo_burn_in_replaces_the_stored_states_of_later_windows():
    """With burn_in < L, the states stored at the start of an env's later windows are replaced by
    the burnt-in ones: changing them changes nothing; without burn-in it changes the update."""
    rng = np.random.default_rng(1)
    h = rng.normal(size=(12, 2, 5)).astype(np.float32)
    other = h.copy()
    other[[4, 8]] = rng.normal(size=(2, 2, 5))  # the stored states at the starts of windows 1 and 2
    leaves = lambda s: jax.tree_util.tree_leaves((s.actor, s.critic))  # noqa: E731
    for x, y in zip(leaves(_recurrent_ppo_update(2, h, h)), leaves(_recurrent_ppo_update(2, h, other))):
        np.testing.assert_array_equal(x, y)
    plain = [not np.array_equal(x, y) for x, y in zip(leaves(_recurrent_ppo_update(0, h, h)),
                                                      leaves(_recurrent_ppo_update(0, h, other)))]
    assert any(plain)


def test_ppo_burn_in_with_the_acting_network_reproduces_the_stored_states(spec):
    """States stored while acting come from the network that acted, so at the start of an update
    burn-in changes nothing (the first minibatch still sees ratio 1); it refreshes the states
    only as the network moves away from the acting one."""
    from aquaml.algorithm.on_policy import unroll_windows

    L, B, w = 4, 3, 0.7
    _, data, plain_starts, prefix, starts = _windows_with_burn_in(12, 2, L, B, seed=2, acting_w=w)
    acting = [jnp.asarray(w)]
    np.testing.assert_allclose(unroll_windows(spec, acting, data, starts, prefix)["h"],
                               unroll_windows(spec, acting, data, plain_starts)["h"], rtol=1e-6)
    moved = [jnp.asarray(0.9)]
    assert not np.allclose(unroll_windows(spec, moved, data, starts, prefix)["h"],
                           unroll_windows(spec, moved, data, plain_starts)["h"])
