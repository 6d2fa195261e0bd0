"""A variational autoencoder on chosen dataset fields (Kingma and Welling 2014).

The fields (observation names, or ``'action'``) are standardised with the training data's
mean and std, flattened and concatenated into ``x``. An ``'encoder'`` model reads the fields by
name and returns ``2 * latent_dim`` numbers: the mean and log-std of ``q(z | x)``. A
``'decoder'`` model reads ``'z'`` and returns the mean of ``p(x | z)``, a Gaussian with a
learned log-std per dimension. Training maximises

    ``ELBO = E_q[log p(x | z)] - beta * KL(q(z | x) || N(0, I))``

(nats per sample, one reparameterised draw), so the encoder gives representations for
pretraining and the decoder samples new data (:meth:`VAE.sample`).
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aquaml.algorithm.feeders import Feeder
from aquaml.algorithm.builtin_parameters import VAEParameters
from aquaml.model.contract import ModelSpec

_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl(mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """``KL(N(mean, exp(log_std)^2) || N(0, I))`` summed over the last axis."""
    return jnp.sum(0.5 * (jnp.exp(2 * log_std) + mean ** 2 - 1.0) - log_std, axis=-1)


def gaussian_log_likelihood(x: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """``log N(x; mean, exp(log_std)^2)`` summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z ** 2 - log_std - 0.5 * _LOG_2PI, axis=-1)


class VAEState(NamedTuple):
    encoder: Any
    decoder: Any
    log_sigma: jax.Array  #: the decoder's log-std per dimension
    opt: Any
    stats: dict  #: fixed standardisation of the fields (mean, std)
    key: jax.Array


class FieldFeeder(Feeder):
    """Uniform batches of dataset rows (``dataset``: field name -> one row per step) for a
    generative model's scanned update; no environment at all."""

    needs_env = False
    steps_envs = False
    uses_dataset = "required"
    requires = ("observe_dataset",)
    requires_instance = ("evaluate",)
    reads_parameters = ("dataset", "batch_size", "update_times")

    def __init__(self, algo, params, *, fields=None, dataset=None, expert=None) -> None:
        super().__init__(algo, params)
        self.data = dict(dataset)
        algo.observe_dataset(self.data)

    def prepare(self, batch, rng: np.random.Generator):
        p = self.params
        idx = rng.integers(0, len(next(iter(self.data.values()))), size=(p.update_times, p.batch_size))
        return {k: v[idx] for k, v in self.data.items()}


