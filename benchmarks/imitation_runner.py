"""Runs inside the ``imitation`` library's own virtual environment (see gail_vs_imitation.py).

Usage: python imitation_runner.py DEMOS.npz BUDGET CHUNK SEED SETTINGS_JSON
Trains imitation's GAIL (PPO generator with RL Zoo's tuned Pendulum settings) from AquaML's
demonstration file (numpy only, no pickle) and prints one JSON line after every CHUNK env steps:
the env steps so far, the training seconds so far (evaluations excluded) and the deterministic
returns on the given evaluation seeds.
"""
import json
import sys
import time

import numpy as np
import torch


def main() -> None:
    path, budget, chunk, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    settings = json.loads(sys.argv[5])
    torch.set_num_threads(1)
    import gymnasium as gym
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.data import rollout
    from imitation.data.types import Trajectory
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util.networks import RunningNorm
    from imitation.util.util import make_vec_env
    from stable_baselines3 import PPO

    with np.load(path, allow_pickle=False) as z:
        obs, action, lengths = z["observations/obs"], z["action"], z["episode_lengths"]
        terminated = z["terminated"]
    scale = 2.0  # Pendulum's action bound: AquaML stores actions in [-1, 1]
    trajectories, o, a = [], 0, 0
    for T in lengths:
        trajectories.append(Trajectory(obs=obs[o:o + T + 1], acts=action[a:a + T] * scale, infos=None,
                                       terminal=bool(terminated[a + T - 1])))
        o, a = o + T + 1, a + T
    demos = rollout.flatten_trajectories(trajectories)
    rng = np.random.default_rng(seed)
    venv = make_vec_env("Pendulum-v1", rng=rng, n_envs=4)
    learner = PPO("MlpPolicy", venv, n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0,
                  learning_rate=1e-3, clip_range=0.2, use_sde=True, sde_sample_freq=4, seed=seed, device="cpu")
    reward_net = BasicRewardNet(venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm)
    trainer = GAIL(demonstrations=demos, demo_batch_size=1024, gen_replay_buffer_capacity=4096,
                   n_disc_updates_per_round=4, venv=venv, gen_algo=learner, reward_net=reward_net,
                   allow_variable_horizon=False)
    env = gym.make("Pendulum-v1")
    trained, train_s = 0, 0.0
    while trained < budget:
        start = time.perf_counter()
        trainer.train(chunk)
        train_s += time.perf_counter() - start
        trained += chunk
        returns = []
        for episode_seed in settings["eval_seeds"]:
            o, _ = env.reset(seed=episode_seed)
            ret, done = 0.0, False
            while not done:
                act, _ = learner.predict(o, deterministic=True)
                o, r, term, trunc, _ = env.step(act)
                ret, done = ret + float(r), term or trunc
            returns.append(ret)
        print(json.dumps({"env_steps": trained, "train_s": train_s, "returns": returns}), flush=True)


if __name__ == "__main__":
    main()
