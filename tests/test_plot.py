"""aquaml plot curves|aggregate|table|tune and aquaml eval --video: figures from real short runs
(two configurations, three seeds), from SB3 / RL Zoo / CleanRL-style logs and TensorBoard files
written here; checks on the numbers behind each figure, not only that a file exists."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from aquaml.cli import main  # noqa: E402
from aquaml.plot.curves import band, common_grid, learning_curves, smooth  # noqa: E402
from aquaml.plot.logs import LogError, load_runs  # noqa: E402
from aquaml.plot.scores import final_scores, score_matrices  # noqa: E402

SMALL = {"update_interval": "50", "mini_buffer_size": "100", "display_interval": "2", "calculate_episodes": "1",
         "hidden_sizes": "16"}


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """Six real SAC runs on Pendulum: learning rates 1e-3 and 3e-3, seeds 0-2, 600 steps each
    (six evaluations)."""
    root = tmp_path_factory.mktemp("runs")
    for lr in ("0.001", "0.003"):
        for seed in range(3):
            argv = ["train", "sac", "Pendulum-v1", "--steps", "600", "--seed", str(seed), "--run-root", str(root),
                    "--name", f"lr{lr}_s{seed}", "--set", f"learning_rate={lr}"]
            assert main(argv + sum((["--set", f"{k}={v}"] for k, v in SMALL.items()), [])) == 0
    return root


def _progress(run_dir: Path) -> dict[str, np.ndarray]:
    with open(run_dir / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("env_steps", "eval_return_mean")}


def test_curves_of_real_runs_group_by_a_parameter_and_average_the_seeds(runs_root, tmp_path, capsys):
    runs = load_runs([runs_root])
    assert len(runs) == 6 and {r.config["learning_rate"] for r in runs} == {0.001, 0.003}
    curves = learning_curves(runs, group_by="learning_rate", ci="se")
    assert list(curves) == ["Pendulum-v1"] and sorted(curves["Pendulum-v1"]) == ["0.001", "0.003"]
    for lr, curve in curves["Pendulum-v1"].items():
        logged = [_progress(p) for p in sorted(runs_root.glob(f"lr{lr}_s*/*"))]
        assert curve.n_runs == 3
        np.testing.assert_array_equal(curve.x, logged[0]["env_steps"])  # same evaluation steps: no interpolation
        y = np.stack([p["eval_return_mean"] for p in logged])
        np.testing.assert_allclose(curve.mean, y.mean(axis=0), rtol=1e-12)
        half = 4.303 * y.std(axis=0, ddof=1) / np.sqrt(3)  # t(0.975, 2 degrees of freedom)
        np.testing.assert_allclose(curve.high - curve.mean, half, rtol=1e-9)
    out = tmp_path / "curves.svg"
    assert main(["plot", "curves", str(runs_root), "--group-by", "learning_rate", "--out", str(out)]) == 0
    assert out.read_text().count("<svg") == 1 and "learning_rate" in out.read_text()  # text stays text
    printed = capsys.readouterr().out
    assert "Pendulum-v1 0.001: 3 run(s)" in printed and f"wrote {out}" in printed
    # a glob of run folders reads the same runs
    assert len(load_runs([str(runs_root / "lr0.003_*")])) == 3


STORED_LOW, STORED_HIGH = [0.5, 1.25, 2.0], [3.25625, 2.75, 5.0]  # band(y, seed=3, key="g") when written


def test_the_bootstrap_band_is_seeded_and_matches_stored_numbers():
    y = np.array([[0.0, 1.0, 2.0], [1.0, 3.0, 2.5], [4.0, 2.0, 2.0], [2.0, 2.0, 6.0]])
    mean, low, high = band(y, "bootstrap", reps=1000, seed=3, key="g")
    np.testing.assert_array_equal(mean, y.mean(axis=0))
    again = band(y, "bootstrap", reps=1000, seed=3, key="g")
    np.testing.assert_array_equal(low, again[1])
    # by hand: the documented draw (whole runs resampled, rng = default_rng([seed, crc32(key)])), one loop per resample
    import zlib

    from scipy import stats

    rng = np.random.default_rng([3, zlib.crc32(b"g")])
    means = np.array([y[rng.integers(0, 4, size=4)].mean(axis=0) for _ in range(1000)])
    np.testing.assert_allclose(low, np.percentile(means, 2.5, axis=0), atol=1e-12)
    np.testing.assert_allclose(high, np.percentile(means, 97.5, axis=0), atol=1e-12)
    # and stored numbers, to catch a change of the scheme
    np.testing.assert_allclose(low, STORED_LOW, atol=1e-12)
    np.testing.assert_allclose(high, STORED_HIGH, atol=1e-12)
    assert np.all(low <= mean) and np.all(mean <= high)
    m, lo, hi = band(y, "sd")
    np.testing.assert_allclose(hi - m, y.std(axis=0, ddof=1))
    m, lo, hi = band(y, "se")  # Student's t with n - 1 = 3 degrees of freedom
    np.testing.assert_allclose(hi - m, stats.t.ppf(0.975, 3) * stats.sem(y, axis=0), rtol=3e-4)  # table to 3 decimals
    assert band(y[:1], "bootstrap")[1][0] == y[0, 0]  # one run: no band


def test_seeds_logged_at_different_steps_are_interpolated_onto_the_common_range(tmp_path):
    # RL Zoo layout, SB3 EvalCallback files: seed 1 evaluates every 1000 steps, seed 2 every 1500 from 500
    steps = {1: np.arange(1000, 10001, 1000), 2: np.arange(500, 9001, 1500)}
    for n, s in steps.items():
        folder = tmp_path / "logs" / "sac" / f"Pendulum-v1_{n}"
        folder.mkdir(parents=True)
        results = np.stack([-1000 + 0.1 * n * s, -1000 + 0.1 * n * s + 2], axis=1)  # two episodes each
        np.savez(folder / "evaluations.npz", timesteps=s, results=results, ep_lengths=np.full_like(results, 200))
    runs = load_runs([tmp_path / "logs"])
    assert [r.source for r in runs] == ["sb3-evaluations"] * 2
    assert {r.config["algo"] for r in runs} == {"sac (sb3)"} and {r.config["env"] for r in runs} == {"Pendulum-v1"}
    curve = learning_curves(runs, ci="none")["Pendulum-v1"]["sac (sb3)"]
    # the range both cover: 1000 (seed 1's first) .. 8000 (seed 2's last); the grid: both seeds' steps inside it
    expected_x = np.unique(np.concatenate([s[(s >= 1000) & (s <= 8000)] for s in steps.values()]))
    np.testing.assert_array_equal(curve.x, expected_x)
    y1 = np.interp(expected_x, steps[1], -999 + 0.1 * steps[1])
    y2 = np.interp(expected_x, steps[2], -999 + 0.2 * steps[2])
    np.testing.assert_allclose(curve.mean, (y1 + y2) / 2)
    np.testing.assert_array_equal(common_grid([np.arange(5.0), np.arange(5.0)], max_points=3), [0.0, 2.0, 4.0])
    np.testing.assert_allclose(smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])


def test_sb3_monitor_progress_and_tensorboard_logs_plot_beside_aquaml_runs(runs_root, tmp_path, capsys):
    from tensorboardX import SummaryWriter

    zoo = tmp_path / "logs" / "td3" / "Pendulum-v1_1"
    zoo.mkdir(parents=True)
    (zoo / "0.monitor.csv").write_text('#{"t_start": 0, "env_id": "Pendulum-v1"}\nr,l,t\n'
                                       "-1500.5,200,1.5\n-900.25,200,3.0\n-300.0,200,4.5\n")
    # a second env of the same vector env, and a line still being written (no newline yet)
    (zoo / "1.monitor.csv").write_text('#{"t_start": 0, "env_id": "Pendulum-v1"}\nr,l,t\n'
                                       "-1400.0,200,1.6\n-200.0,100,3.2\n-100.0,2")
    with open(zoo / "progress.csv", "w") as f:  # SB3's logger leaves keys of other moments empty
        f.write("time/total_timesteps,rollout/ep_rew_mean,eval/mean_reward,time/time_elapsed\n"
                "200,-1500.5,,1\n400,-1200.4,-800.0,2\n600,-900.0,,3\n")
    clean = tmp_path / "runs" / "Pendulum-v1__ppo_continuous_action__1__1700000000"
    writer = SummaryWriter(str(clean))
    for step, value in [(100, -1400.0), (300, -700.5), (600, -250.25)]:
        writer.add_scalar("charts/episodic_return", value, step)
    writer.close()

    monitor, = load_runs([zoo / "0.monitor.csv"])
    np.testing.assert_array_equal(monitor.columns["env_steps"], [200, 400, 600])
    np.testing.assert_array_equal(monitor.columns["train_return_mean"], [-1500.5, -900.25, -300.0])
    (zoo / "progress.csv").rename(zoo / "progress.tmp")  # the folder's logs are then its two monitors
    both, = load_runs([zoo])
    (zoo / "progress.tmp").rename(zoo / "progress.csv")
    assert both.source == "sb3-monitor" and len(both.files) == 2
    np.testing.assert_array_equal(both.columns["wall_time_s"], [1.5, 1.6, 3.0, 3.2, 4.5])  # in the order they ended
    np.testing.assert_array_equal(both.columns["env_steps"], [200, 400, 600, 700, 900])
    np.testing.assert_array_equal(both.columns["train_return_mean"], [-1500.5, -1400.0, -900.25, -200.0, -300.0])
    progress, = load_runs([zoo / "progress.csv"])
    np.testing.assert_array_equal(progress.columns["eval_return_mean"], [np.nan, -800.0, np.nan])
    assert progress.config["algo"] == "td3 (sb3)"
    tb, = load_runs([tmp_path / "runs"])
    assert tb.source == "tensorboard" and tb.config["algo"] == "ppo_continuous_action (tensorboard)"
    assert tb.config["env"] == "Pendulum-v1" and tb.config["seed"] == 1
    np.testing.assert_array_equal(tb.columns["env_steps"], [100, 300, 600])
    np.testing.assert_array_equal(tb.columns["charts/episodic_return"], [-1400.0, -700.5, -250.25])
    # the folder of the SB3 run: its evaluations come from progress.csv (no evaluations.npz there)
    assert load_runs([zoo])[0].source == "sb3-progress"

    # AquaML's runs beside SB3's training return: one figure, one group each
    curves = learning_curves(load_runs([runs_root, zoo / "0.monitor.csv"]), metric="train_return_mean", ci="none")
    assert sorted(curves["Pendulum-v1"]) == ["sac", "td3 (sb3)"]
    np.testing.assert_array_equal(curves["Pendulum-v1"]["td3 (sb3)"].mean, [-1500.5, -900.25, -300.0])
    out = tmp_path / "mixed.pdf"
    assert main(["plot", "curves", str(runs_root), str(zoo / "0.monitor.csv"), "--metric", "train_return_mean",
                 "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"%PDF"
    assert main(["plot", "curves", str(runs_root), str(tmp_path / "runs"), "--metric", "charts/episodic_return",
                 "--out", str(out)]) == 0
    warnings = capsys.readouterr().err.splitlines()  # AquaML runs have no such column: left out, each named
    assert len(warnings) == 6 and all(w.startswith("aquaml plot: warning: left out ") for w in warnings)
    assert all("no column 'charts/episodic_return'" in w for w in warnings)


def test_mixed_runs_offline_against_gradient_steps_single_evaluations_as_markers_and_left_out_runs_named(
        tmp_path, monkeypatch, capsys):
    import aquaml.plot.curves as curves_module

    rows = lambda x, y: "".join(f"{a},{b}\n" for a, b in zip(x, y))  # noqa: E731
    for seed in (0, 1):
        _run_folder(tmp_path / f"sac{seed}", "sac", "Pendulum-v1",
                    "env_steps,grad_steps,eval_return_mean\n" + rows(["1000,50", "2000,100"], [-900 + seed, -500]))
        _run_folder(tmp_path / f"bc{seed}", "bc", "Pendulum-v1",  # offline: env step 0 in every row
                    "env_steps,grad_steps,eval_return_mean\n" + rows(["0,500", "0,1000"], [-700 + seed, -300 + seed]))
    _run_folder(tmp_path / "td3", "td3", "Pendulum-v1", "env_steps,eval_return_mean\n20000,-150.5\n")  # one evaluation
    _run_folder(tmp_path / "nometric", "sac", "Pendulum-v1", "env_steps,q_loss\n100,1.0\n")
    _run_folder(tmp_path / "diverged", "td3", "Pendulum-v1", "env_steps,eval_return_mean\n50,-900\n100,inf\n")
    curves = learning_curves(load_runs([tmp_path]), ci="none")
    assert {p: sorted(g) for p, g in curves.items()} == {"Pendulum-v1": ["sac", "td3"],
                                                           "Pendulum-v1 (offline)": ["bc"]}
    bc = curves["Pendulum-v1 (offline)"]["bc"]
    assert bc.x_name == "grad_steps" and list(bc.x) == [500, 1000] and list(bc.mean) == [-699.5, -299.5]
    assert [(Path(p).name, why.split(";")[0]) for p, why in curves.left_out] == [
        ("diverged", "eval_return_mean logged inf at row 2 after finite values (the run diverged)"),
        ("nometric", "no column 'eval_return_mean'")]

    figures = []
    monkeypatch.setattr(curves_module, "save", lambda fig, out: figures.append(fig) or Path(out))
    assert main(["plot", "curves", str(tmp_path), "--out", str(tmp_path / "f.png")]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"aquaml plot: warning: left out {tmp_path / 'diverged'}: {curves.left_out[0][1]}",
                                f"aquaml plot: warning: left out {tmp_path / 'nometric'}: {curves.left_out[1][1]}"]
    assert "Pendulum-v1 (offline) bc: 2 run(s), final eval_return_mean -299.50" in out and "at grad_steps 1000" in out
    online, offline = figures[0].axes[:2]
    assert offline.get_xlabel() == "Gradient steps" and online.get_xlabel() == "Environment steps"
    marker = [line for line in online.lines if line.get_marker() == "o"]  # td3's one evaluation: a marker
    assert len(marker) == 1 and list(marker[0].get_xdata()) == [20000] and marker[0].get_linestyle() == "None"
    for ax in (online, offline):  # the axis starts at 0: no negative step ticks
        assert ax.get_xlim()[0] == 0
    legend = figures[0].legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["sac (n=2)", "td3 (n=1)", "bc (n=2)"]

    # a run evaluated once, alone: a marker with room around it, not an empty panel with ticks at -40m
    figures.clear()
    assert main(["plot", "curves", str(tmp_path / "td3"), "--out", str(tmp_path / "f.png")]) == 0
    ax = figures[0].axes[0]
    assert ax.get_xlim() == (0, 25000) and min(ax.get_xticks()) == 0


def _cie_lab(hex_color: str, simulate=None) -> np.ndarray:
    """CIELAB (D65) of an sRGB colour, optionally through a colour-vision-deficiency matrix (linear RGB)."""
    c = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    rgb = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    rgb = np.clip(simulate @ rgb, 0, 1) if simulate is not None else rgb
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    f = np.cbrt(xyz / [0.95047, 1.0, 1.08883])
    f = np.where(xyz / [0.95047, 1.0, 1.08883] > 0.008856, f, 7.787 * xyz / [0.95047, 1.0, 1.08883] + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> float:
    """CIEDE2000 colour difference (Sharma, Wu and Dalal 2005)."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean ** 7 / (c_mean ** 7 + 25 ** 7)))
    a1, a2 = a1 * (1 + g), a2 * (1 + g)
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1)) % 360, np.degrees(np.arctan2(b2, a2)) % 360
    dh = h2 - h1 - 360 * np.sign(h2 - h1) * (abs(h2 - h1) > 180) if c1 * c2 else 0.0
    d_h = 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh / 2))
    l_mean, c_mean = (l1 + l2) / 2, (c1 + c2) / 2
    h_mean = (h1 + h2) / 2 + 180 * (abs(h1 - h2) > 180) * (1 if h1 + h2 < 360 else -1) if c1 * c2 else h1 + h2
    t = (1 - 0.17 * np.cos(np.radians(h_mean - 30)) + 0.24 * np.cos(np.radians(2 * h_mean))
         + 0.32 * np.cos(np.radians(3 * h_mean + 6)) - 0.2 * np.cos(np.radians(4 * h_mean - 63)))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * c_mean, 1 + 0.015 * c_mean * t
    rotation = np.sin(np.radians(60 * np.exp(-((h_mean - 275) / 25) ** 2)))
    r_t = -2 * np.sqrt(c_mean ** 7 / (c_mean ** 7 + 25 ** 7)) * rotation
    return float(np.sqrt(((l2 - l1) / s_l) ** 2 + ((c2 - c1) / s_c) ** 2 + (d_h / s_h) ** 2
                         + r_t * (c2 - c1) / s_c * d_h / s_h))


