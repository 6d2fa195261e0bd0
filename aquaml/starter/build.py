"""Building an agent from the user's inputs: environment, checked models, algorithm.

Everything here runs before any training and fails with a message naming what is wrong.
The same :func:`build_agent` serves training (:class:`RLTaskStarter`) and read-only
evaluation of a run folder (:mod:`aquaml.starter.loading`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import keras

from aquaml.algorithm.interface import check_instance
from aquaml.data import load_dataset
from aquaml.env import ActionSpace, RLBaseEnv, env_factory, make_env
from aquaml.model import MLPActor, MLPCritic, ModelSpec, build_actor, build_critic, build_model
from aquaml.model.optimizers import gradients_transformed_by


@dataclass
class Agent:
    """An environment, its models and the algorithm that trains them."""

    env: RLBaseEnv  #: the training environment (the user's own instance when one was given)
    env_factory: Callable[[], RLBaseEnv]  #: fresh copies, made before ``env`` is stepped
    env_name: str
    action_space: ActionSpace | None  #: None when the env does not declare it (the actor does)
    model_classes: dict[str, Any]  #: role -> the user's class, or None for the default model
    models: dict[str, ModelSpec]
    algo: Any
    episode_length: int

    @property
    def state_outputs(self) -> dict[str, tuple[int, ...]]:
        """The actor's recurrent state outputs (name -> shape), fed back as observations."""
        return self.models["actor"].state_outputs

    @property
    def actor_inputs(self) -> tuple[str, ...]:
        return self.models["actor"].input_names


