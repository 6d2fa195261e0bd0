"""Sequence training (recurrent form 2): state resets, burn-in, masks."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from aquaml.model import build_model
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
    return build_model(Accumulator, "actor", {"x": (1,)}, actor=True)


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