#: Machado, Oliveira and Fernandes (2009), severity 1, on linear RGB
DEUTERANOPIA = np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                         [-0.011820, 0.042940, 0.968881]])
PROTANOPIA = np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                       [-0.003882, -0.048116, 1.051998]])


def test_eight_groups_get_colours_that_readers_and_colour_blind_readers_tell_apart():
    from itertools import combinations

    from aquaml.plot.style import PALETTE, styles_for

    # the formula against Sharma et al.'s published test pairs
    assert round(_ciede2000(np.array([50, 2.6772, -79.7751]), np.array([50, 0, -82.7485])), 4) == 2.0425
    assert round(_ciede2000(np.array([50, 2.5, 0]), np.array([73, 25, -18])), 4) == 27.1492
    minimum = {name: min(_ciede2000(_cie_lab(a, m), _cie_lab(b, m)) for a, b in combinations(PALETTE, 2))
               for name, m in (("normal", None), ("deuteranopia", DEUTERANOPIA), ("protanopia", PROTANOPIA))}
    assert minimum["normal"] >= 20 and minimum["deuteranopia"] >= 14 and minimum["protanopia"] >= 14, minimum
    # Okabe-Ito's orange and vermillion (bc and sac before) were closer under deuteranopia
    assert _ciede2000(_cie_lab("#E69F00", DEUTERANOPIA), _cie_lab("#D55E00", DEUTERANOPIA)) < 13

    groups = ["sac", "td3", "ppo", "bc", "dagger", "gail", "airl", "amp"]
    styles = styles_for(groups)
    assert len({s.color for s in styles.values()}) == 8 and {s.linestyle for s in styles.values()} == {"-"}
    ninth = styles_for([*groups, "iql"])
    assert len(set(ninth.values())) == 9 and sum(s.linestyle == "--" and s.marker == "s" for s in ninth.values()) == 1


