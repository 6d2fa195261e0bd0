"""The parameter dataclasses of the built-in algorithms.

They live apart from the algorithms, in a module that imports no JAX, so that the command line
checks names and values (``aquaml train``'s ``--set``) and lists every key (``aquaml params``)
in a fraction of a second. Each field's ``#:`` comment is its one-line doc (``aquaml params``
shows it). The algorithm modules import their class from here (``aquaml.algorithm.sac.SACParameters``
is the same class).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from aquaml.algorithm.parameters import (OfflineParameters, OffPolicyParameters, OnPolicyParameters, Parameters,
                                         SequenceParameters, check_positive)


@dataclass
class SACParameters(SequenceParameters, OffPolicyParameters):
    """SAC hyperparameters; the seed's names (``SAC2_parameter``) are accepted as they are.

    With ``batch_trajectory`` the windows are as long as an episode (``episode_length``).
    """

    alpha: float = 0.2  #: initial entropy temperature
    auto_alpha: bool = True  #: tune the temperature towards ``target_entropy``
    target_entropy: float | None = None  #: the entropy auto_alpha tunes towards; None: minus the action dimension
    alpha_learning_rate: float = 3e-4  #: learning rate of the temperature (auto_alpha)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "alpha", "alpha_learning_rate")
        self.check_sequence(("episode_length", self.episode_length), {"batch_size": self.batch_size})
        if self.sequence_length is not None and self.buffer_size % self.n_envs:
            raise ValueError("SACParameters.buffer_size must be a multiple of n_envs for sequence sampling")


@dataclass
class TD3Parameters(OffPolicyParameters):
    """TD3 hyperparameters (actions live in [-1, 1], so noise scales are fractions of the range)."""

    exploration_noise: float = 0.1  #: std of the Gaussian noise added to actions when collecting
    policy_noise: float = 0.2  #: std of the target policy smoothing noise
    noise_clip: float = 0.5  #: the smoothing noise is clipped to [-noise_clip, noise_clip]
    policy_delay: int = 2  #: critic updates per actor (and target) update

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "policy_delay")
        for name in ("exploration_noise", "policy_noise", "noise_clip"):
            if getattr(self, name) < 0:
                raise ValueError(f"TD3Parameters.{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class PPOParameters(SequenceParameters, OnPolicyParameters):
    """PPO hyperparameters. An epoch collects ``rollout_length`` steps from each of ``n_envs``
    environments, then trains ``n_update_epochs`` passes of minibatches of ``batch_size``
    (``update_times``, the seed's name, and ``update_epochs`` are accepted for it).

    With ``batch_trajectory`` the windows span the whole rollout; ``burn_in`` counts steps
    *before* each window that refresh its stored state with the current network.
    """

    ALIASES: ClassVar[Mapping[str, str]] = {
        **OnPolicyParameters.ALIASES, "epsilon": "clip_range", "clip_ratio": "clip_range",
        "entropy_coeff": "ent_coef", "update_epochs": "n_update_epochs", "update_times": "n_update_epochs"}
    TRAJECTORY_FIELD: ClassVar[str] = "rollout_length"  #: batch_trajectory: windows span the rollout

    n_update_epochs: int = 10  #: passes (epochs) over each rollout; off-policy update_times counts gradient steps
    batch_size: int = 256  #: minibatch size; must divide rollout_length * n_envs
    clip_range: float = 0.2  #: PPO's epsilon: the probability ratio is clipped to 1 +- clip_range
    clip_value: float | None = None  #: clip value updates to this range around the old values
    ent_coef: float = 0.0  #: weight of the entropy bonus in the policy loss
    max_grad_norm: float | None = 0.5  #: per model (actor and critic have their own optimizers)
    normalize_advantage: bool = True  #: standardise the advantages of each minibatch
    normalize_obs: bool = True  #: running mean/std of the declared observations (not of states)
    scale_reward: bool = False  #: divide rewards by the running std of the discounted return
    log_std_init: float = 0.0  #: state-independent log-std start (actors without a log_std output)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "n_update_epochs", "batch_size", "clip_range")
        check_positive(self, "clip_value", "max_grad_norm", allow_none=True)
        if (self.rollout_length * self.n_envs) % self.batch_size:
            raise ValueError(f"PPOParameters.batch_size = {self.batch_size} must divide rollout_length * n_envs "
                             f"= {self.rollout_length * self.n_envs}")
        self.check_sequence(("rollout_length", self.rollout_length),
                            {"rollout_length": self.rollout_length, "batch_size": self.batch_size},
                            burn_in_up_to_length=True)
        if self.burn_in and self.sequence_length == self.rollout_length:
            raise ValueError(f"PPOParameters.burn_in = {self.burn_in} needs sequence_length < rollout_length: "
                             "burn-in unrolls the steps that precede a window in the same rollout, and a "
                             "window spanning the whole rollout (batch_trajectory) has none")


LOSSES = ("gaussian", "mse")


@dataclass
class BCParameters(SequenceParameters, OfflineParameters):
    """Behaviour cloning; with ``batch_trajectory`` the windows are ``episode_length`` long."""

    loss: str = "gaussian"  #: ``'gaussian'`` (log-likelihood) or ``'mse'`` (continuous actions)
    log_std_init: float = -1.0  #: initial log-std when the actor has no ``'log_std'`` output

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ValueError(f"BCParameters.loss = {self.loss!r}; use one of {', '.join(LOSSES)}")
        self.check_sequence(("episode_length", self.episode_length), {"batch_size": self.batch_size})


@dataclass
class DAggerParameters(BCParameters):
    """Behaviour cloning's parameters plus the expert and the rounds (``n_epochs`` learner rounds)."""

    expert: str = ""  #: the expert's run folder (its newest checkpoint labels the states)
    steps_per_round: int = 800  #: env steps the learner plays per round (Pendulum: 4 episodes)
    expert_episodes: int = 4  #: episodes of round 1 when no ``dataset`` is given
    n_epochs: int = 5
    update_times: int = 2000  #: cloning steps after each round

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "steps_per_round", "expert_episodes")

    @property
    def steps_per_env(self) -> int:
        return self.steps_per_round


