"""The seed's tutorial 1 (SAC on Pendulum), ported to AquaML on Keras 3.

The only changes to the seed's code: ``tf.keras`` -> ``keras``, ``tf.<op>`` ->
``keras.ops.<op>``, ``gym`` -> ``gymnasium`` (Pendulum-v1 and its five-value ``step``;
``reset`` returns ``(obs, info)``). The seed's parameters train for 10 epochs of 50
steps, a smoke run; ``python examples/tutorial1_sac_pendulum.py 400`` trains 400 epochs
(20,000 steps), enough to swing the pendulum up.

It carries the seed's "Run by MPI" block: ``mpirun -n 3 python examples/tutorial1_sac_pendulum.py``
trains with rank 0 learning and ranks 1-2 stepping the environments; without ``mpirun`` (or
without mpi4py) the same script runs in one process.
"""
import sys

# the seed's MPI block, at the head of the script
from AquaML.Tool import allocate_gpu

try:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
except ImportError:  # pip install "aquaml[mpi]" to run under mpirun
    comm = None
allocate_gpu(comm)

# AquaML first: it selects Keras' JAX backend, which must happen before keras is imported.
from AquaML.BaseClass import RLBaseEnv
from AquaML.DataType import DataInfo
from AquaML.rlalgo.Parameters import SAC2_parameter
from AquaML.rlalgo.SAC2 import SAC2
from AquaML.starter.RLTaskStarter import RLTaskStarter

import gymnasium as gym
import keras
import numpy as np


class Actor_net(keras.Model):
    def __init__(self):
        super(Actor_net, self).__init__()

        self.dense1 = keras.layers.Dense(64, activation='relu')
        self.dense2 = keras.layers.Dense(64, activation='tanh')
        self.dense3 = keras.layers.Dense(1, activation='tanh')

        self.learning_rate = 2e-4

        self.input_name = ('obs',)

        self.output_info = {'action': (1,)}

        self.optimizer = 'Adam'

    def call(self, obs):
        x = self.dense1(obs)
        x = self.dense2(x)
        x = self.dense3(x)

        # the output of actor network must be a tuple
        # and the order of output must be the same as the order of output name

        return (x,)

    def reset(self):
        pass


class Q_net(keras.Model):
    def __init__(self):
        super(Q_net, self).__init__()

        self.dense1 = keras.layers.Dense(64, activation='relu')
        self.dense2 = keras.layers.Dense(64, activation='relu')
        self.dense3 = keras.layers.Dense(1)

        self.learning_rate = 1e-3

        self.input_name = ('obs', 'action')

        self.optimizer = 'Adam'

    def call(self, obs, action):
        x = keras.ops.concatenate([obs, action], axis=-1)
        x = self.dense1(x)
        x = self.dense2(x)
        x = self.dense3(x)

        return x

    def reset(self):
        pass


class PendulumWrapper(RLBaseEnv):
    def __init__(self, env_name: str):
        super().__init__()
        # TODO: update in the future
        self.env = gym.make(env_name)
        self.env_name = env_name

        # our frame work support POMDP env
        self._obs_info = DataInfo(
            names=('obs',),
            shapes=((3,)),
            dtypes=np.float32
        )

    def reset(self):
        observation, info = self.env.reset()
        observation = observation.reshape(1, -1)

        # observation = tf.convert_to_tensor(observation, dtype=tf.float32)

        obs = {'obs': observation}

        obs = self.initial_obs(obs)

        return obs

    def step(self, action_dict):
        action = action_dict['action']
        action *= 2
        observation, reward, terminated, truncated, info = self.env.step(action)
        observation = observation.reshape(1, -1)

        obs = {'obs': observation}

        obs = self.check_obs(obs, action_dict)

        reward = {'total_reward': reward}

        return obs, reward, terminated, truncated, info


env = PendulumWrapper('Pendulum-v1')

sac_parameter = SAC2_parameter(
    epoch_length=200,
    n_epochs=10,
    batch_size=32,
    discount=0.99,
    alpha=0.2,
    tau=0.005,
    buffer_size=100000,
    mini_buffer_size=1000,
    update_interval=50,
)
if len(sys.argv) > 1:  # not in the seed: a longer run from the command line
    sac_parameter = sac_parameter.replace(n_epochs=int(sys.argv[1]), mini_buffer_size=200, display_interval=40)

model_class_dict = {
    'actor': Actor_net,
    'qf1': Q_net,
    'qf2': Q_net,
}

starter = RLTaskStarter(
    env=env,
    model_class_dict=model_class_dict,
    algo=SAC2,
    algo_hyperparameter=sac_parameter,
    mpi_comm=comm,
    name='SAC',
)

summary = starter.run()
if summary is not None:  # rank 0 (or a single process)
    print(f"final evaluation return {summary.final_eval_return:.1f}; run directory {summary.run_dir}")