def test_aggregate_and_table_of_real_runs(runs_root, tmp_path, capsys):
    from aquaml.plot.stats import aggregate_intervals, normalize

    raw = final_scores(load_runs([runs_root]), group_by="learning_rate", last=2)
    for lr in ("0.001", "0.003"):
        expected = [_progress(p)["eval_return_mean"][-2:].mean() for p in sorted(runs_root.glob(f"lr{lr}_s*/*"))]
        np.testing.assert_allclose(raw[lr]["Pendulum-v1"], expected)
    ref = tmp_path / "ref.yaml"
    ref.write_text("Pendulum-v1: {random: -1200.0, expert: -150.0}\n")
    out = tmp_path / "agg.png"
    assert main(["plot", "aggregate", str(runs_root), "--group-by", "learning_rate", "--last", "2", "--normalize",
                 str(ref), "--reps", "500", "--out", str(out)]) == 0
    assert out.exists() and (tmp_path / "agg_profile.png").exists() and (tmp_path / "agg_improvement.png").exists()
    scores = score_matrices(raw, {"Pendulum-v1": {"random": -1200.0, "expert": -150.0}})
    np.testing.assert_allclose(scores["0.001"][:, 0], normalize(raw["0.001"], {"Pendulum-v1": {"random": -1200.0,
                                                                                                 "expert": -150.0}})["Pendulum-v1"])
    iqm = aggregate_intervals(scores, reps=500)["0.003"]["IQM"]
    assert "0.003: Median" in capsys.readouterr().out
    assert main(["plot", "table", str(runs_root), "--group-by", "learning_rate", "--last", "2", "--normalize",
                 str(ref), "--reps", "500", "--format", "latex"]) == 0
    table = capsys.readouterr().out
    assert "\\toprule" in table and f"{iqm.point:.3f} [{iqm.low:.3f}, {iqm.high:.3f}]" in table


