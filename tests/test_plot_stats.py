"""aquaml.plot.stats and aquaml.plot.aggregate: rliable-style aggregates, their CIs, figures and tables.

Every statistic is checked against an independent reference (scipy, plain loops) and, where the
``rliable`` package is installed, against rliable itself.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from aquaml.plot import aggregate as A
from aquaml.plot import stats as S

RNG = np.random.default_rng(123)
# two groups with different run counts on the same five tasks, scores in [0, 1]
SCORES = {"a": RNG.uniform(0, 1, (10, 5)), "b": RNG.beta(2, 3, (7, 5))}
# a pair with more runs on two tasks, for probability of improvement against rliable (whose
# scipy-per-task bootstrap is slow: its cost grows with reps x tasks)
PX, PY = RNG.uniform(0, 1, (30, 2)), RNG.beta(2, 3, (25, 2))


def _loop_iqm(x):
    return scipy.stats.trim_mean(np.ravel(x), 0.25)


# ----------------------------------------------------------------------------- point estimates


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (7, 5), (10, 1), (4, 6)])
def test_iqm_is_scipy_trim_mean(shape):
    x = np.random.default_rng(sum(shape)).normal(size=shape)
    assert S.iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25, axis=None), rel=1e-14, abs=1e-15)
    batch = np.random.default_rng(1).normal(size=(6,) + shape)
    np.testing.assert_allclose(S.iqm(batch), [_loop_iqm(b) for b in batch], rtol=1e-14, atol=1e-15)


def test_mean_median_are_over_per_task_means():
    x = SCORES["a"]
    task_means = [np.mean(x[:, t]) for t in range(x.shape[1])]
    assert S.mean(x) == pytest.approx(sum(task_means) / len(task_means), rel=1e-14)
    assert S.median(x) == pytest.approx(sorted(task_means)[2], rel=1e-14)
    assert S.median(x[:, :1]) == pytest.approx(S.mean(x[:, :1]), rel=1e-14)


@pytest.mark.parametrize("gamma", [1.0, 0.5])
def test_optimality_gap_by_loop(gamma):
    x = SCORES["b"] * 1.5  # some scores above gamma: they must count 0, not negative
    gaps = [max(gamma - v, 0.0) for v in x.ravel()]
    assert S.optimality_gap(x, gamma) == pytest.approx(sum(gaps) / len(gaps), rel=1e-13)


def test_aggregate_metrics():
    x = SCORES["a"]
    assert S.aggregate_metrics(x) == {"Median": S.median(x), "IQM": S.iqm(x), "Mean": S.mean(x),
                                      "Optimality Gap": S.optimality_gap(x)}


def test_probability_of_improvement_is_mann_whitney():
    rng = np.random.default_rng(0)
    for n, m, tasks in [(5, 5, 3), (3, 8, 2), (9, 2, 4), (1, 1, 1)]:
        x = rng.integers(0, 4, (n, tasks)).astype(float)  # small integers: many ties
        y = rng.integers(0, 4, (m, tasks)).astype(float)
        u = [scipy.stats.mannwhitneyu(x[:, t], y[:, t], alternative="greater").statistic for t in range(tasks)]
        assert S.probability_of_improvement(x, y) == pytest.approx(np.mean(u) / (n * m), abs=1e-15)
        assert S.probability_of_improvement(x, y) + S.probability_of_improvement(y, x) == pytest.approx(1.0)
    assert S.probability_of_improvement(SCORES["a"], SCORES["a"]) == 0.5


def test_run_score_profile_by_loop():
    taus = [-1.0, 0.0, 0.3, 0.5, 0.99, 2.0]
    for x in SCORES.values():
        n, t = x.shape
        want = [sum(x[r, k] > tau for r in range(n) for k in range(t)) / (n * t) for tau in taus]
        np.testing.assert_allclose(S.run_score_profile(x, taus), want, rtol=1e-14)


# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_a_loop_over_the_same_draws():
    reps, seed = 300, 4
    got = S.stratified_bootstrap_ci(SCORES, S.iqm, reps=reps, seed=seed)
    for g, x in SCORES.items():
        n, t = x.shape
        idx = S._rng(seed, g).integers(0, n, size=(reps, n, t))
        values = []
        for b in range(reps):
            sample = np.empty_like(x)
            for r in range(n):
                for k in range(t):
                    sample[r, k] = x[idx[b, r, k], k]  # runs resampled within their own task
            values.append(_loop_iqm(sample))
        want = (_loop_iqm(x), np.percentile(values, 2.5), np.percentile(values, 97.5))
        np.testing.assert_allclose(got[g], want, rtol=1e-12)
    # two arrays: x's indices, then y's, from one generator
    iv = S.probability_of_improvement_ci(PX, PY, reps=reps, seed=seed)
    rng = S._rng(seed, "")
    ix, iy = rng.integers(0, 30, size=(reps, 30, 2)), rng.integers(0, 25, size=(reps, 25, 2))
    values = [S.probability_of_improvement(PX[ix[b], [0, 1]], PY[iy[b], [0, 1]]) for b in range(reps)]
    np.testing.assert_allclose(iv, (S.probability_of_improvement(PX, PY), *np.percentile(values, [2.5, 97.5])),
                               rtol=1e-12)


@pytest.mark.parametrize("chunk", [S._CHUNK_ELEMENTS, 48])
def test_bootstrap_keeps_runs_in_their_task(monkeypatch, chunk):
    monkeypatch.setattr(S, "_CHUNK_ELEMENTS", chunk)  # 48: two resamples of 6 x 4 per chunk
    n, t = 6, 4
    x = 100.0 * np.arange(t) + np.arange(n)[:, None]  # value // 100 is the task, value % 100 the run
    seen = []

    def statistic(s):
        seen.append(s.shape[0])
        assert s.shape[1:] == (n, t)  # every resample has n runs of each task
        return np.all(s // 100 == np.arange(t), axis=(-2, -1)).astype(float)

    iv = S.stratified_bootstrap_ci({"g": x}, statistic, reps=51, seed=0)["g"]
    assert iv == (1.0, 1.0, 1.0)
    assert sum(seen[1:]) == 51 and seen[1:] == ([51] if chunk > 1000 else [2] * 25 + [1])


def test_bootstrap_determinism_and_independence_of_other_groups():
    one = S.stratified_bootstrap_ci(SCORES, S.mean, reps=200, seed=1)
    assert S.stratified_bootstrap_ci(SCORES, S.mean, reps=200, seed=1) == one
    assert S.stratified_bootstrap_ci({"b": SCORES["b"]}, S.mean, reps=200, seed=1)["b"] == one["b"]
    assert S.stratified_bootstrap_ci(SCORES, S.mean, reps=200, seed=2)["a"] != one["a"]
    # the aggregate intervals come from the same draws as each metric alone
    agg = S.aggregate_intervals(SCORES, reps=200, seed=1)
    assert {g: agg[g]["Mean"] for g in agg} == one
    assert agg["a"]["IQM"] == S.stratified_bootstrap_ci(SCORES, S.iqm, reps=200, seed=1)["a"]


def test_intervals_contain_the_point_and_shrink_with_runs():
    agg = S.aggregate_intervals(SCORES, reps=1000, seed=0)
    for g, metrics in agg.items():
        for name, (p, lo, hi) in metrics.items():
            assert lo <= p <= hi, (g, name)
    rng = np.random.default_rng(5)
    small, big = rng.uniform(size=(10, 3)), rng.uniform(size=(160, 3))
    widths = {k: v.high - v.low for k, v in S.stratified_bootstrap_ci({"s": small, "b": big}, S.iqm, 1000).items()}
    assert widths["b"] < widths["s"] / 2  # ~1/4 expected: width scales as 1/sqrt(runs)
    narrow = S.stratified_bootstrap_ci({"s": small}, S.iqm, 1000, confidence=0.5)["s"]
    assert narrow.high - narrow.low < widths["s"]


def test_single_run_gives_a_degenerate_interval():
    iv = S.stratified_bootstrap_ci({"g": SCORES["a"][:1]}, S.mean, reps=50)["g"]
    assert iv.low == iv.point == iv.high


# numbers from this implementation (seed 3, 500 resamples), pasted: a regression guard
REG = {"x": np.array([[0.1, 0.5, 0.9], [0.3, 0.2, 0.8], [0.7, 0.6, 0.4], [0.0, 1.1, 0.5]]),
       "y": np.array([[0.2, 0.4, 0.3], [0.9, 0.1, 0.6], [0.5, 0.5, 1.2]])}
REG_AGG = {
    "x": {"Median": (0.6, 0.3, 0.775), "IQM": (0.5, 0.3333333333333333, 0.7166666666666667),
          "Mean": (0.5083333333333333, 0.3706250000000001, 0.6666666666666666),
          "Optimality Gap": (0.5, 0.35, 0.6293749999999998)},
    "y": {"Median": (0.5333333333333333, 0.3, 0.7666666666666666), "IQM": (0.45999999999999996, 0.28, 0.7),
          "Mean": (0.5222222222222221, 0.3333333333333333, 0.7058333333333331),
          "Optimality Gap": (0.5, 0.34444444444444444, 0.6666666666666667)},
}
REG_PROFILE = {
    "x": [[0.75, 0.4166666666666667, 0.25], [0.5, 0.16666666666666666, 0.08333333333333333],
          [0.9604166666666647, 0.7104166666666647, 0.5]],
    "y": [[0.7777777777777778, 0.3333333333333333, 0.2222222222222222],
          [0.5555555555555556, 0.1111111111111111, 0.0], [1.0, 0.5555555555555556, 0.4444444444444444]],
}
REG_POI = (0.5138888888888888, 0.2777777777777778, 0.75)


def test_seeded_numbers_are_unchanged():
    agg = S.aggregate_intervals(REG, reps=500, seed=3)
    for g in REG_AGG:
        for name, want in REG_AGG[g].items():
            np.testing.assert_allclose(agg[g][name], want, rtol=1e-12, atol=1e-14, err_msg=f"{g} {name}")
    prof = S.performance_profile(REG, [0.25, 0.5, 0.75], reps=500, seed=3)
    for g, want in REG_PROFILE.items():
        np.testing.assert_allclose(np.array(prof[g]), want, rtol=1e-12, atol=1e-14, err_msg=g)
    np.testing.assert_allclose(S.probability_of_improvement_ci(REG["x"], REG["y"], reps=500, seed=3), REG_POI,
                               rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- against rliable


@pytest.fixture(scope="module")
def rliable():
    pytest.importorskip("rliable", reason="rliable (test extra) is not installed")
    # installed but broken (rliable 1.2's arch<8 under pandas 3; the test extra pins pandas<3) is an error
    from rliable import library, metrics

    return library, metrics


def _rliable_all(metrics):
    return lambda x: np.array([metrics.aggregate_median(x), metrics.aggregate_iqm(x), metrics.aggregate_mean(x),
                               metrics.aggregate_optimality_gap(x)])


# Tolerances for CI bounds with a different RNG. A Monte Carlo of this implementation over 300
# seeds on SCORES gave a standard deviation of at most 0.0037 for any bound of the four metrics
# with 2000 resamples; the difference of two independent estimates has sd <= 0.0053, so 0.03 is
# over 5 sd. For PX, PY with 1000 resamples the P(X > Y) bounds had sd <= 0.0047: 0.035 is 5 sd of
# the difference. Profile bounds take discrete values k / (n_runs * n_tasks) (interpolated): over
# 200 seeds they moved by at most one such step, so two steps are allowed.
TOL_AGG, TOL_POI, PROFILE_STEPS = 0.03, 0.035, 2


def test_aggregates_match_rliable(rliable):
    library, metrics = rliable
    reps = 2000
    np.random.seed(0)  # rliable's StratifiedBootstrap draws from numpy's global RNG
    points, cis = library.get_interval_estimates(SCORES, _rliable_all(metrics), reps=reps)
    ours = S.aggregate_intervals(SCORES, reps=reps, seed=0)
    np.random.seed(0)
    for g, x in SCORES.items():
        n, t = x.shape
        for k, name in enumerate(S.METRICS):
            assert ours[g][name].point == pytest.approx(points[g][k], rel=1e-14, abs=1e-15), (g, name)
            assert abs(ours[g][name].low - cis[g][0, k]) < TOL_AGG, (g, name)
            assert abs(ours[g][name].high - cis[g][1, k]) < TOL_AGG, (g, name)
        # rliable's own resamples replayed through our metrics give its bounds exactly
        idx = np.stack([np.random.choice(n, (n, t), replace=True) for _ in range(reps)])
        lo, hi = np.percentile(S._all_metrics(x[idx, np.arange(t)]), [2.5, 97.5], axis=0)
        np.testing.assert_allclose(lo, cis[g][0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(hi, cis[g][1], rtol=1e-12, atol=1e-14)


def test_profiles_match_rliable(rliable):
    library, _ = rliable
    taus = np.linspace(0, 1, 11)
    np.random.seed(0)
    points, cis = library.create_performance_profile(SCORES, taus, reps=1000)
    ours = S.performance_profile(SCORES, taus, reps=1000, seed=0)
    for g, x in SCORES.items():
        np.testing.assert_array_equal(ours[g].point, points[g])
        step = 1 / x.size
        assert np.abs(ours[g].low - cis[g][0]).max() <= PROFILE_STEPS * step + 1e-12, g
        assert np.abs(ours[g].high - cis[g][1]).max() <= PROFILE_STEPS * step + 1e-12, g


def test_probability_of_improvement_matches_rliable(rliable):
    library, metrics = rliable
    for x, y in [(SCORES["a"], SCORES["b"]), (SCORES["b"], SCORES["a"]), (PX, PY)]:
        assert S.probability_of_improvement(x, y) == pytest.approx(metrics.probability_of_improvement(x, y),
                                                                   rel=1e-14)
    reps = 1000
    np.random.seed(0)
    points, cis = library.get_interval_estimates(
        {"xy": [PX, PY]}, lambda x, y: np.array([metrics.probability_of_improvement(x, y)]), reps=reps)
    ours = S.probability_of_improvement_ci(PX, PY, reps=reps, seed=0)
    assert ours.point == pytest.approx(points["xy"][0], rel=1e-14)
    assert abs(ours.low - cis["xy"][0, 0]) < TOL_POI and abs(ours.high - cis["xy"][1, 0]) < TOL_POI
    np.random.seed(0)  # rliable resamples x then y at each replication
    ix, iy = zip(*[(np.random.choice(30, (30, 2)), np.random.choice(25, (25, 2))) for _ in range(reps)])
    values = S._improvement(PX[np.stack(ix), np.arange(2)], PY[np.stack(iy), np.arange(2)])
    np.testing.assert_allclose(np.percentile(values, [2.5, 97.5]), cis["xy"][:, 0], rtol=1e-12)


# ----------------------------------------------------------------------------- normalisation


def test_normalize_array_and_mapping(tmp_path):
    ref = {"hop": {"random": 10.0, "expert": 110.0}, "ant": {"min": -50, "max": 50}}
    raw = np.array([[10.0, 0.0], [60.0, 50.0], [210.0, -50.0]])
    np.testing.assert_allclose(S.normalize(raw, ref, ["hop", "ant"]), [[0, 0.5], [0.5, 1], [2, 0]])
    out = S.normalize({"ant": [0.0, 25.0]}, ref)
    np.testing.assert_allclose(out["ant"], [0.5, 0.75])
    path = tmp_path / "ref.yaml"
    path.write_text("hop: {random: 10, expert: 110}\nant: {min: -50, max: 50}\n")
    loaded = S.load_reference(path)
    assert loaded == {"hop": {"random": 10.0, "expert": 110.0}, "ant": {"random": -50.0, "expert": 50.0}}
    np.testing.assert_allclose(S.normalize(raw, loaded, ["hop", "ant"]), S.normalize(raw, ref, ["hop", "ant"]))


def test_normalize_names_the_missing_task(tmp_path):
    path = tmp_path / "ref.yaml"
    path.write_text("hop: {random: 0, expert: 1}\nant: {random: 0, expert: 2}\n")
    with pytest.raises(ValueError) as e:
        S.normalize(np.zeros((2, 2)), S.load_reference(path), ["hop", "walker"])
    msg = str(e.value)
    assert "'walker'" in msg and str(path) in msg and "ant, hop" in msg and "\n" not in msg
    with pytest.raises(ValueError, match="'walker' is missing from the reference"):
        S.normalize({"walker": [1.0]}, {"hop": {"random": 0, "expert": 1}})


@pytest.mark.parametrize("text, match", [
    ("hop: {random: 0}\n", "task 'hop'.*numeric random/expert"),
    ("hop: {random: 1, expert: 1}\n", "task 'hop'.*must be finite and differ"),
    ("hop: 3\n", "task 'hop'.*expected"),
    ("- hop\n", "expected a mapping"),
])
def test_bad_reference_files(tmp_path, text, match):
    path = tmp_path / "ref.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        S.load_reference(path)


def test_normalize_bad_arguments():
    ref = {"hop": {"random": 0, "expert": 1}}
    with pytest.raises(ValueError, match="needs tasks"):
        S.normalize(np.zeros((2, 1)), ref)
    with pytest.raises(ValueError, match="1 tasks were named"):
        S.normalize(np.zeros((2, 3)), ref, ["hop"])


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("scores, match", [
    ({"a": np.zeros((3, 2)), "b": np.zeros((3, 3))}, "different numbers of tasks: 'a': 2, 'b': 3"),
    ({"a": np.zeros((0, 2))}, "group 'a': no scores"),
    ({"a": np.zeros((3, 0))}, "group 'a': no scores"),
    ({"a": np.zeros((3, 2)), "b": np.array([[0.0, np.nan], [1.0, 1.0]])}, r"group 'b': 1 non-finite .* run 0 task 1"),
    ({"a": np.zeros(4)}, "group 'a': scores must be 2-D .* x\\[:, None\\]"),
    ({"a": [["x", "y"]]}, "group 'a': scores are not numbers"),
    ({}, "non-empty mapping"),
])
def test_bad_scores_name_the_group(scores, match):
    with pytest.raises(ValueError, match=match):
        S.stratified_bootstrap_ci(scores, S.iqm)
    with pytest.raises(ValueError, match=match):
        A.score_table(scores)


def test_bad_arguments():
    with pytest.raises(ValueError, match="x and y have different numbers of tasks"):
        S.probability_of_improvement(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="y: 1 non-finite"):
        S.probability_of_improvement(np.zeros((3, 1)), np.array([[np.inf]]))
    with pytest.raises(ValueError, match="reduce only the last two axes"):
        S.stratified_bootstrap_ci(SCORES, lambda x: float(np.mean(x)))
    for kw, match in [({"reps": 0}, "reps"), ({"confidence": 1.0}, "confidence"), ({"seed": -1}, "seed")]:
        with pytest.raises(ValueError, match=match):
            S.stratified_bootstrap_ci(SCORES, S.mean, **kw)
    with pytest.raises(ValueError, match="taus"):
        S.performance_profile(SCORES, [])
    with pytest.raises(ValueError, match="group 'g' task 't': 1 non-finite"):
        S.per_task_ci({"g": {"t": [1.0, np.nan]}})


# ----------------------------------------------------------------------------- figures and tables


def test_figures_return_the_statistics(tmp_path):
    for suffix in (".png", ".pdf"):
        out = tmp_path / f"agg{suffix}"
        numbers = A.aggregate_figure(SCORES, out, reps=300, seed=2)
        assert numbers == S.aggregate_intervals(SCORES, reps=300, seed=2)
        assert out.stat().st_size > 1000
    assert (tmp_path / "agg.pdf").read_bytes()[:4] == b"%PDF"

    prof = A.profile_figure(SCORES, tmp_path / "profile.png", reps=300, seed=2)
    assert prof["taus"][0] == 0.0 and prof["taus"][-1] == 1.0 and len(prof["taus"]) == 101
    want = S.performance_profile(SCORES, prof["taus"], reps=300, seed=2)
    for g in SCORES:
        np.testing.assert_array_equal(np.array(prof["profiles"][g]), np.array(want[g]))
    assert (tmp_path / "profile.png").stat().st_size > 1000

    poi = A.improvement_figure(SCORES, tmp_path / "poi.pdf", reps=300, seed=2)
    assert poi == {("a", "b"): S.probability_of_improvement_ci(SCORES["a"], SCORES["b"], reps=300, seed=2)}
    poi = A.improvement_figure(SCORES, tmp_path / "poi.png", pairs=[("b", "a")], reps=300, seed=2)
    assert list(poi) == [("b", "a")]
    assert (tmp_path / "poi.pdf").read_bytes()[:4] == b"%PDF" and (tmp_path / "poi.png").exists()


def test_figure_errors(tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        A.aggregate_figure(SCORES, tmp_path / "agg.txt")
    with pytest.raises(ValueError, match="no group 'c'"):
        A.improvement_figure(SCORES, tmp_path / "poi.png", pairs=[("a", "c")])
    with pytest.raises(ValueError, match="with itself"):
        A.improvement_figure(SCORES, tmp_path / "poi.png", pairs=[("a", "a")])
    with pytest.raises(ValueError, match="no pairs"):
        A.improvement_figure({"a": SCORES["a"]}, tmp_path / "poi.png")
    assert not list(tmp_path.iterdir())


def test_score_table():
    scores = {"sac_v2": SCORES["a"], "b": SCORES["b"]}
    numbers = S.aggregate_intervals(scores, reps=300, seed=1)
    md = A.score_table(scores, "md", reps=300, seed=1)
    tex = A.score_table(scores, "latex", reps=300, seed=1)
    lines = md.splitlines()
    assert lines[0] == "| Group | Runs | IQM | Mean | Median | Optimality Gap |"
    assert lines[1] == "|---|--:|---|---|---|---|"
    for g, row in zip(scores, lines[2:4]):
        cells = [c.strip() for c in row.strip("|").split("|")]
        p, lo, hi = numbers[g]["IQM"]
        assert cells[:3] == [g, str(len(scores[g])), f"{p:.3f} [{lo:.3f}, {hi:.3f}]"]
        assert cells[3:] == [A.format_interval(numbers[g][m]) for m in ("Mean", "Median", "Optimality Gap")]
    assert "95% CI" in md and "300 resamples" in md
    assert tex.startswith("\\begin{tabular}{lrllll}\n\\toprule\nGroup & Runs & IQM & Mean & Median & Optimality Gap \\\\\n\\midrule\n")
    assert "sac\\_v2 & 10 & " + " & ".join(A.format_interval(numbers["sac_v2"][m]) for m in A.TABLE_METRICS) + " \\\\" in tex
    assert "\\bottomrule\n\\end{tabular}" in tex
    assert "0.1234 [" in A.score_table({"g": np.full((3, 1), 0.1234)}, digits=4)
    with pytest.raises(ValueError, match="fmt"):
        A.score_table(scores, "html")


def test_per_task_table():
    raw = {"sac": {"Hopper": [3000.0, 3200.0, 3100.0], "Ant": [4000.0, 4100.0, 3900.0]},
           "td3": {"Hopper": [2900.0, 3300.0], "Walker": [4500.0, 4600.0, 4400.0, 4700.0]}}
    ci = S.per_task_ci(raw, reps=200, seed=0)
    for g in raw:
        for t, v in raw[g].items():
            m, lo, hi = ci[g][t]
            assert m == pytest.approx(np.mean(v)) and min(v) <= lo <= m <= hi <= max(v)
    md = A.per_task_table(raw, "md", reps=200, seed=0)
    lines = md.splitlines()
    assert lines[0] == "| Task | sac (n=3) | td3 |"
    assert lines[2] == f"| Hopper | {A.format_interval(ci['sac']['Hopper'], 1)} | {A.format_interval(ci['td3']['Hopper'], 1)} (n=2) |"
    assert lines[3] == f"| Ant | {A.format_interval(ci['sac']['Ant'], 1)} | \N{EN DASH} |"
    assert lines[4].startswith("| Walker | \N{EN DASH} | 4550.0 [")
    tex = A.per_task_table(raw, "latex", reps=200, seed=0)
    assert f"Ant & {A.format_interval(ci['sac']['Ant'], 1)} & -- \\\\\n" in tex
    assert tex.startswith("\\begin{tabular}{lll}\n\\toprule\nTask & sac (n=3) & td3 \\\\\n")