@dataclass
class TD3BCParameters(OfflineParameters):
    """TD3+BC's defaults (alpha 2.5, the TD3 noise and delay settings)."""

    alpha: float = 2.5  #: weight of the Q term against the cloning term
    discount: float = 0.99  #: gamma, the discount factor of future rewards
    tau: float = 0.005  #: Polyak factor of the target networks
    policy_noise: float = 0.2  #: std of the target policy smoothing noise
    noise_clip: float = 0.5  #: the smoothing noise is clipped to [-noise_clip, noise_clip]
    policy_delay: int = 2  #: critic updates per actor (and target) update

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "alpha", "tau", "policy_delay")
        if not 0 <= self.discount <= 1:
            raise ValueError(f"TD3BCParameters.discount must lie in [0, 1], got {self.discount}")


@dataclass
class IQLParameters(OfflineParameters):
    """IQL's defaults for locomotion data (expectile 0.7, temperature 3, normalised rewards).

    ``normalize_rewards`` (default on) multiplies every reward the update sees by
    ``1000 / (max_k R_k - min_k R_k)``, ``R_k`` the undiscounted return of the dataset's episode
    ``k`` (the training episodes, after ``max_episodes``), as the reference implementation does
    for MuJoCo locomotion: ``temperature = 3`` is tuned for rewards on that scale. Off, the
    update learns from the dataset's rewards as they are. A dataset whose episodes all have the
    same return (one episode, say) has no range to scale by: its rewards stay raw, with a warning.
    """

    expectile: float = 0.7  #: tau of the value's expectile regression, in (0, 1)
    temperature: float = 3.0  #: beta of the advantage weights
    max_weight: float = 100.0  #: advantage weights are clipped here
    discount: float = 0.99  #: gamma, the discount factor of future rewards
    tau: float = 0.005  #: Polyak factor of the target critics
    log_std_init: float = 0.0  #: initial log-std of the default actor
    #: scale rewards by ``1000 / (max - min episode return)`` over the dataset (Kostrikov et al.'s locomotion recipe)
    normalize_rewards: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "temperature", "max_weight", "tau")
        if not 0 < self.expectile < 1:
            raise ValueError(f"IQLParameters.expectile must lie in (0, 1), got {self.expectile}")
        if not 0 <= self.discount <= 1:
            raise ValueError(f"IQLParameters.discount must lie in [0, 1], got {self.discount}")


