"""Recurrent PPO on CartPole without velocities (recurrent form 2: sequence training).

The actor is an LSTM written in the seed's step form: its hidden and cell states are
named inputs that it also returns as outputs, so AquaML zero-fills them at each reset and
feeds them back at each step (form 1). With ``sequence_length`` set, PPO trains it on
windows of consecutive steps with back-propagation through time, starting each window
from the stored state and resetting it at episode boundaries (form 2); ``burn_in > 0``
would first refresh each stored state by unrolling the current network over the steps
that precede the window. The critic reads the actor's recurrent state as extra inputs.

    python examples/recurrent_ppo_cartpole_novel.py [seed] [steps]
"""
import sys

import aquaml  # noqa: F401  (before keras: selects the JAX backend)
import keras

from aquaml import RLTaskStarter
from aquaml.algorithm import PPO, PPOParameters

LR = 3e-4


class LSTMActor(keras.Model):
    def __init__(self):
        super().__init__()
        self.lstm = keras.layers.LSTM(64, return_state=True)
        self.hidden = keras.layers.Dense(64, activation="relu")
        self.logits = keras.layers.Dense(2)
        self.input_name = ("obs", "h", "c")
        self.output_info = {"action": (2,), "h": (64,), "c": (64,)}
        self.learning_rate = LR
        self.optimizer = "Adam"

    def call(self, obs, h, c):
        out, h, c = self.lstm(keras.ops.expand_dims(obs, axis=1), initial_state=[h, c])
        return self.logits(self.hidden(out)), h, c

    def reset(self):
        pass


class Critic(keras.Model):
    def __init__(self):
        super().__init__()
        self.d1 = keras.layers.Dense(64, activation="relu")
        self.d2 = keras.layers.Dense(64, activation="relu")
        self.v = keras.layers.Dense(1)
        self.input_name = ("obs", "h", "c")  # the actor's memory as features
        self.learning_rate = LR
        self.optimizer = "Adam"

    def call(self, obs, h, c):
        return self.v(self.d2(self.d1(keras.ops.concatenate([obs, h, c], axis=-1))))

    def reset(self):
        pass


def main(seed: int = 0, steps: int = 100_000, sequence_length: int | None = 16, name: str | None = None,
         run_root: str = "runs"):
    params = PPOParameters(n_envs=8, rollout_length=128, batch_size=256, n_update_epochs=10,
                           n_epochs=steps // (8 * 128), sequence_length=sequence_length, burn_in=0,
                           discount=0.99, gae_lambda=0.95, display_interval=10, calculate_episodes=10, seed=seed)
    starter = RLTaskStarter("CartPoleNoVel-v1", {"actor": LSTMActor, "critic": Critic}, PPO, params, name=name,
                            run_root=run_root, progress=__name__ == "__main__")
    return starter.run()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    summary = main(*args)
    print(f"final evaluation return {summary.final_eval_return:.1f}; run directory {summary.run_dir}")
