"""``RLBaseEnv``: the seed's environment contract with named observations."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from aquaml.data import DataInfo


@dataclass(frozen=True)
class ActionSpace:
    """What the actor's ``'action'`` output is: ``shape`` of a continuous action in [-1, 1],
    or, when ``n`` is set, ``(n,)`` logits over ``n`` discrete actions."""

    shape: tuple[int, ...]
    n: int | None = None


class RLBaseEnv:
    """Base class for environments that return named observations.

    A subclass sets ``self._obs_info`` (a :class:`DataInfo`) in ``__init__`` and implements

    * ``reset() -> dict``: named observations, each with a leading batch dimension of 1,
      passed through :meth:`initial_obs` before returning;
    * ``step(action_dict)``: returns ``(obs, {'total_reward': r, ...}, done, info)`` as in
      the seed, or Gymnasium's ``(obs, reward, terminated, truncated, info)``; ``obs`` is
      passed through :meth:`check_obs`.

    ``action_dict['action']`` lies in ``[-1, 1]`` (a tanh-squashed Gaussian); scale it to
    your actuator range inside ``step``. The dict is the environment's own copy.

    Actor outputs whose names are also actor inputs (recurrent hidden states such as
    ``'hidden1'``) are *state outputs*: :meth:`initial_obs` adds them as zeros at reset and
    :meth:`check_obs` feeds the actor's latest values back as observations at every step.
    """

    _obs_info: DataInfo | None = None
    #: optional: declare the action shape when no actor model is given (default models)
    _action_info: DataInfo | None = None
    _state_shapes: Mapping[str, tuple[int, ...]] = {}

    def __init__(self) -> None:
        self._obs_info = None
        self._state_shapes = {}

    # -- to implement ---------------------------------------------------------------
    def reset(self) -> dict[str, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} must implement reset()")

    def step(self, action_dict: dict[str, np.ndarray]):
        raise NotImplementedError(f"{type(self).__name__} must implement step(action_dict)")

    # -- seed helpers ---------------------------------------------------------------
    @property
    def obs_info(self) -> DataInfo:
        if not isinstance(getattr(self, "_obs_info", None), DataInfo):
            raise TypeError(
                f"{type(self).__name__}._obs_info is not set: assign a DataInfo of the "
                "observations in __init__, e.g. self._obs_info = DataInfo(names=('obs',), "
                "shapes=((3,)), dtypes=np.float32)"
            )
        return self._obs_info

    def initial_obs(self, obs: dict) -> dict:
        """Add zero-filled state outputs of the actor (e.g. hidden states) to ``obs``."""
        for name, shape in self._state_shapes.items():
            obs[name] = np.zeros((1, *shape), np.float32)
        return obs

    def check_obs(self, obs: dict, action_dict: Mapping[str, np.ndarray]) -> dict:
        """Feed the actor's state outputs back into ``obs`` for the next step."""
        for name, shape in self._state_shapes.items():
            obs[name] = np.asarray(action_dict[name], np.float32).reshape(1, *shape)
        return obs

    def seed(self, seed: int) -> None:
        """Make the next ``reset()`` deterministic.

        The default seeds ``self.env`` when it is a Gymnasium environment (the seed's
        wrappers keep theirs there). Override it when randomness lives elsewhere.
        """
        inner = getattr(self, "env", None)
        if inner is not None and hasattr(inner, "reset") and hasattr(inner, "np_random"):
            inner.reset(seed=int(seed))
            if hasattr(inner, "action_space"):
                inner.action_space.seed(int(seed))
        elif not getattr(self, "_warned_seed", False):
            self._warned_seed = True
            warnings.warn(
                f"{type(self).__name__} has no Gymnasium env in self.env and does not override "
                "seed(seed): its resets are not reproducible and resume cannot be exact",
                stacklevel=2,
            )

    def close(self) -> None:
        inner = getattr(self, "env", None)
        if inner is not None and hasattr(inner, "close"):
            inner.close()

    # -- framework side -------------------------------------------------------------
    def set_state_outputs(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Called by the starter with the actor's state outputs (name -> shape)."""
        clash = set(shapes) & set(self.obs_info.names)
        if clash:
            raise ValueError(
                f"actor state outputs {sorted(clash)} are also observations declared in "
                f"{type(self).__name__}._obs_info; rename one of them"
            )
        self._state_shapes = {k: tuple(v) for k, v in shapes.items()}

    @property
    def action_space_info(self) -> ActionSpace | None:
        """The actions, if the environment declares them (``_action_info`` or ``self.env``).

        ``_action_info = DataInfo(('action',), ((n,),), np.int64)`` declares ``n`` discrete actions.
        """
        info = getattr(self, "_action_info", None)
        if isinstance(info, DataInfo):
            shape, dtype = info.shapes[0], info.dtypes[0]
            return ActionSpace(shape, shape[0]) if dtype.kind in "iu" else ActionSpace(shape)
        space = getattr(getattr(self, "env", None), "action_space", None)
        if hasattr(space, "n") and not getattr(space, "shape", None):
            return ActionSpace((int(space.n),), int(space.n))
        return ActionSpace(tuple(space.shape)) if getattr(space, "shape", None) else None
