"""Runs inside d3rlpy's own virtual environment (see offline_vs_d3rlpy.py); prints one JSON line.

Usage: python d3rlpy_runner.py DATASET.npz ALGO STEPS SEED SETTINGS_JSON
Reads an AquaML dataset file (numpy only, no pickle), trains d3rlpy's BC / TD3PlusBC / IQL with
the given settings on one thread, and evaluates the deterministic policy on the given seeds.
"""
import json
import sys
import time

import numpy as np
import torch


def main() -> None:
    path, algo_name, steps, seed, settings = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
        json.loads(sys.argv[5])
    torch.set_num_threads(1)
    import d3rlpy
    import gymnasium as gym

    d3rlpy.seed(seed)
    with np.load(path, allow_pickle=False) as z:
        obs, action, reward = z["observations/obs"], z["action"], z["reward"]
        terminated, lengths = z["terminated"], z["episode_lengths"]
    # AquaML stores T + 1 observations per episode; d3rlpy one per step (the last is implied)
    keep = np.ones(len(obs), bool)
    keep[np.cumsum(lengths + 1) - 1] = False
    last = np.zeros(len(action), bool)
    last[np.cumsum(lengths) - 1] = True  # episodes end in a termination or, else, a timeout
    dataset = d3rlpy.dataset.MDPDataset(obs[keep], action.astype(np.float32), reward.astype(np.float32),
                                        (terminated & last).astype(np.float32), (last & ~terminated).astype(np.float32))
    hidden = d3rlpy.models.VectorEncoderFactory(settings["hidden"])
    scaler = d3rlpy.preprocessing.StandardObservationScaler()
    common = dict(batch_size=settings["batch_size"], observation_scaler=scaler)
    if algo_name == "bc":
        config = d3rlpy.algos.BCConfig(learning_rate=settings["lr"], encoder_factory=hidden,
                                       policy_type="stochastic", **common)
    elif algo_name == "td3bc":
        config = d3rlpy.algos.TD3PlusBCConfig(actor_learning_rate=settings["lr"], critic_learning_rate=settings["lr"],
                                              actor_encoder_factory=hidden, critic_encoder_factory=hidden,
                                              alpha=settings["alpha"], **common)
    else:
        config = d3rlpy.algos.IQLConfig(actor_learning_rate=settings["lr"], critic_learning_rate=settings["lr"],
                                        actor_encoder_factory=hidden, critic_encoder_factory=hidden,
                                        value_encoder_factory=hidden, expectile=settings["expectile"],
                                        weight_temp=settings["temperature"], max_weight=settings["max_weight"],
                                        **common)
    algo = config.create(device="cpu:0")
    marks: dict[int, float] = {}

    def callback(_algo, _epoch, total_step):
        if total_step in (settings["warmup"], steps):
            marks[total_step] = time.perf_counter()

    start = time.perf_counter()
    algo.fit(dataset, n_steps=steps, n_steps_per_epoch=steps, show_progress=False, save_interval=10**9,
             logger_adapter=d3rlpy.logging.NoopAdapterFactory(), callback=callback)
    total = time.perf_counter() - start
    env = gym.make("Pendulum-v1")
    scale = float(env.action_space.high[0])
    returns = []
    for episode_seed in settings["eval_seeds"]:
        o, _ = env.reset(seed=episode_seed)
        ret, done = 0.0, False
        while not done:
            a = algo.predict(o[None].astype(np.float32))[0]
            o, r, term, trunc, _ = env.step(np.clip(a, -1, 1) * scale)
            ret, done = ret + float(r), term or trunc
        returns.append(ret)
    per_step = (marks[steps] - marks[settings["warmup"]]) / (steps - settings["warmup"])
    print(json.dumps({"per_step_ms": 1000 * per_step, "train_s": total, "returns": returns,
                      "versions": {"d3rlpy": d3rlpy.__version__, "torch": torch.__version__,
                                   "gymnasium": gym.__version__}}))


if __name__ == "__main__":
    main()