REWARDS = ("logit", "positive", "negative")


@dataclass
class AdversarialParameters(Parameters):
    """The expert data and discriminator settings, mixed into a generator's parameters
    (``class GAILParameters(AdversarialParameters, SACParameters)``)."""

    dataset: str = ""  #: expert demonstrations (see docs/imitation.md for the formats)
    max_episodes: int | None = None  #: use the dataset's first episodes only
    reward: str = "logit"  #: ``'logit'`` (log D - log(1 - D)), ``'positive'`` (-log(1 - D)), ``'negative'`` (log D)
    #: weight ``w`` of the penalty ``w * mean |d logit / d x|^2`` on expert inputs (0: off; AMP's is
    #: ``(w / 2) * mean |d D / d x|^2``, as in Peng et al. 2021)
    gradient_penalty: float = 1.0
    discriminator_learning_rate: float = 3e-4  #: the default discriminator's learning rate

    #: the discriminator loss these parameters train: ``'bce'`` (cross-entropy) or AMP's ``'least_squares'``
    DISCRIMINATOR_LOSS: ClassVar[str] = "bce"

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.reward not in REWARDS and self.reward != "amp":
            raise ValueError(f"{name}.reward = {self.reward!r}; use one of {', '.join(REWARDS)}")
        if self.reward == "amp" and self.DISCRIMINATOR_LOSS != "least_squares":
            raise ValueError(f"{name}.reward = 'amp': AMP's style reward max(0, 1 - 0.25 (D - 1)^2) is meant for "
                             "AMP's least-squares discriminator (targets +1 / -1); on this cross-entropy "
                             "discriminator's logit it peaks at 1 and falls again as the logit grows, so the "
                             "most expert-like transitions would earn the least. Use reward='logit' (or "
                             "'positive', 'negative'), or train amp (aquaml train amp ENV) for the style reward")
        # each termination's absorbing state is worth r_a / (1 - gamma): finite only for gamma < 1
        discount = getattr(self, "discount", None)
        if discount is not None and discount >= 1:
            raise ValueError(f"{name}.discount = {discount}: adversarial imitation needs discount < 1, since each "
                             "terminal transition gains the absorbing state's value gamma r_a / (1 - gamma), "
                             "which is unbounded at gamma = 1; use e.g. discount=0.99")
        if self.gradient_penalty < 0:
            raise ValueError(f"{name}.gradient_penalty must be >= 0, got {self.gradient_penalty}")
        check_positive(self, "discriminator_learning_rate")
        check_positive(self, "max_episodes", allow_none=True)


@dataclass
class GAILParameters(AdversarialParameters, SACParameters):
    """SAC's parameters plus the expert data and the discriminator's settings. With
    ``sequence_length`` both the agent's and the expert's batches are windows of consecutive
    steps: a recurrent actor and a recurrent discriminator each unroll over them (the
    discriminator from zero state; ``burn_in`` leading steps only warm up the states: they carry
    no discriminator or SAC loss)."""


@dataclass
class GAILPPOParameters(AdversarialParameters, PPOParameters):
    """PPO's parameters plus the expert data and the discriminator's settings. Each rollout
    trains the discriminator ``discriminator_epochs`` passes over its steps in minibatches of
    ``batch_size``, each against ``batch_size`` expert transitions. A recurrent actor trains
    over windows as in PPO (``sequence_length``, ``burn_in``); the discriminator scores single
    transitions."""

    discriminator_epochs: int = 4  #: discriminator passes over each rollout

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "discriminator_epochs")


@dataclass
class AIRLSettings(Parameters):
    """What AIRL changes in its generator's parameters: its logit is fixed by its structure (no
    gradient penalty by default), and its actor and reward models are feed-forward."""

    gradient_penalty: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sequence_length is not None:
            raise ValueError(f"{type(self).__name__}: AIRL's logit needs log pi(a|s) of single expert transitions, "
                             "so its actor and reward models are feed-forward; leave sequence_length and "
                             "batch_trajectory unset (gail trains recurrent actors and discriminators)")