class VAE:
    """Roles ``encoder`` (reads ``fields``) and ``decoder`` (reads ``'z'``)."""

    name: ClassVar[str] = "vae"
    Parameters: ClassVar[type] = VAEParameters
    feeder: ClassVar[type] = FieldFeeder
    roles: ClassVar[tuple[str, ...]] = ("encoder", "decoder")

    def __init__(self, params: VAEParameters, models: Mapping[str, ModelSpec], shapes: Mapping[str, tuple]) -> None:
        self.params, self.models = params, dict(models)
        self.shapes = {k: tuple(shapes[k]) for k in params.fields}
        self.sizes = {k: math.prod(s) for k, s in self.shapes.items()}
        self.dim = sum(self.sizes.values())
        self.tx = optax.adam(models["encoder"].learning_rate)  # decoder and log-std share it
        self.update = jax.jit(self._update_many)
        self.evaluate = jax.jit(self._evaluate)
        self.stats = {"mean": jnp.zeros(self.dim), "std": jnp.ones(self.dim)}

    # -- data layout ------------------------------------------------------------------------
    def flat(self, fields: Mapping[str, Any]) -> jax.Array:
        """Named fields -> ``(n, dim)``, in the order of ``params.fields``."""
        n = fields[self.params.fields[0]].shape[0]
        return jnp.concatenate([jnp.reshape(fields[k], (n, -1)).astype(jnp.float32) for k in self.params.fields], -1)

    def unflat(self, x: jax.Array) -> dict:
        out, i = {}, 0
        for k in self.params.fields:
            out[k] = x[:, i:i + self.sizes[k]].reshape(x.shape[0], *self.shapes[k])
            i += self.sizes[k]
        return out

    def observe_dataset(self, fields: Mapping[str, np.ndarray]) -> None:
        """Fixed standardisation from the training rows (std floored at 1e-3)."""
        x = np.asarray(self.flat({k: jnp.asarray(v) for k, v in fields.items()}), np.float64)
        self.stats = {"mean": jnp.asarray(x.mean(0), jnp.float32), "std": jnp.asarray(x.std(0) + 1e-3, jnp.float32)}

    # -- state --------------------------------------------------------------------------------
    def init_state(self, key: jax.Array) -> VAEState:
        enc, dec = self.models["encoder"].fn.init_params(), self.models["decoder"].fn.init_params()
        log_sigma = jnp.zeros(self.dim, jnp.float32)
        return VAEState(enc, dec, log_sigma, self.tx.init((enc, dec, log_sigma)), self.stats, key)

    def model_params(self, state: VAEState) -> dict:
        return {"encoder": state.encoder, "decoder": state.decoder}

    # -- the model ----------------------------------------------------------------------------
    def encode(self, state: VAEState, fields: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        """The mean and log-std of ``q(z | x)`` for named fields (unstandardised)."""
        x = (self.flat(fields) - state.stats["mean"]) / state.stats["std"]
        return self._encode(state.encoder, x)

    def _encode(self, enc, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = self.models["encoder"].fn.apply(enc, self.unflat(x)).reshape(x.shape[0], -1)
        L = self.params.latent_dim
        return out[:, :L], jnp.clip(out[:, L:], -10.0, 5.0)

    def _decode(self, dec, z: jax.Array) -> jax.Array:
        return self.models["decoder"].fn.apply(dec, {"z": z}).reshape(z.shape[0], self.dim)

    def sample(self, state: VAEState, key: jax.Array, n: int) -> dict:
        """``n`` new samples of the fields (decoder means at ``z ~ N(0, I)``), in data units."""
        z = jax.random.normal(key, (n, self.params.latent_dim))
        return self.unflat(self._decode(state.decoder, z) * state.stats["std"] + state.stats["mean"])

    def _terms(self, enc, dec, log_sigma, x, key):
        """Per sample: reconstruction log-likelihood, KL, and squared error (standardised units)."""
        mean, log_std = self._encode(enc, x)
        z = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        recon = self._decode(dec, z)
        log_lik = gaussian_log_likelihood(x, recon, jnp.broadcast_to(log_sigma, x.shape))
        mse = jnp.mean((self._decode(dec, mean) - x) ** 2, axis=-1)
        return log_lik, gaussian_kl(mean, log_std), mse

    def _update_one(self, state: VAEState, batch):
        key, sub = jax.random.split(state.key)
        x = (self.flat(batch) - state.stats["mean"]) / state.stats["std"]

        def loss(params):
            log_lik, kl, mse = self._terms(*params, x, sub)
            return -jnp.mean(log_lik - self.params.beta * kl), (jnp.mean(log_lik - kl), jnp.mean(kl), jnp.mean(mse))

        params = (state.encoder, state.decoder, state.log_sigma)
        (_, (elbo, kl, mse)), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt = self.tx.update(grads, state.opt, params)
        enc, dec, log_sigma = optax.apply_updates(params, updates)
        return VAEState(enc, dec, log_sigma, opt, state.stats, key), {"elbo": elbo, "kl": kl, "recon_mse": mse}

    def _update_many(self, state: VAEState, batches):
        state, metrics = jax.lax.scan(self._update_one, state, batches)
        return state, jax.tree_util.tree_map(jnp.mean, metrics)

    def _evaluate(self, state: VAEState, fields, key):
        """Mean ELBO (nats) and reconstruction error relative to the data's variance."""
        x = (self.flat(fields) - state.stats["mean"]) / state.stats["std"]
        log_lik, kl, mse = self._terms(state.encoder, state.decoder, state.log_sigma, x, key)
        var = jnp.mean(jnp.var(x, axis=0))
        return jnp.mean(log_lik - kl), jnp.mean(mse) / var
