"""A block of environments stepped together over a shared table of arrays.

The table holds, for every environment of a vector, its action inputs, its current
observation, the last observation of a finished episode, reward, termination, truncation,
episode length and reset requests. An :class:`EnvBlock` runs the environments with
indices ``[lo, lo + len(envs))`` of that table: the learner's process runs one block over
all envs, or each worker process runs one block over its share. The same code steps
the environments either way, which is what makes in-process and worker sampling give
identical trajectories.

Autoreset modes (as in ``gymnasium.vector.AutoresetMode``):

* ``same-step``: a finished env is reset within the same step with ``reset_seed[i]``
  (``-1``: unseeded); ``obs`` holds the new episode's first observation and ``final_obs``
  the finished episode's last one.
* ``next-step``: the step after a finished one resets the env instead of stepping it
  (reward 0, not terminated, not truncated).
* ``disabled``: finished envs stay finished until ``reset`` with their ``reset_mask`` set.
"""
from __future__ import annotations

from typing import Mapping, Protocol, Sequence

import numpy as np

from aquaml.env.driver import EnvDriver

Field = tuple[tuple[int, ...], np.dtype]
SAME_STEP, NEXT_STEP, DISABLED = "same-step", "next-step", "disabled"
MODES = (SAME_STEP, NEXT_STEP, DISABLED)


class Stepper(Protocol):
    """One environment as a block runs it: named observations without a batch dimension."""

    def reset(self, seed: int | None) -> Mapping[str, np.ndarray]: ...

    def step(self, action: Mapping[str, np.ndarray]) -> tuple[Mapping[str, np.ndarray], float, bool, bool]: ...

    def close(self) -> None: ...


class DriverStepper:
    """An :class:`EnvDriver` (checked ``RLBaseEnv``) as a stepper: what the trainer runs."""

    def __init__(self, driver: EnvDriver) -> None:
        self.driver = driver

    def reset(self, seed):
        return {k: v[0] for k, v in self.driver.reset(seed).items()}

    def step(self, action):
        # the driver hands the env its own copies, with the seed's leading batch dimension
        result = self.driver.step({k: v[None] for k, v in action.items()})
        return {k: v[0] for k, v in result.obs.items()}, result.reward, result.terminated, result.truncated

    def close(self) -> None:
        self.driver.close()


def table_fields(n_envs: int, obs: Mapping[str, Field], actions: Mapping[str, Field]) -> dict[str, Field]:
    """The arrays of a vector of ``n_envs`` environments (see the module docstring)."""
    fields: dict[str, Field] = {}
    for prefix, spec in (("act", actions), ("obs", obs), ("final_obs", obs)):
        fields.update({f"{prefix}/{k}": ((n_envs, *s), np.dtype(d)) for k, (s, d) in spec.items()})
    fields.update({
        "reward": ((n_envs,), np.dtype(np.float64)),
        "terminated": ((n_envs,), np.dtype(bool)),
        "truncated": ((n_envs,), np.dtype(bool)),
        "episode_step": ((n_envs,), np.dtype(np.int64)),  # length so far; at a finished step, the episode's
        "reset_seed": ((n_envs,), np.dtype(np.int64)),  # seed of the env's next reset, -1: none
        "reset_mask": ((n_envs,), np.dtype(bool)),  # which envs `reset` resets
    })
    return fields


class EnvBlock:
    """Steps ``steppers`` (envs ``lo, lo+1, ...`` of the table) reading and writing ``arrays``."""

    def __init__(self, steppers: Sequence[Stepper], arrays: Mapping[str, np.ndarray], lo: int = 0,
                 mode: str = SAME_STEP) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown autoreset mode {mode!r}; use one of {MODES}")
        self.steppers, self.lo, self.mode = list(steppers), lo, mode
        self.arrays = arrays
        self._act = {k[len("act/"):]: v for k, v in arrays.items() if k.startswith("act/")}
        self._obs = {k[len("obs/"):]: v for k, v in arrays.items() if k.startswith("obs/")}
        self._final = {k[len("final_obs/"):]: arrays[k] for k in arrays if k.startswith("final_obs/")}
        self._lengths = [0] * len(self.steppers)
        self._pending = [False] * len(self.steppers)  # next-step mode: reset at the next step
        self.current = -1  # the env being run, for error messages

    def _write(self, table: Mapping[str, np.ndarray], i: int, obs: Mapping[str, np.ndarray]) -> None:
        for name, array in table.items():
            value = obs[name]
            if np.shape(value) != array.shape[1:]:  # assignment would broadcast silently
                raise ValueError(f"env {i}: observation {name!r} has shape {np.shape(value)}, "
                                 f"expected {array.shape[1:]}")
            array[i] = value

    def _reset_one(self, j: int, seed: int | None) -> Mapping[str, np.ndarray]:
        self._lengths[j], self._pending[j] = 0, False
        return self.steppers[j].reset(None if seed is None or seed < 0 else int(seed))

    def reset(self) -> None:
        """Reset the envs whose ``reset_mask`` is set, each with its ``reset_seed``."""
        mask, seeds, a = self.arrays["reset_mask"], self.arrays["reset_seed"], self.arrays
        for j in range(len(self.steppers)):
            i = self.current = self.lo + j
            if mask[i]:
                self._write(self._obs, i, self._reset_one(j, seeds[i]))
                a["reward"][i], a["terminated"][i], a["truncated"][i], a["episode_step"][i] = 0.0, False, False, 0
        self.current = -1

    def step(self) -> None:
        """Step every env of the block with its row of the ``act/*`` arrays."""
        a, seeds = self.arrays, self.arrays["reset_seed"]
        reward, terminated, truncated, episode_step = a["reward"], a["terminated"], a["truncated"], a["episode_step"]
        for j, stepper in enumerate(self.steppers):
            i = self.current = self.lo + j
            if self._pending[j]:
                self._write(self._obs, i, self._reset_one(j, seeds[i]))
                reward[i], terminated[i], truncated[i], episode_step[i] = 0.0, False, False, 0
                continue
            obs, r, term, trunc = stepper.step({k: v[i] for k, v in self._act.items()})
            self._lengths[j] += 1
            reward[i], terminated[i], truncated[i], episode_step[i] = r, term, trunc, self._lengths[j]
            if (term or trunc) and self.mode == SAME_STEP:
                self._write(self._final, i, obs)
                obs = self._reset_one(j, seeds[i])
            elif (term or trunc) and self.mode == NEXT_STEP:
                self._pending[j] = True
            self._write(self._obs, i, obs)
        self.current = -1

    def call(self, index: int, method: str, *args):
        """Run this block's ``method(*args)`` on behalf of env ``index`` (rare calls, e.g. replay)."""
        self.current = index
        result = getattr(self, method)(*args)
        self.current = -1
        return result

    def replay(self, index: int, seed: int, actions: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        """Reset env ``index`` with ``seed``, apply ``actions`` (leading time axis) and write its observation."""
        j = index - self.lo
        obs = self._reset_one(j, seed)
        steps = len(next(iter(actions.values()))) if actions else 0
        for t in range(steps):
            obs = self.steppers[j].step({k: v[t] for k, v in actions.items()})[0]
        self._lengths[j] = steps
        self._write(self._obs, index, obs)
        self.arrays["episode_step"][index] = steps
        return obs

    def close(self) -> None:
        for stepper in self.steppers:
            try:
                stepper.close()
            except Exception:  # closing must go on for the others
                pass

