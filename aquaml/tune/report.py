"""A study's figures and report: Optuna's matplotlib plots (no browser) and ``report.md``."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

from aquaml.plot.style import paper_style, save
from aquaml.tools.imports import optional_import
from aquaml.tune.storage import mask

PLOTS = ("optimization_history", "param_importances", "intermediate_values", "parallel_coordinate")
#: complete trials before the parameter importances are drawn: from fewer, a fitted forest's
#: importances say nothing (two trials always give one parameter all of it)
MIN_IMPORTANCE_TRIALS = 5


def complete_trials(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def write_plots(study, out_dir: Path, suffix: str = ".png") -> list[str]:
    """``out_dir/<name><suffix>`` for each of :data:`PLOTS` that the study's trials allow (the
    importances from :data:`MIN_IMPORTANCE_TRIALS` complete trials, captioned with their number);
    returns their names."""
    optional_import("matplotlib", "the study's figures", "tune")  # Optuna's module imports without it
    vis = optional_import("optuna.visualization.matplotlib", "the study's figures", "tune")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    complete = complete_trials(study)
    written = []
    for name in PLOTS:
        if name == "param_importances" and complete < MIN_IMPORTANCE_TRIALS:
            continue
        try:
            with warnings.catch_warnings(), paper_style():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                ax = getattr(vis, f"plot_{name}")(study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # e.g. importances need complete trials with different values
        if name == "param_importances":
            ax.set_title(f"{ax.get_title()} (from {complete} complete trials)")
        fig = (ax.flat[0] if hasattr(ax, "flat") else ax).get_figure()
        fig.set_size_inches(8, 5)
        fig.tight_layout()
        save(fig, out_dir / f"{name}{suffix}")
        written.append(name)
    return written


def write_report(study, cfg, folder: Path, command_of, top: int = 5) -> None:
    """``report.md``: what ran, the default against the best, the best trials with their commands."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE and math.isfinite(t.value)),
                      key=lambda t: -t.value)
    default = next((t for t in complete if t.user_attrs.get("default")), None)
    lines = [f"# Study {cfg.study}: {cfg.algo} on {cfg.env}", "",
             f"{len(trials)} trials: {states.count(TrialState.COMPLETE)} complete, "
             f"{states.count(TrialState.PRUNED)} pruned, {states.count(TrialState.FAIL)} failed. Budget "
             f"{cfg.budget} steps per run, {cfg.seeds} seed(s) per trial; objective: mean of the last "
             f"{cfg.last_evals} `{cfg.objective}` values ({cfg.aggregate} over seeds); sampler {cfg.sampler}, "
             f"pruner {cfg.pruner}.", ""]
    if complete:
        best = complete[0]
        gain = f" ({best.value - default.value:+.2f} over the default, trial {default.number})" if default else ""
        lines += [f"Best: trial {best.number}, {best.value:.2f}{gain}.", "",
                  "| rank | trial | objective | command |", "|---|---|---|---|"]
        for rank, t in enumerate(complete[:top], 1):
            cmd = " ".join(command_of(t))
            lines.append(f"| {rank} | {t.number}{' (default)' if t.user_attrs.get('default') else ''} | "
                         f"{t.value:.2f} | `{cmd}` |")
        lines.append("")
    lines += ["Figures: " + ", ".join(f"[{p}](plots/{p}.png)" for p in PLOTS
                                     if (folder / "plots" / f"{p}.png").exists()), ""]
    if states.count(TrialState.COMPLETE) < MIN_IMPORTANCE_TRIALS:
        lines += [f"Parameter importances are drawn from {MIN_IMPORTANCE_TRIALS} complete trials on "
                  f"({states.count(TrialState.COMPLETE)} so far).", ""]
    lines += ["Browse the study: `optuna-dashboard " + mask(cfg.storage or str(folder / "journal.log")) + "`.", ""]
    (folder / "report.md").write_text("\n".join(lines))
