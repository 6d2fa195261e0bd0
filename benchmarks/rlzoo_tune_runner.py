"""Runs inside RL Baselines3 Zoo's own virtual environment (see tune_vs_rlzoo.py).

Usage: python rlzoo_tune_runner.py JOURNAL STUDY BUDGET SEEDS EPISODES [FIRST_SEED]

Reads the study that ``python -m rl_zoo3.train -optimize --storage JOURNAL --study-name STUDY``
left in Optuna's journal file and prints one JSON line with its trials (state, value, sampled
parameters, start and end times), the best trial and RL Zoo's conversion of its sampled
parameters to Stable-Baselines3 arguments (``rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER``:
``net_arch`` names become layer sizes, ``batch_size_pow`` a batch size, ``one_minus_gamma`` gamma,
``train_freq`` also ``gradient_steps``), merged over RL Zoo's own Pendulum-v1 defaults for SAC
(``rl_zoo3/hyperparams/sac.yml``), exactly as ``train.py --trial-id`` would merge them.

Then it confirms that configuration: SB3 SAC trained for BUDGET env steps on each of SEEDS fresh
seeds (FIRST_SEED, FIRST_SEED+1, ...; default 1000), each evaluated on EPISODES deterministic
episodes at the end; one JSON line per seed (the mean return and the training seconds).
"""
import json
import sys
import time
from importlib import metadata
from pathlib import Path


def versions() -> dict:
    out = {}
    for name in ("rl_zoo3", "stable_baselines3", "sb3_contrib", "gymnasium", "optuna", "torch", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def best_configuration(journal: str, name: str) -> tuple[dict, dict]:
    """The study's summary (JSON-ready) and the SB3 keyword arguments of its best trial."""
    import optuna
    import yaml
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    import rl_zoo3
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER

    study = optuna.load_study(storage=JournalStorage(JournalFileBackend(journal)), study_name=name)
    trials = [{"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": t.params,
               "start": t.datetime_start.timestamp() if t.datetime_start else None,
               "end": t.datetime_complete.timestamp() if t.datetime_complete else None}
              for t in study.get_trials(deepcopy=False)]
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not complete:
        return {"trials": trials, "best": None, "versions": versions()}, {}
    best = study.best_trial
    defaults = yaml.safe_load((Path(rl_zoo3.__file__).parent / "hyperparams" / "sac.yml").read_text())["Pendulum-v1"]
    kwargs = {k: v for k, v in defaults.items() if k != "n_timesteps"}
    kwargs.update(HYPERPARAMS_CONVERTER["sac"](dict(best.params)))
    shown = {k: (v if isinstance(v, (int, float, str, list, dict)) else repr(v)) for k, v in kwargs.items()}
    summary = {"trials": trials, "versions": versions(),
               "best": {"number": best.number, "value": best.value, "params": best.params, "sb3_kwargs": shown}}
    return summary, kwargs


def confirm_one(kwargs: dict, budget: int, seed: int, episodes: int) -> dict:
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    kwargs = dict(kwargs)
    policy = kwargs.pop("policy", "MlpPolicy")
    start = time.perf_counter()
    model = SAC(policy, make_vec_env("Pendulum-v1", n_envs=1, seed=seed), seed=seed, device="cpu", verbose=0,
                **kwargs)
    model.learn(total_timesteps=budget)
    train_s = time.perf_counter() - start
    eval_env = make_vec_env("Pendulum-v1", n_envs=1, seed=seed + 1)
    mean_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=episodes, deterministic=True)
    return {"seed": seed, "return": float(mean_return), "train_s": train_s}


def main() -> None:
    journal, name = sys.argv[1], sys.argv[2]
    budget, seeds, episodes = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    first = int(sys.argv[6]) if len(sys.argv) > 6 else 1000
    import torch

    torch.set_num_threads(1)
    summary, kwargs = best_configuration(journal, name)
    print(json.dumps({"summary": summary}), flush=True)
    if not kwargs:
        return
    for seed in range(first, first + seeds):
        print(json.dumps({"confirm": confirm_one(kwargs, budget, seed, episodes)}), flush=True)


if __name__ == "__main__":
    main()
