"""Log-densities of the tanh-squashed Gaussian against scipy and numerical references."""
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from aquaml.model.distributions import (gaussian_log_prob, squashed_gaussian_log_prob,
                                        squashed_gaussian_sample, tanh_log_det_jacobian)


def test_gaussian_log_prob_matches_scipy():
    rng = np.random.default_rng(0)
    x, mean = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    log_std = rng.uniform(-2, 1, size=(5, 3))
    expected = stats.norm.logpdf(x, mean, np.exp(log_std)).sum(-1)
    np.testing.assert_allclose(gaussian_log_prob(jnp.asarray(x), jnp.asarray(mean), jnp.asarray(log_std)),
                               expected, rtol=1e-5)


def test_squashed_log_prob_is_change_of_variables():
    """log p(a) = log N(atanh a) - log |d tanh/du|, the derivative taken by finite differences."""
    rng = np.random.default_rng(1)
    u = rng.normal(scale=1.5, size=(6, 2))
    mean, log_std = rng.normal(size=(6, 2)), rng.uniform(-1, 0.5, size=(6, 2))
    h = 1e-6
    dtanh = (np.tanh(u + h) - np.tanh(u - h)) / (2 * h)
    expected = stats.norm.logpdf(u, mean, np.exp(log_std)).sum(-1) - np.log(dtanh).sum(-1)
    got = squashed_gaussian_log_prob(jnp.asarray(u, jnp.float32), jnp.asarray(mean, jnp.float32),
                                     jnp.asarray(log_std, jnp.float32))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_squashed_density_integrates_to_one():
    """The density over a in (-1, 1) integrates to 1 (1-D, trapezoid rule on a fine grid)."""
    a = np.linspace(-1 + 1e-7, 1 - 1e-7, 400001)
    u = np.arctanh(a)[:, None]
    logp = squashed_gaussian_log_prob(jnp.asarray(u, jnp.float32), jnp.full_like(u, 0.3), jnp.full_like(u, -0.2))
    assert abs(np.trapezoid(np.exp(np.asarray(logp)), a) - 1.0) < 1e-3


def test_tanh_correction_is_stable_for_saturated_samples():
    u = jnp.array([[30.0], [-30.0]], jnp.float32)
    value = tanh_log_det_jacobian(u)
    assert np.all(np.isfinite(value))
    np.testing.assert_allclose(value, 2 * (np.log(2) - 30 - np.log1p(np.exp(-60))), rtol=1e-5)


def test_sample_log_prob_agrees_with_density_of_returned_action():
    key = jax.random.PRNGKey(3)
    mean = jnp.array([[0.2, -0.5]] * 4)
    log_std = jnp.array([[-0.3, 0.1]] * 4)
    action, logp = squashed_gaussian_sample(key, mean, log_std)
    assert np.all(np.abs(np.asarray(action)) < 1)
    u = np.arctanh(np.asarray(action, np.float64))
    expected = stats.norm.logpdf(u, np.asarray(mean), np.exp(np.asarray(log_std))).sum(-1) \
        - np.log(1 - np.asarray(action, np.float64) ** 2).sum(-1)
    np.testing.assert_allclose(logp, expected, rtol=1e-3, atol=1e-3)


def test_log_prob_depends_on_policy_parameters():
    """The seed's bug: log pi did not depend on the actor. Here its gradient is non-zero."""
    key = jax.random.PRNGKey(0)

    def f(mean, log_std):
        return squashed_gaussian_sample(key, mean, log_std)[1].sum()

    g_mean, g_std = jax.grad(f, argnums=(0, 1))(jnp.array([[0.4]]), jnp.array([[-0.7]]))
    assert float(jnp.abs(g_mean).sum()) > 0 and float(jnp.abs(g_std).sum()) > 0


def test_unrolled_threefry_gives_jax_reference_bits():
    """The faster CPU lowering of acting programs must not change a single random bit."""
    import jax

    from aquaml.model.jax_setup import acting_jit, use_unrolled_threefry

    assert use_unrolled_threefry()
    key = jax.random.PRNGKey(0)
    assert np.asarray(jax.random.key_data(jax.random.split(key, 3))).tolist() == [
        [1797259609, 2579123966], [928981903, 3453687069], [4146024105, 2718843009]]
    expected = [4070199207, 4202968722, 1427181096, 2012915765]
    assert np.asarray(jax.random.bits(key, (4,))).tolist() == expected
    rolled = jax.jit(lambda k: jax.random.bits(k, (4,)))
    unrolled = acting_jit(lambda k: jax.random.bits(k, (4,)))
    assert np.asarray(rolled(key)).tolist() == expected == np.asarray(unrolled(key)).tolist()
    # the two programs really differ: the acting one has no loop
    assert "while" in rolled.lower(key).as_text() and "while" not in unrolled.jitted.lower(key).as_text()
