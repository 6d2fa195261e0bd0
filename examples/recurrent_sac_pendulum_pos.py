"""Recurrent SAC on Pendulum with positions only (the seed's POMDP example, form 2).

The actor is the seed's POMDP LSTM actor: it sees only ``'pos'`` (cos and sin of the
angle) and carries ``hidden1``/``hidden2`` as named inputs and outputs. The critics see
the full state ``'obs'`` (an asymmetric actor-critic, as in the seed). With
``sequence_length`` set, SAC samples windows of consecutive steps from the replay buffer,
starts each from its stored state, resets it at episode starts, warms it up for
``burn_in`` steps and back-propagates through the rest.

    python examples/recurrent_sac_pendulum_pos.py [seed] [steps] [sequence_length or 0]
"""
import sys

import aquaml  # noqa: F401  (before keras: selects the JAX backend)
import keras

from aquaml import RLTaskStarter
from aquaml.algorithm import SAC, SACParameters
from aquaml.env import PositionOnlyEnv


class Actor_net(keras.Model):  # the seed's POMDP actor, tf.keras -> keras
    def __init__(self):
        super(Actor_net, self).__init__()
        self.lstm = keras.layers.LSTM(32, return_sequences=False, return_state=True)
        self.dense1 = keras.layers.Dense(64, activation='relu')
        self.dense2 = keras.layers.Dense(64, activation='relu')
        self.action_layer = keras.layers.Dense(1)
        self.log_std = keras.layers.Dense(1)
        self.learning_rate = 1e-3
        self.output_info = {'action': (1,), 'log_std': (1,), 'hidden1': (32,), 'hidden2': (32,)}
        self.input_name = ('pos', 'hidden1', 'hidden2')
        self.optimizer = 'Adam'

    def call(self, vel, hidden1, hidden2):
        hidden_states = (hidden1, hidden2)
        vel = keras.ops.expand_dims(vel, axis=1)
        whole_seq, last_seq, hidden_state = self.lstm(vel, hidden_states)
        x = self.dense1(whole_seq)
        x = self.dense2(x)
        action = self.action_layer(x)
        log_std = self.log_std(x)
        return (action, log_std, last_seq, hidden_state)

    def reset(self):
        pass


class Q_net(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense1 = keras.layers.Dense(64, activation='relu')
        self.dense2 = keras.layers.Dense(64, activation='relu')
        self.dense3 = keras.layers.Dense(1)
        self.learning_rate = 1e-3
        self.input_name = ('obs', 'action')  # the full state
        self.optimizer = 'Adam'

    def call(self, obs, action):
        return self.dense3(self.dense2(self.dense1(keras.ops.concatenate([obs, action], axis=-1))))

    def reset(self):
        pass


class MLPActorOnPos(keras.Model):
    """The feed-forward baseline: the same actor without memory."""

    def __init__(self):
        super().__init__()
        self.dense1 = keras.layers.Dense(64, activation='relu')
        self.dense2 = keras.layers.Dense(64, activation='relu')
        self.action_layer = keras.layers.Dense(1)
        self.log_std = keras.layers.Dense(1)
        self.learning_rate = 1e-3
        self.output_info = {'action': (1,), 'log_std': (1,)}
        self.input_name = ('pos',)
        self.optimizer = 'Adam'

    def call(self, pos):
        x = self.dense2(self.dense1(pos))
        return self.action_layer(x), self.log_std(x)

    def reset(self):
        pass


def main(seed: int = 0, steps: int = 50_000, sequence_length: int = 16, run_root: str = "runs",
         burn_in: int = 4):
    recurrent = sequence_length > 0
    params = SACParameters(n_epochs=steps // 50, update_interval=50, update_times=50, batch_size=256,
                           sequence_length=sequence_length if recurrent else None,
                           burn_in=burn_in if recurrent else 0, display_interval=100,
                           calculate_episodes=10, seed=seed)
    actor = Actor_net if recurrent else MLPActorOnPos
    starter = RLTaskStarter(PositionOnlyEnv("Pendulum-v1"), {"actor": actor, "qf1": Q_net, "qf2": Q_net}, SAC,
                            params, name="rsac_pendulum_pos" if recurrent else "sac_pendulum_pos",
                            run_root=run_root, progress=__name__ == "__main__")
    return starter.run()


if __name__ == "__main__":
    summary = main(*[int(a) for a in sys.argv[1:]])
    print(f"final evaluation return {summary.final_eval_return:.1f}; run directory {summary.run_dir}")