@dataclass
class AIRLParameters(AIRLSettings, GAILParameters):
    """GAIL's parameters with AIRL's settings; SAC's temperature starts at 1 and is tuned.

    AIRL's generator maximises ``E sum_t gamma^t (log D - log(1 - D)) = E sum_t gamma^t
    (f(s_t, a_t, s_t+1) - log pi(a_t|s_t))`` (Fu et al. 2018): entropy-regularised RL on the
    reward ``f`` at temperature 1. SAC learns from ``f`` and adds ``-alpha log pi`` itself, so
    ``auto_alpha=False`` (with ``alpha=1``) is that objective exactly. It is not the default: on
    Pendulum (10 expert episodes, 20k env steps, seeds 0-3, the mean of the evaluations at 15k and
    20k) the fixed temperature held 0.86 on one seed and fell to 0.02, 0.07, -0.21 on the others
    after reaching 0.9 (its reward drifts), where the tuned temperature reached 0.99, 0.99, 0.94,
    0.99. Tuned, the generator's policy is sharper than the expert's, and ``g`` is learned as before.
    """

    alpha: float = 1.0  #: SAC's starting temperature: 1, the temperature of AIRL's reward ``f - log pi``
    auto_alpha: bool = True  #: tuned as SAC's (False: AIRL's objective at exactly ``alpha``; see above)


@dataclass
class AIRLPPOParameters(AIRLSettings, GAILPPOParameters):
    """GAIL-PPO's parameters with AIRL's settings."""


@dataclass
class AMPParameters(GAILParameters):
    """GAIL's parameters with AMP's loss, reward and weights. ``gradient_penalty`` is the paper's
    ``w_gp``: the discriminator's loss adds ``(w_gp / 2) * mean |d D / d x|^2`` on expert inputs."""

    DISCRIMINATOR_LOSS: ClassVar[str] = "least_squares"

    reward: str = "amp"  #: AMP's style reward (the only one AMP takes)
    gradient_penalty: float = 10.0  #: ``w_gp`` of Peng et al. 2021, eq. 8 (penalty ``w_gp / 2 * E|grad D|^2``)
    task_reward_weight: float = 0.5  #: weight of the environment's reward
    style_reward_weight: float = 0.5  #: weight of the style reward from the discriminator

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reward != "amp":
            raise ValueError(f"AMPParameters.reward must be 'amp' (the style reward), got {self.reward!r}")
        for name in ("task_reward_weight", "style_reward_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"AMPParameters.{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class VAEParameters(Parameters):
    """A VAE's settings; an epoch is ``update_times`` gradient steps, ``--steps`` counts them."""

    dataset: str = ""  #: see docs/imitation.md for the formats
    fields: tuple[str, ...] = ("obs",)  #: observation names (or ``'action'``) the VAE models
    latent_dim: int = 4  #: size of the latent code
    beta: float = 1.0  #: weight of the KL term
    holdout: float = 0.1  #: share of the episodes (the last ones) kept out for the held-out ELBO
    n_epochs: int = 50  #: epochs to train
    update_times: int = 500  #: gradient steps per epoch
    batch_size: int = 256  #: steps per gradient step
    display_interval: int = 5  #: epochs between evaluations, log rows and console tables
    store_model_times: int = 5  #: displays between checkpoints (one is always written at the end)
    hidden_sizes: tuple[int, ...] = (128, 128)  #: hidden layer sizes of the default encoder and decoder
    learning_rate: float = 1e-3  #: learning rate of the default models
    seed: int = 0  #: seeds the models and the batches

    def __post_init__(self) -> None:
        self.fields = tuple(str(f) for f in self.fields)
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        self.check_types()
        check_positive(self, "latent_dim", "n_epochs", "update_times", "batch_size", "display_interval",
                       "store_model_times", "learning_rate")
        if not self.fields:
            raise ValueError("VAEParameters.fields is empty: name the dataset fields to model, e.g. fields=obs")
        if not 0 < self.holdout < 1:
            raise ValueError(f"VAEParameters.holdout must lie in (0, 1), got {self.holdout}")
        if self.beta < 0:
            raise ValueError(f"VAEParameters.beta must be >= 0, got {self.beta}")

    @property
    def steps_per_env(self) -> int:
        return self.update_times

    # what the training loop reads of every algorithm's parameters: gradient steps, one "env",
    # nothing collected to overlap with
    n_envs: ClassVar[int] = 1
    overlap: ClassVar[bool] = False

    @property
    def total_steps(self) -> int:
        return self.n_epochs * self.update_times
