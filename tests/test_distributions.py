"""Log-densities of the tanh-squashed Gaussian against scipy and numerical references."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from aquaml.model.distributions import (gaussian_log_prob, squashed_gaussian_log_prob,
                                        squashed_gaussian_sample, tanh_log_det_jacobian)


def test_gaussian_log_prob_matches_scipy():
    rng = np.random.default_rng(0)
    x, mean = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    log_std = rng.uniform(-2, 1, size=(5, 3))
    expected = stats.norm.logpdf(x, mean, np.exp(log_std)).sum(-1)
    np.testing.assert_allclose(gaussian_log_prob(jnp.asarray(x), jnp.asarray(mean), jnp.asarray(log_std)),
                               expected, rtol=1e-5)


@pytest.mark.parametrize("action_dim", [1, 6])
def test_squashed_log_prob_is_change_of_variables(action_dim):
    """log p(a) = log N(u; mean, diag std^2) - log |det da/du|, with a = tanh(u): the joint Gaussian
    from scipy, the Jacobian matrix by finite differences and its determinant by numpy."""
    rng = np.random.default_rng(action_dim)
    u = rng.normal(scale=1.5, size=(6, action_dim))
    mean, log_std = rng.normal(size=(6, action_dim)), rng.uniform(-1, 0.5, size=(6, action_dim))
    h = 1e-6
    expected = []
    for i in range(6):
        jacobian = np.stack([(np.tanh(u[i] + h * e) - np.tanh(u[i] - h * e)) / (2 * h) for e in np.eye(action_dim)], 1)
        gaussian = stats.multivariate_normal(mean[i], np.diag(np.exp(2 * log_std[i])))
        expected.append(gaussian.logpdf(u[i]) - np.linalg.slogdet(jacobian)[1])
    got = squashed_gaussian_log_prob(jnp.asarray(u, jnp.float32), jnp.asarray(mean, jnp.float32),
                                     jnp.asarray(log_std, jnp.float32))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_squashed_density_integrates_to_one():
    """The density over a in (-1, 1) integrates to 1 (1-D, trapezoid rule on a fine grid)."""
    a = np.linspace(-1 + 1e-7, 1 - 1e-7, 400001)
    u = np.arctanh(a)[:, None]
    logp = squashed_gaussian_log_prob(jnp.asarray(u, jnp.float32), jnp.full_like(u, 0.3), jnp.full_like(u, -0.2))
    assert abs(integrate.trapezoid(np.exp(np.asarray(logp)), a) - 1.0) < 1e-3  # np.trapezoid needs numpy 2


def test_tanh_correction_is_stable_for_saturated_samples():
    u = jnp.array([[30.0], [-30.0]], jnp.float32)
    value = tanh_log_det_jacobian(u)
    assert np.all(np.isfinite(value))
    np.testing.assert_allclose(value, 2 * (np.log(2) - 30 - np.log1p(np.exp(-60))), rtol=1e-5)


@pytest.mark.parametrize("action_dim", [1, 6])
def test_sample_log_prob_agrees_with_density_of_returned_action(action_dim):
    rng = np.random.default_rng(action_dim)
    mean = jnp.asarray(np.tile(rng.normal(scale=0.5, size=action_dim), (4, 1)), jnp.float32)
    log_std = jnp.asarray(np.tile(rng.uniform(-0.5, 0.2, size=action_dim), (4, 1)), jnp.float32)
    action, logp = squashed_gaussian_sample(jax.random.PRNGKey(3), mean, log_std)
    assert action.shape == (4, action_dim) and np.all(np.abs(np.asarray(action)) < 1)
    a = np.asarray(action, np.float64)
    # the density of a = tanh(u): the Gaussian's at u = atanh(a), times |d atanh(a) / da| = 1 / (1 - a^2) per dimension
    expected = stats.norm.logpdf(np.arctanh(a), np.asarray(mean), np.exp(np.asarray(log_std))).sum(-1) \
        - np.log(1 - a ** 2).sum(-1)
    np.testing.assert_allclose(logp, expected, rtol=1e-3, atol=1e-3)


def test_log_prob_depends_on_policy_parameters():
    """The seed's bug: log pi did not depend on the actor. Here its gradient is non-zero."""
    key = jax.random.PRNGKey(0)

    def f(mean, log_std):
        return squashed_gaussian_sample(key, mean, log_std)[1].sum()

    g_mean, g_std = jax.grad(f, argnums=(0, 1))(jnp.array([[0.4]]), jnp.array([[-0.7]]))
    assert float(jnp.abs(g_mean).sum()) > 0 and float(jnp.abs(g_std).sum()) > 0


def test_unrolled_threefry_gives_the_rolled_bits():
    """The faster CPU lowering of acting programs must not change a single random bit: it draws what
    JAX's own lowering draws for the same key (whatever JAX's generator is), a key decides the draw,
    and the draws look uniform."""
    from aquaml.model.jax_setup import acting_jit, use_unrolled_threefry

    assert use_unrolled_threefry()

    def draws(k):
        return jax.random.bits(k, (4096,)), jax.random.key_data(jax.random.split(k, 3)), jax.random.normal(k, (4, 6))

    def acting_draws(k):  # a function of its own: JAX caches compiled programs by function
        return draws(k)

    rolled, unrolled = jax.jit(draws), acting_jit(acting_draws)
    for seed in (0, 1, 12345):
        key = jax.random.PRNGKey(seed)
        for x, y, z in zip(unrolled(key), rolled(key), draws(key)):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(x, z)
    # the two programs really differ: the acting one has no loop
    key = jax.random.PRNGKey(0)
    assert "while" in rolled.lower(key).as_text() and "while" not in unrolled.jitted.lower(key).as_text()

    bits = [np.asarray(unrolled(jax.random.PRNGKey(seed))[0]) for seed in (0, 1)]
    assert not np.array_equal(*bits)  # another key, other bits
    # each of the 32 bit positions is set in about half the draws (4096 draws: std 0.008)
    share = ((bits[0][:, None] >> np.arange(32, dtype=np.uint32)) & 1).mean(0)
    assert np.all(np.abs(share - 0.5) < 0.05)
    assert stats.kstest(bits[0] / 2.0 ** 32, "uniform").pvalue > 1e-3