def model_classes(algo: type, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Role -> the user's model class (None for a default model); unknown roles are an error."""
    roles = ("actor", *algo.critic_roles)
    given = dict(given or {})
    unknown = set(given) - set(roles)
    if unknown:
        raise ValueError(f"model_class_dict has unknown roles {sorted(unknown)}; {algo.__name__} uses {roles}")
    return {role: given.get(role) for role in roles}


def build_models(algo: type, classes: Mapping[str, Any], env: RLBaseEnv, params,
                 action_space: ActionSpace | None) -> dict[str, ModelSpec]:
    """Instantiate and check every role's model, defaults where the user gave none."""
    obs = env.obs_info.shape_dict
    action_shape = action_space.shape if action_space is not None else None
    discrete = action_space is not None and action_space.n is not None
    actor_cls = classes["actor"]
    if actor_cls is None:
        if action_shape is None:
            raise ValueError(f"{type(env).__name__} does not declare its action shape; give an actor "
                             "model or set self._action_info = DataInfo(('action',), ((n,),))")
        actor_cls = MLPActor(tuple(obs), action_shape, params.hidden_sizes, params.learning_rate,
                             log_std=algo.default_log_std_head and not discrete, lstm_size=params.lstm_size)
    specs = {"actor": build_actor(actor_cls, "actor", obs, action_shape=action_shape)}
    actor = specs["actor"]
    critic_inputs = {**obs, **actor.state_outputs}
    if algo.critic_uses_action:
        critic_inputs["action"] = actor.output_info["action"]
    kinds = getattr(algo, "input_kinds", {})
    for role in algo.critic_roles:
        available, default = role_inputs(kinds.get(role, "critic"), obs, critic_inputs, actor.output_info["action"])
        learning_rate = getattr(params, f"{role}_learning_rate", params.learning_rate)
        cls = classes[role] or MLPCritic(default, params.hidden_sizes, learning_rate)
        kind = kinds.get(role, "critic")
        specs[role] = (build_critic(cls, role, available) if kind == "critic" else
                       build_model(cls, role, available, recurrent=kind in ("discriminator", "state_discriminator")))
    return specs


#: what a model role may read, by the kind an algorithm's ``input_kinds`` gives it
INPUT_KINDS = ("critic", "value", "state", "discriminator", "state_discriminator")


def role_inputs(kind: str, obs: Mapping[str, tuple], critic_inputs: Mapping[str, tuple],
                action_shape: tuple) -> tuple[dict, tuple[str, ...]]:
    """``(inputs a model of this kind may read, what the default model reads)``.

    ``critic``: observations, the actor's memory and the action; ``value``: the same without the
    action; ``state``: the observations alone. Discriminators see the environment only (never
    the actor's memory): observations,
    the ``action`` and ``next_<name>`` (the observation after the step); ``discriminator``
    defaults to ``(observations, action)``, ``state_discriminator`` to ``(observations,
    next observations)``.
    """
    if kind == "critic":
        return dict(critic_inputs), tuple(critic_inputs)
    if kind == "value":
        inputs = {k: s for k, s in critic_inputs.items() if k != "action"}
        return inputs, tuple(inputs)
    if kind == "state":
        return dict(obs), tuple(obs)
    if kind not in INPUT_KINDS:
        raise ValueError(f"input kind {kind!r}; use one of {', '.join(INPUT_KINDS)}")
    available = {**obs, "action": action_shape, **{f"next_{k}": s for k, s in obs.items()}}
    if kind == "discriminator":
        return available, (*obs, "action")
    return available, (*obs, *(f"next_{k}" for k in obs))


def env_time_limit(env: RLBaseEnv) -> int | None:
    """The episode limit the environment declares (its own or its Gymnasium spec's), if any."""
    limit = getattr(env, "max_episode_steps", None)
    if limit is None:
        spec = getattr(getattr(env, "env", None), "spec", None)
        limit = getattr(spec, "max_episode_steps", None)
    return limit


def build_agent(env_spec, model_class_dict: Mapping[str, Any] | None, algo: type, params,
                gradient_transform=None) -> Agent:
    """Build and check the environment, the models and the algorithm.

    Args:
        env_spec: a Gymnasium id, ``gymnasium.Env``, ``RLBaseEnv`` or a factory of either.
        gradient_transform: an optax transformation every optimizer applies first
            (data-parallel learners average their gradients with it).
    """
    keras.utils.set_random_seed(params.seed)  # reproducible Keras weight initialisation
    factory = env_factory(env_spec)  # copies taken before the training env is stepped
    env = make_env(env_spec)
    env_name = getattr(env, "env_name", None) or type(env).__name__
    action_space = env.action_space_info
    if action_space is not None and action_space.n is not None and not algo.discrete_actions:
        raise ValueError(f"{env_name} has discrete actions; {algo.__name__} needs continuous ones "
                         "(use PPO for discrete actions)")
    classes = model_classes(algo, model_class_dict)
    with gradients_transformed_by(gradient_transform):
        models = build_models(algo, classes, env, params, action_space)
        env.set_state_outputs(models["actor"].state_outputs)
        instance = algo(params, models, action_space or ActionSpace(models["actor"].output_info["action"]))
    check_instance(instance)
    episode_length = params.episode_length or env_time_limit(env)
    if episode_length is None:
        raise ValueError(f"{env_name} declares no episode limit; set episode_length (or epoch_length) "
                         "in the algorithm parameters")
    return Agent(env, factory, env_name, action_space, classes, models, instance, episode_length)


def training_dataset(params, agent: Agent):
    """The dataset an offline or adversarial algorithm trains on, checked against the agent's models.

    Fails before training, naming the field and episode, when the data cannot feed the
    models (a missing observation, a wrong shape, actions outside the action space, NaN).
    """
    if not params.dataset:
        raise ValueError(f"{agent.algo.name} learns from a dataset: set dataset=PATH (--set dataset=PATH; a .npz or "
                         ".h5 file, minari:NAME, or a Minari or .npy directory)")
    dataset = load_dataset(params.dataset, max_episode_steps=agent.episode_length)
    if params.max_episodes is not None:
        if params.max_episodes > dataset.n_episodes:
            raise ValueError(f"max_episodes = {params.max_episodes}, but {params.dataset} holds "
                             f"{dataset.n_episodes} episodes")
        dataset = dataset.select(range(params.max_episodes))
    env_obs = agent.env.obs_info.shape_dict
    needs, readers = {}, {}
    # the models that read the data: all of an offline algorithm's, a discriminator's (the agent
    # learns from its own transitions in adversarial imitation)
    roles = getattr(agent.algo, "dataset_roles", None) or tuple(agent.models)
    states = set(agent.state_outputs).union(*(agent.models[r].state_outputs for r in roles))  # not data
    reads_actions = "actor" in roles or any("action" in agent.models[r].input_names for r in roles)
    for role in roles:
        for name, shape in agent.models[role].input_shapes.items():
            if name.startswith("next_") and name not in env_obs:  # a discriminator's next observation
                name = name[len("next_"):]
            if name != "action" and name not in states:
                needs[name], readers[name] = shape, readers.get(name, role)
    space = agent.action_space
    discrete = space is not None and space.n is not None
    dataset.check_for(needs, agent.models["actor"].output_info["action"] if reads_actions and not discrete else None,
                      n_actions=space.n if reads_actions and discrete else None, readers=readers)
    return dataset