def _run_folder(folder: Path, algo: str, env: str, progress: str) -> Path:
    """A hand-written AquaML run folder: ``config.json`` and the given ``progress.csv`` text."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"algo": algo, "env": env, "parameters": {}}))
    (folder / "progress.csv").write_text(progress)
    return folder


def test_bad_plot_input_names_the_culprit(runs_root, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    unfinished = _run_folder(tmp_path / "unfinished", "sac", "Pendulum-v1", "env_steps,eval_return_mean\n")
    other_env = _run_folder(tmp_path / "other", "sac", "Hopper-v4", "env_steps,eval_return_mean\n100,5.0\n")
    diverged = _run_folder(tmp_path / "diverged", "sac", "Pendulum-v1",
                           "env_steps,eval_return_mean,q_loss\n50,nan,\n100,-900.5,\n200,nan,1.0\n")
    stuck = _run_folder(tmp_path / "stuck", "sac", "Pendulum-v1", "env_steps,eval_return_mean\n100,-900\n100,-800\n")
    cases = [
        (["curves", str(diverged)], "eval_return_mean logged nan at row 3 after finite values (the run diverged)"),
        (["curves", str(stuck)], "env_steps stays at 100 in every row"),
        (["curves", str(stuck), str(diverged)], "env_steps stays at 100 in every row (1 more runs left out)"),
        (["curves", str(tmp_path / "empty")], "empty: not a run"),
        (["curves", str(tmp_path / "nothing*")], "no such file or folder"),
        (["curves", str(unfinished)], "no eval_return_mean row logged yet"),
        (["curves", str(runs_root), "--metric", "eval_retrun_mean"], "no column 'eval_retrun_mean'; it has"),
        (["curves", str(runs_root), "--group-by", "lr"], "no key 'lr' to group by; it has"),
        (["curves", str(runs_root), "--out", "x.jpg"], "choose one of those suffixes"),
        (["aggregate", str(runs_root), str(other_env)], "only comparable normalised: pass --normalize"),
        (["table", str(runs_root), "--normalize", str(tmp_path / "missing.yaml")], "missing.yaml"),
        (["tune", str(tmp_path / "empty")], "not a study folder"),
    ]
    for argv, message in cases:
        assert main(["plot", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (argv, err)
    with pytest.raises(LogError, match="not a run"):
        load_runs([tmp_path / "empty"])


def test_plot_tune_draws_a_study_from_its_folder(tmp_path):
    import optuna

    from aquaml.tune import TuneConfig
    from aquaml.tune.study import open_study

    cfg = TuneConfig("sac", "Pendulum-v1", 6, 1000, study="s", folder=str(tmp_path / "study"), sampler="random",
                     pruner="none")
    cfg.path.mkdir(parents=True)
    (cfg.path / "study.json").write_text(json.dumps(cfg.__dict__))
    study = open_study(cfg)
    for i, lr in enumerate([1e-3, 2e-3, 5e-4, 3e-3, 7e-4, 1.5e-3]):
        trial = study.ask({"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
                           "batch_size": optuna.distributions.CategoricalDistribution([64, 256])})
        for step in (500, 1000):
            trial.report(-1000 + i * 100 + step / 10, step)
        study.tell(trial, -1000 + i * 100 + 100)
    out = tmp_path / "figs"
    assert main(["plot", "tune", str(cfg.path), "--out", str(out), "--format", "svg"]) == 0
    assert {p.name for p in out.iterdir()} >= {"optimization_history.svg", "intermediate_values.svg",
                                              "param_importances.svg", "parallel_coordinate.svg"}


def test_eval_video_renders_the_evaluation_episode_headless(runs_root, tmp_path, capsys):
    import imageio.v3 as iio
    from PIL import Image

    run_dir = next((runs_root / "lr0.001_s0").iterdir())
    mp4 = tmp_path / "episode.mp4"
    assert main(["eval", str(run_dir), "--video", str(mp4)]) == 0
    frames = list(iio.imiter(mp4))
    assert len(frames) == 201 and frames[0].shape == (500, 500, 3)  # reset + 200 steps of Pendulum
    assert "201 frames" in capsys.readouterr().out
    gif = tmp_path / "episode.gif"
    assert main(["eval", str(run_dir), "--video", str(gif), "--episodes", "2"]) == 0
    with Image.open(gif) as im:  # Pillow merges identical frames, adding up their durations
        durations = []
        for k in range(im.n_frames):
            im.seek(k)
            durations.append(im.info["duration"])
    assert sum(durations) == 402 * 30  # 30 fps: 3 centiseconds per frame
    # the video's episode is the first that `aquaml eval` runs: the same return
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--video", str(mp4)]) == 0
    video_return = capsys.readouterr().out.split("return ")[1].split(":")[0]
    assert main(["eval", str(run_dir), "--episodes", "1"]) == 0
    assert f"return {video_return} +- 0.00" in capsys.readouterr().out
    assert main(["eval", str(run_dir), "--video", str(tmp_path / "v.avi")]) == 2
    assert not list(tmp_path.glob(".*tmp*"))  # no half-written video left
