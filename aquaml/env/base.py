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


@dataclass(frozen=True)
class ActionUnits:
    """How an environment turns the actor's ``'action'`` into its own units (the Gymnasium adapter's
    rule): a continuous action is clipped to ``[-1, 1]`` and mapped linearly onto ``[low, high]``; a
    discrete action is an index counted from ``start``."""

    low: np.ndarray | None = None  #: float64 bounds of a continuous action (None: discrete)
    high: np.ndarray | None = None
    start: int = 0  #: the first discrete action
    dtype: np.dtype = np.dtype(np.float32)  #: what the environment receives (continuous)

    @property
    def discrete(self) -> bool:
        return self.low is None

    @staticmethod
    def rescale(action, low, high):
        """``low + (clip(action, -1, 1) + 1) * (high - low) / 2``, for NumPy and JAX arrays alike (the
        bounds given in the arithmetic's precision)."""
        return low + (action.clip(-1.0, 1.0) + 1.0) * ((high - low) / 2.0)

    def __call__(self, action) -> np.ndarray:
        """Actions as the environment receives them (float64 arithmetic, cast to its dtype)."""
        if self.discrete:
            return self.start + np.asarray(action, np.int64)
        return self.rescale(np.asarray(action, np.float64), self.low, self.high).astype(self.dtype)


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

    @property
    def action_units(self) -> ActionUnits | None:
        """How ``step`` turns the actor's action into the environment's units, if it says (the Gymnasium
        adapter does); None: the environment scales actions its own way inside ``step``."""
        return None

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
