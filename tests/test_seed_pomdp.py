"""The seed's POMDP example: an LSTM actor that sees only positions and carries its hidden
state as named inputs/outputs, with a critic that sees the full state."""
import gymnasium as gym
import keras
import numpy as np

from AquaML.BaseClass import RLBaseEnv
from AquaML.DataType import DataInfo
from AquaML.rlalgo.Parameters import SAC2_parameter
from AquaML.rlalgo.SAC2 import SAC2
from AquaML.starter.RLTaskStarter import RLTaskStarter


class Actor_net(keras.Model):  # the seed's POMDP actor; tf.keras -> keras, tf.expand_dims -> keras.ops
    def __init__(self):
        super(Actor_net, self).__init__()

        self.lstm = keras.layers.LSTM(32, input_shape=(2,), return_sequences=False, return_state=True)
        self.dense1 = keras.layers.Dense(64, activation='relu')
        self.dense2 = keras.layers.Dense(64, activation='relu')
        self.action_layer = keras.layers.Dense(1, activation='tanh')
        self.log_std = keras.layers.Dense(1)

        self.learning_rate = 2e-4

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
        self.dense1 = keras.layers.Dense(32, activation='relu')
        self.dense2 = keras.layers.Dense(1)
        self.learning_rate = 1e-3
        self.input_name = ('obs', 'action')
        self.optimizer = 'Adam'

    def call(self, obs, action):
        return self.dense2(self.dense1(keras.ops.concatenate([obs, action], axis=-1)))

    def reset(self):
        pass


class PendulumWrapper(RLBaseEnv):  # the seed's POMDP wrapper, gym -> gymnasium
    def __init__(self, env_name: str = 'Pendulum-v1'):
        super().__init__()
        self.env = gym.make(env_name)
        self.env_name = env_name
        self._obs_info = DataInfo(
            names=('obs', 'pos'),
            shapes=((3,), (2,)),
            dtypes=np.float32
        )

    def reset(self):
        observation, info = self.env.reset()
        observation = observation.reshape(1, -1)
        obs = {'obs': observation, 'pos': observation[:, :2]}
        obs = self.initial_obs(obs)
        return obs

    def step(self, action_dict):
        action = action_dict['action']
        action *= 2
        observation, reward, terminated, truncated, info = self.env.step(action)
        observation = observation.reshape(1, -1)
        obs = {'obs': observation, 'pos': observation[:, :2]}
        obs = self.check_obs(obs, action_dict)
        reward = {'total_reward': reward}
        return obs, reward, terminated, truncated, info


def test_seed_pomdp_lstm_actor_trains_with_state_outputs(run_root):
    params = SAC2_parameter(epoch_length=200, n_epochs=8, batch_size=32, mini_buffer_size=100,
                            update_interval=50, update_times=10, display_interval=4, calculate_episodes=1)
    starter = RLTaskStarter(env=PendulumWrapper(), model_class_dict={'actor': Actor_net, 'qf1': Q_net, 'qf2': Q_net},
                            algo=SAC2, algo_hyperparameter=params, run_root=run_root, progress=False)
    assert starter.state_outputs == {'hidden1': (32,), 'hidden2': (32,)}
    summary = starter.run()
    assert summary.grad_steps == 70 and np.isfinite(summary.final_eval_return)
    data = starter.buffer.data
    starts = np.flatnonzero(np.r_[True, data["truncated"][:starter.buffer.size - 1]])
    assert list(starts) == [0, 200]  # episode starts in the buffer
    for s in starts:  # hidden state is zero at every episode start, non-zero afterwards
        assert not data["obs/hidden1"][s].any() and not data["obs/hidden2"][s].any()
        assert data["obs/hidden1"][s + 1].any()
    # within an episode, the stored next hidden state is the next step's input state
    np.testing.assert_array_equal(data["next_obs/hidden1"][:199], data["obs/hidden1"][1:200])
