"""The VAE on dataset fields: ELBO terms against scipy, held-out ELBO and reconstruction, sampling,
user encoders/decoders, exact resume, the CLI and bad input."""
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from scipy import stats

from aquaml.algorithm import VAE, VAEParameters
from aquaml.algorithm.vae import gaussian_kl, gaussian_log_likelihood
from aquaml.data import DatasetError, save_data
from aquaml.starter.generative import GenerativeTaskStarter
from helpers import pendulum_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return str(save_data(tmp_path_factory.mktemp("vae") / "pendulum.npz", pendulum_dataset(episodes=10, with_pos=True)))


def small(data, **kw):
    base = dict(dataset=data, fields=("obs",), latent_dim=2, n_epochs=6, update_times=1000, batch_size=128,
                display_interval=3, hidden_sizes=(64, 64))
    return VAEParameters(**{**base, **kw})


def test_elbo_terms_match_scipy():
    rng = np.random.default_rng(0)
    mean, log_std, x = rng.normal(size=(3, 5, 4)).astype(np.float32) * 0.5
    np.testing.assert_allclose(gaussian_log_likelihood(jnp.asarray(x), jnp.asarray(mean), jnp.asarray(log_std)),
                               stats.norm.logpdf(x, mean, np.exp(log_std)).sum(-1), rtol=1e-5)
    var = np.exp(2 * log_std)
    want = 0.5 * (var + mean ** 2 - 1 - np.log(var)).sum(-1)  # KL(N(m, s^2) || N(0, 1)) in closed form
    np.testing.assert_allclose(gaussian_kl(jnp.asarray(mean), jnp.asarray(log_std)), want, rtol=1e-5)


def test_vae_improves_the_heldout_elbo_and_reconstructs(data, tmp_path):
    starter = GenerativeTaskStarter(VAE, small(data), run_root=tmp_path, progress=False)
    before, _ = starter.algo.evaluate(starter.state, {"obs": jnp.asarray(starter.heldout["obs"])},
                                      jax.random.PRNGKey(1))
    summary = starter.run()
    print(f"held-out ELBO {float(before):.2f} -> {summary.final_heldout_elbo:.2f}, recon "
          f"{summary.final_heldout_recon_error:.4f}")
    assert summary.grad_steps == 6000 and summary.final_heldout_elbo > float(before) + 1.0
    assert summary.final_heldout_recon_error < 0.1  # of the data variance
    samples = starter.algo.sample(starter.state, jax.random.PRNGKey(0), 2000)["obs"]
    obs = starter.dataset.observations["obs"]
    assert samples.shape == (2000, 3)
    # cos^2 + sin^2 = 1 in the data: decoded samples stay near that circle
    radius = np.sqrt(np.asarray(samples[:, 0]) ** 2 + np.asarray(samples[:, 1]) ** 2)
    assert abs(np.median(radius) - 1.0) < 0.15
    assert np.percentile(np.abs(np.asarray(samples[:, 2])), 99) <= 1.2 * np.abs(obs[:, 2]).max()
    mean, _ = starter.algo.encode(starter.state, {"obs": jnp.asarray(obs[:5])})
    assert mean.shape == (5, 2)
    header = (summary.run_dir / "progress.csv").read_text().splitlines()[0]
    for column in ("elbo", "kl", "recon_mse", "heldout_elbo", "heldout_recon_error"):
        assert column in header
    assert list(summary.run_dir.glob("checkpoints/*/models/decoder.weights.h5"))


def test_vae_resumes_exactly(data, tmp_path):
    def params(epochs):
        return small(data, n_epochs=epochs, update_times=50, display_interval=1)

    straight = GenerativeTaskStarter(VAE, params(4), run_root=tmp_path / "a", progress=False)
    full = straight.run()
    run_dir = GenerativeTaskStarter(VAE, params(2), run_root=tmp_path / "b", progress=False).run().run_dir
    resumed = GenerativeTaskStarter(VAE, params(4), run_root=tmp_path / "b", progress=False, resume=run_dir)
    assert resumed.run().eval_history == full.eval_history
    for a, b in zip(jax.tree_util.tree_leaves(straight.state), jax.tree_util.tree_leaves(resumed.state)):
        np.testing.assert_array_equal(a, b)


def test_user_encoder_and_decoder(data, tmp_path):
    class Encoder(keras.Model):
        def __init__(self):
            super().__init__()
            self.d, self.out = keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(4)
            self.input_name, self.learning_rate, self.optimizer = ("pos", "action"), 1e-3, "Adam"

        def call(self, pos, action):
            return self.out(self.d(keras.ops.concatenate([pos, action], axis=-1)))

        def reset(self):
            pass

    class Decoder(keras.Model):
        def __init__(self):
            super().__init__()
            self.d, self.out = keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(3)
            self.input_name, self.learning_rate, self.optimizer = ("z",), 1e-3, "Adam"

        def call(self, z):
            return self.out(self.d(z))

        def reset(self):
            pass

    starter = GenerativeTaskStarter(VAE, small(data, fields=("pos", "action"), n_epochs=2, update_times=50),
                                    {"encoder": Encoder, "decoder": Decoder}, run_root=tmp_path, progress=False)
    assert np.isfinite(starter.run().final_heldout_elbo)
    sample = starter.algo.sample(starter.state, jax.random.PRNGKey(0), 3)
    assert sample["pos"].shape == (3, 2) and sample["action"].shape == (3, 1)


def test_cli_and_bad_input(data, tmp_path, capsys):
    from aquaml.cli import main

    assert main(["train", "vae", "Pendulum-v1", "--set", f"dataset={data}", "--set", "fields=obs,pos",
                 "--steps", "100", "--set", "update_times=50", "--set", "display_interval=1",
                 "--run-root", str(tmp_path)]) == 0
    assert "final held-out ELBO:" in capsys.readouterr().out
    with pytest.raises(DatasetError, match="lacks field 'vel'; it holds obs, pos and action"):
        GenerativeTaskStarter(VAE, small(data, fields=("vel",)), progress=False)
    with pytest.raises(ValueError, match="vae learns from a dataset: set dataset=PATH"):
        GenerativeTaskStarter(VAE, small(""), progress=False)
    one = save_data(tmp_path / "one.npz", pendulum_dataset(episodes=1))
    with pytest.raises(DatasetError, match="holds 1 episode; the held-out split needs two"):
        GenerativeTaskStarter(VAE, small(str(one)), progress=False)
    with pytest.raises(ValueError, match="fields is empty"):
        VAEParameters(fields=())
    with pytest.raises(TypeError, match="decoder model .* expected \\(3,\\)"):
        class Wrong(keras.Model):
            def __init__(self):
                super().__init__()
                self.out = keras.layers.Dense(5)
                self.input_name, self.learning_rate, self.optimizer = ("z",), 1e-3, "Adam"

            def call(self, z):
                return self.out(z)

            def reset(self):
                pass
        GenerativeTaskStarter(VAE, small(data), {"decoder": Wrong}, progress=False)
