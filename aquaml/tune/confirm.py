"""``aquaml tune confirm``: rerun the best configurations and the default on fresh seeds.

A study's best trial won on its own seeds; tuning gains that do not hold on new seeds are
noise. The top configurations and the default are trained again on seeds the study never used
(1000, 1001, ...), without pruning, and ``confirm.md`` reports each one's objective on them and
whether the study's ranking holds.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from aquaml.algorithm.parameters import max_steps
from aquaml.tune.process import TrialProcess
from aquaml.tune.trial import run_trial

FRESH_SEED = 1000  #: the first seed of a confirmation (a study uses seeds 0..K-1)


def confirm(study, cfg, top: int, seeds: int, log=print) -> list[dict]:
    """Rows ``{trial, default, tuned, confirmed, std, values, rank_in_study}``, best confirmed first."""
    from optuna.trial import TrialState

    if max_steps() is not None:  # a testing aid (docs/outputs.md): the best trial and the default, on one seed
        top, seeds = 1, 1
    complete = sorted((t for t in study.get_trials(deepcopy=False)
                       if t.state == TrialState.COMPLETE and math.isfinite(t.value)), key=lambda t: -t.value)
    if not complete:
        raise ValueError(f"{cfg.path} has no complete trial to confirm")
    chosen = complete[:top]
    default = next((t for t in complete if t.user_attrs.get("default")), None)
    if default is not None and default not in chosen:
        chosen.append(default)
    rows = []
    with TrialProcess() as process:  # one warm process runs every confirmation
        for t in chosen:
            outcome = run_trial(cfg.algo, cfg.env, cfg.budget, list(range(FRESH_SEED, FRESH_SEED + seeds)),
                                {**cfg.sets, **t.user_attrs["assignments"]},
                                cfg.path / "confirm" / f"trial_{t.number:04d}", lambda value, step: False,
                                cfg.objective, cfg.last_evals, cfg.aggregate, process=process)
            if outcome.state != "complete":
                raise RuntimeError(f"confirming trial {t.number} failed:\n{outcome.error}")
            rows.append({"trial": t.number, "default": bool(t.user_attrs.get("default")), "tuned": t.value,
                         "confirmed": outcome.value, "std": float(np.std(outcome.seed_values)),
                         "values": outcome.seed_values, "rank_in_study": complete.index(t) + 1})
            log(f"trial {t.number}: study {t.value:.2f}, fresh seeds {outcome.value:.2f}")
    rows.sort(key=lambda r: -r["confirmed"])
    write_confirmation(rows, cfg, seeds)
    return rows


def write_confirmation(rows: list[dict], cfg, seeds: int) -> None:
    best_in_study = min(rows, key=lambda r: r["rank_in_study"])
    default = next((r for r in rows if r["default"]), None)
    holds = rows[0]["trial"] == best_in_study["trial"]
    beats = default is None or best_in_study["confirmed"] > default["confirmed"]
    lines = [f"# Confirmation of study {cfg.study}", "",
             f"Seeds {FRESH_SEED}..{FRESH_SEED + seeds - 1} (the study used 0..{cfg.seeds - 1}), budget {cfg.budget}, "
             "no pruning.", "", "| trial | study rank | study objective | fresh seeds (mean +- std) |", "|---|---|---|---|"]
    for r in rows:
        name = f"{r['trial']}{' (default)' if r['default'] else ''}"
        lines.append(f"| {name} | {r['rank_in_study']} | {r['tuned']:.2f} | {r['confirmed']:.2f} +- {r['std']:.2f} |")
    if default is None or default is best_in_study:
        versus = "" if default is None else " (it is the default configuration)"
    else:
        versus = f", and it {'beats' if beats else 'does not beat'} the default there"
    lines += ["", f"The study's best (trial {best_in_study['trial']}) is {'still' if holds else 'no longer'} the best on "
              f"fresh seeds{versus}.", ""]
    (Path(cfg.path) / "confirm.md").write_text("\n".join(lines))
