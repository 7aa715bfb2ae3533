"""Shared battery capacity planning (issue 5): bounds, LP, closed form, Theorem III.1, data, CLI."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, norm

from drbalance.cli import main
from drbalance.errors import ConfigError, DataError
from drbalance.planning import battery_sharing as bs
from tests.conftest import ACN_FIXTURE

FAST = dict(eval_epsilon=0.05, delta=0.05)


# --------------------------------------------------------------------------- sample-size bounds
@pytest.mark.parametrize("n,alpha,delta", [(5, 0.85, 0.01), (25, 0.95, 0.05), (185, 0.75, 1e-3)])
def test_scenario_count_is_smallest_m_meeting_campi_garatti(n, alpha, delta):
    m = bs.scenario_count(n, alpha, delta)
    d, eps = n + 1, 1 - alpha
    assert binom.cdf(d - 1, m, eps) <= delta < binom.cdf(d - 1, m - 1, eps)
    explicit = bs.scenario_count(n, alpha, delta, "explicit")
    assert explicit == math.ceil(2 / eps * (math.log(1 / delta) + d))
    assert m < explicit


def test_eval_sample_count_matches_appendix_c():
    m = bs.eval_sample_count(185, 0.02, 0.01)
    assert m == math.ceil(4 * math.log(2 * 185 / 0.01) / 0.02**2)
    assert bs.reliability_epsilon(m, 185, 0.01) <= 0.02 < bs.reliability_epsilon(m - 1, 185, 0.01)


# --------------------------------------------------------------------------- P-NS
def test_nonshared_is_inverted_cdf_quantile():
    rng = np.random.default_rng(0)
    xi = rng.gamma(2.0, 5.0, size=(997, 6))
    for alpha in (0.5, 0.85, 0.95):
        sol = bs.solve_nonshared(xi, alpha)
        np.testing.assert_array_equal(sol.capacity_kwh, np.quantile(xi, alpha, axis=0, method="inverted_cdf"))
        assert (np.mean(xi <= sol.capacity_kwh, axis=0) >= alpha).all()
    # exact ranks: 0.55 * 100 evaluates to 55.00000000000001; the rank must stay 55 (F̂ = 0.55 >= α)
    xi = rng.random((100, 3))
    np.testing.assert_array_equal(bs.solve_nonshared(xi, 0.55).capacity_kwh, np.sort(xi, axis=0)[54])


# --------------------------------------------------------------------------- scenario LP (6)
@pytest.mark.parametrize("solver", ["CLARABEL", "HIGHS"])
def test_scenario_lp_meets_every_scenario_and_closed_form_optimum(solver):
    rng = np.random.default_rng(3)
    xi = rng.gamma(2.0, 6.0, size=(400, 12))
    lp = bs.ScenarioLP(12, capacity=16, solver=solver, batch=8)  # small capacity: forces growth
    sol, working = lp.solve(xi)
    shortfall = np.maximum(xi - sol.personal_kwh, 0).sum(axis=1)
    assert (shortfall <= sol.pool_kwh + 1e-9).all()  # every scenario constraint of (6)
    assert (sol.personal_kwh >= 0).all() and sol.pool_kwh >= 0
    opt = bs.scenario_optimum(xi)
    assert opt == pytest.approx(xi.sum(axis=1).max())
    assert sol.total_kwh == pytest.approx(opt, rel=1e-6)
    assert lp.capacity >= len(working) > 0


def test_constraint_generation_matches_full_lp():
    import cvxpy as cp

    rng = np.random.default_rng(4)
    xi = rng.normal(10, 3, size=(150, 8))
    x, s = cp.Variable(8, nonneg=True), cp.Variable(nonneg=True)
    u = cp.Variable((150, 8), nonneg=True)
    full = cp.Problem(cp.Minimize(s + cp.sum(x)), [u >= xi - cp.reshape(x, (1, 8), order="C"), cp.sum(u, axis=1) <= s])
    full.solve(solver="CLARABEL")
    cg = bs.solve_scenario_program(xi, method="lp")
    assert cg.total_kwh == pytest.approx(full.value, rel=1e-6)
    assert full.value == pytest.approx(bs.scenario_optimum(xi), rel=1e-6)
    pool = bs.solve_scenario_program(xi, method="pool")
    assert pool.total_kwh == pytest.approx(full.value, rel=1e-9) and not pool.personal_kwh.any()


def test_binary_search_returns_smallest_count_above_alpha():
    rng = np.random.default_rng(5)
    sc, ev = rng.gamma(2, 5, (300, 10)), rng.gamma(2, 5, (5000, 10))
    res = bs.binary_search(sc, ev, 0.8)
    rel = [bs.aggregate_reliability(np.zeros(10), bs.scenario_optimum(sc[:m]), ev) for m in range(1, 301)]
    first = 1 + next(k for k, r in enumerate(rel) if r > 0.8)
    assert res.meets_target and res.solution.n_scenarios == first
    assert res.reliability == pytest.approx(rel[first - 1])
    # unreachable target: reported, not hidden
    res = bs.binary_search(sc[:3], ev, 0.99)
    assert not res.meets_target and res.solution.n_scenarios == 3


# --------------------------------------------------------------------------- App. B closed form
def test_gaussian_closed_form_against_solver():
    """Algorithm 1 vs App. B (N=25, α=0.85, μ=12, σ=4 kWh): totals within 1.5 %, reduction within
    1.5 points; the selection reliability lies just above α."""
    n, mu, sd, alpha = 25, 12.0, 4.0, 0.85
    cf = bs.gaussian_closed_form(n, mu, sd, alpha)
    z = norm.ppf(alpha)
    assert cf.capacity_nonshared_kwh == pytest.approx(n * (mu + sd * z))
    assert cf.capacity_shared_kwh == pytest.approx(n * mu + sd * math.sqrt(n) * z)
    res = bs.plan_shared_capacity(bs.GaussianNeeds(n, mu, sd), bs.PlanningConfig(alpha=alpha, trials=10, seed=2, eval_epsilon=0.03))
    assert res.nonshared.total_kwh == pytest.approx(cf.capacity_nonshared_kwh, rel=0.005)
    assert res.shared.total_kwh == pytest.approx(cf.capacity_shared_kwh, rel=0.015)
    assert res.reduction == pytest.approx(cf.reduction, abs=0.015)
    sel = res.trials[res.chosen_trial].search.reliability
    assert alpha < sel < alpha + 0.03
    assert res.reliability_aggregate == pytest.approx(alpha, abs=res.check_epsilon)
    # App. B's point x = μ, s = CLT quantile: feasible (reliability ≈ α) and costlier than the optimum
    zeta = np.random.default_rng(9).normal(0, sd, (200_000, n))
    assert np.mean(np.maximum(zeta, 0).sum(1) <= cf.appb_pool_kwh) == pytest.approx(alpha, abs=0.01)
    assert cf.capacity_shared_kwh < cf.appb_total_kwh < cf.capacity_nonshared_kwh


def test_reduction_grows_with_n_and_alpha_gaussian():
    red = {
        (n, a): bs.gaussian_closed_form(n, 12, 4, a).reduction for n in (5, 25, 185) for a in (0.75, 0.85, 0.95)
    }
    assert red[(5, 0.85)] < red[(25, 0.85)] < red[(185, 0.85)]
    assert red[(25, 0.75)] < red[(25, 0.85)] < red[(25, 0.95)]
    frame = bs.reduction_sweep(
        lambda n, rng: bs.GaussianNeeds(n), [5, 40], (0.75, 0.95), bs.PlanningConfig(trials=4, seed=1, **FAST)
    )
    med = bs.summarise_sweep(frame).set_index(["alpha", "n_drivers"])["median"]
    assert med[(0.95, 40)] > med[(0.95, 5)] and med[(0.95, 40)] > med[(0.75, 40)]


# --------------------------------------------------------------------------- Theorem III.1
def _equal_rule_satisfied(x, s, xi):
    """'Equal allocation' (s/N each): NOT shortfall-minimizing (paper, footnote 2)."""
    return x + s / xi.shape[1] >= xi


@pytest.mark.parametrize("rule", bs.RULES)
def test_theorem_iii1_pointwise_and_in_probability(rule):
    rng = np.random.default_rng(11)
    n = 9
    xi = rng.gamma(2.0, 6.0, (4000, n))
    for _ in range(5):
        x = rng.uniform(0, 20, n)
        s = float(rng.uniform(5, 60))
        event = np.maximum(xi - x, 0).sum(1) <= s
        ok = bs.satisfied(x, s, xi, rule, rng)
        assert ok[event].all()  # E implies every driver is served (Definition III.1)
        rel = bs.driver_reliability(x, s, xi, rule, rng, chunk=1000)
        assert (rel >= bs.aggregate_reliability(x, s, xi) - 1e-12).all()
        given = bs.allocate(x, s, xi, rule, rng)
        assert (given >= 0).all() and (given.sum(1) <= s * (1 + 1e-9) + 1e-9).all()
    # the check has teeth: a rule that is not shortfall-minimizing fails it on the same data
    x, s = np.full(n, 8.0), 40.0
    event = np.maximum(xi - x, 0).sum(1) <= s
    assert not _equal_rule_satisfied(x, s, xi)[event].all()


def test_theorem_iii1_on_an_lp_solution():
    """An LP (6) solution with personal capacity (HiGHS vertex) meets α for every driver and rule."""
    alpha = 0.8
    cfg = bs.PlanningConfig(alpha=alpha, trials=2, seed=4, method="lp", solver="HIGHS", **FAST)
    res = bs.plan_shared_capacity(bs.GaussianNeeds(8), cfg)
    assert res.shared.personal_kwh.sum() > 0
    for rule, rel in res.reliability_by_rule.items():
        assert rel.min() >= res.reliability_aggregate - 1e-12
        assert rel.min() >= alpha - res.check_epsilon


def test_allocation_rules_by_hand():
    x, s = np.zeros(3), 3.5
    xi = np.array([[1.0, 3.0, 2.0]])
    np.testing.assert_allclose(bs.allocate(x, s, xi, "proportional"), s * xi / 6)
    np.testing.assert_allclose(bs.allocate(x, s, xi, "utilitarian"), [[1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(bs.satisfied(x, s, xi, "utilitarian"), [[True, False, True]])
    np.testing.assert_array_equal(bs.satisfied(x, s, xi, "proportional"), [[False, False, False]])
    # FCFS: the served drivers are a prefix of the random order whose shortfalls fit in s
    rng = np.random.default_rng(0)
    xi = np.tile(xi, (200, 1))
    ok = bs.satisfied(x, s, xi, "fcfs", rng)
    assert set(map(tuple, ok.astype(int))) <= {(1, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1)}
    assert len(set(map(tuple, ok.astype(int)))) == 4
    with pytest.raises(ConfigError, match="rng"):
        bs.allocate(x, s, xi, "fcfs")


# --------------------------------------------------------------------------- reproducibility
def test_seeded_runs_reproduce():
    cfg = bs.PlanningConfig(alpha=0.9, trials=3, seed=7, **FAST)
    a = bs.plan_shared_capacity(bs.GaussianNeeds(6), cfg).summary()
    b = bs.plan_shared_capacity(bs.GaussianNeeds(6), cfg).summary()
    c = bs.plan_shared_capacity(bs.GaussianNeeds(6), bs.PlanningConfig(alpha=0.9, trials=3, seed=8, **FAST)).summary()
    for key in ("capacity_shared_kwh", "capacity_nonshared_kwh", "reliability_shared", "n_scenarios"):
        assert a[key] == b[key]
    np.testing.assert_array_equal(a["reduction_by_trial"], b["reduction_by_trial"])
    assert a["capacity_shared_kwh"] != c["capacity_shared_kwh"]


# --------------------------------------------------------------------------- data
def _acn_file(path, sessions):
    with gzip.open(path, "wt") as fh:
        json.dump(sessions, fh)
    return path


def _session(user, when, kwh, tz="America/Los_Angeles", station="s1"):
    """One ACN-Data record; disconnects an hour after connecting (same text when ``when`` is malformed)."""
    stamp = pd.to_datetime(when, format="%a, %d %b %Y %H:%M:%S GMT", errors="coerce")
    until = when if pd.isna(stamp) else (stamp + pd.Timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    _session.count = getattr(_session, "count", 0) + 1
    record = {"sessionID": f"id{_session.count}", "stationID": station, "userID": user, "connectionTime": when,
              "disconnectTime": until, "kWhDelivered": kwh}
    if tz is not None:
        record["timezone"] = tz
    return record


def test_acn_reader_local_days_and_reports(tmp_path):
    sessions = [
        _session("a", "Sat, 01 May 2021 05:00:00 GMT", 4.0),  # 22:00 on Fri 30 Apr in Los Angeles
        _session("a", "Sat, 01 May 2021 20:00:00 GMT", 6.0),  # Sat 1 May local
        _session("a", "Sat, 01 May 2021 23:00:00 GMT", 1.5),  # same local day: summed
        _session("b", "Sun, 02 May 2021 18:00:00 GMT", 9.0),
        _session(None, "Sun, 02 May 2021 18:00:00 GMT", 3.0),
    ]
    needs = bs.read_acn_sessions(_acn_file(tmp_path / "s.json.gz", sessions), min_days=2)
    a = needs.table[needs.table.driver == "a"]
    assert [str(d.date()) for d in a.day] == ["2021-04-30", "2021-05-01"]
    np.testing.assert_allclose(a.kwh, [4.0, 7.5])
    assert needs.eligible_drivers == ["a"]
    assert needs.short_drivers.to_dict() == {"b": 1}
    rep = needs.report()
    assert rep["drivers_with_too_few_days"] == 1 and "1 of 5 sessions have no userID" in rep["notes"][0]
    assert "America/Los_Angeles (4 sessions)" in rep["notes"][1]
    assert "time zone rule" in rep["notes"][-1] and "America/Los_Angeles" in rep["notes"][-1]
    with pytest.raises(DataError, match="min_days"):
        bs.read_acn_sessions(tmp_path / "s.json.gz", min_days=3)


def test_acn_days_without_timezone_field_are_los_angeles_days(tmp_path):
    """The reader's rule: no ``timezone`` field -> America/Los_Angeles, the ACN sites' zone."""
    with_tz = [_session("a", "Sat, 01 May 2021 05:00:00 GMT", 4.0), _session("a", "Sun, 02 May 2021 05:00:00 GMT", 2.0)]
    without = [{k: v for k, v in r.items() if k != "timezone"} for r in with_tz]
    a = bs.read_acn_sessions(_acn_file(tmp_path / "a.json.gz", with_tz), min_days=1)
    b = bs.read_acn_sessions(_acn_file(tmp_path / "b.json.gz", without), min_days=1)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert [str(d.date()) for d in b.table.day] == ["2021-04-30", "2021-05-01"]  # 05:00 GMT = 22:00 PDT the day before


def test_acn_needs_come_from_the_data_pipeline_reader(tmp_path, monkeypatch):
    import data_pipeline.readers as readers

    sessions = [
        _session("a", "Sat, 01 May 2021 05:00:00 GMT", 4.0),
        _session("a", "Sun, 02 May 2021 18:00:00 GMT", 6.0, tz="America/New_York"),  # 14:00 in New York
        _session("b", "Sun, 02 May 2021 03:00:00 GMT", 9.0, tz=None),  # Sat 1 May 20:00 in Los Angeles
    ]
    path = _acn_file(tmp_path / "s.json.gz", sessions)
    frame = readers.read_acn_sessions(path).frame
    direct = bs.daily_needs_from_sessions(frame, min_days=1, source=str(path))
    needs = bs.read_acn_sessions(path, min_days=1)
    pd.testing.assert_frame_equal(needs.table, direct.table)
    assert needs.notes[: len(direct.notes)] == direct.notes
    assert [str(d.date()) for d in needs.table.day] == ["2021-04-30", "2021-05-02", "2021-05-01"]
    assert "America/New_York (1 sessions)" in needs.notes[0]
    calls, real = [], readers.read_acn_sessions
    monkeypatch.setattr(readers, "read_acn_sessions", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    bs.read_acn_sessions(path, min_days=1)
    assert calls == [path]  # the planner reads sessions through the data_pipeline reader


def test_daily_needs_from_any_sessions_frame():
    frame = pd.DataFrame({
        "user_id": pd.array(["x", "x", None, "y"], dtype="string"),
        "connect_time": pd.to_datetime(["2021-05-01 23:59", "2021-05-01 08:00", "2021-05-01 09:00", "2021-05-02 00:00"]),
        "kwh": [1.0, 2.0, 5.0, 4.0],
    })
    needs = bs.daily_needs_from_sessions(frame, min_days=1)
    assert needs.table.to_dict("list") == {"driver": ["x", "y"], "day": [pd.Timestamp("2021-05-01"), pd.Timestamp("2021-05-02")],
                                           "kwh": [3.0, 4.0]}
    assert "1 of 4 sessions have no userID" in needs.notes[0]
    with pytest.raises(DataError, match="connect_time"):
        bs.daily_needs_from_sessions(frame.drop(columns="connect_time"))


def test_acn_reader_bad_input(tmp_path):
    with pytest.raises(DataError, match="not found"):
        bs.read_acn_sessions(tmp_path / "missing.json.gz")
    good = [_session("a", "Sat, 01 May 2021 05:00:00 GMT", 1.0)]
    bad = _acn_file(tmp_path / "t.json.gz", good + [_session("a", "2021-05-01 05:00", 1.0),
                                                    _session("a", "Sat, 01 May 2021 06:00:00 GMT", -1.0)])
    needs = bs.read_acn_sessions(bad, min_days=1)  # rejected by the reader, counted in the notes
    assert needs.table.kwh.tolist() == [1.0]
    assert "2 of 3 sessions rejected by the reader (missing_timestamp: 1, negative_energy: 1)" in needs.notes[0]
    nofield = _acn_file(tmp_path / "f.json.gz", [{"userID": "a"}])
    with pytest.raises(DataError, match="connectionTime"):
        bs.read_acn_sessions(nofield, min_days=1)
    zone = _acn_file(tmp_path / "z.json.gz", [_session("a", "Sat, 01 May 2021 05:00:00 GMT", 1.0, tz="Mars/Olympus")])
    with pytest.raises(DataError, match="Mars/Olympus"):
        bs.read_acn_sessions(zone, min_days=1)


def test_acn_reader_on_real_sessions(acn_file):
    """The ACN cut (44 sessions) by default, the full file in the slow run."""
    path = acn_file.path
    min_days = 5 if path == ACN_FIXTURE else 10
    needs = bs.read_acn_sessions(path, min_days=min_days)
    rep = needs.report()
    raw = pd.DataFrame(json.load(gzip.open(path)))
    assert rep["drivers"] == raw.userID.nunique() == len(needs.eligible_drivers) + rep["drivers_with_too_few_days"]
    assert needs.table.kwh.sum() == pytest.approx(raw.loc[raw.userID.notna(), "kWhDelivered"].sum())
    assert f"{acn_file.no_user} of {acn_file.sessions} sessions" in rep["notes"][0]
    if path == ACN_FIXTURE:  # SOURCE.md: days per driver and the energy of the sessions with a userID
        assert needs.days_per_driver.to_dict() == {"000000915": 1, "000001082": 8, "000001746": 12, "000012436": 1,
                                                   "000012899": 5}
        assert sorted(needs.eligible_drivers) == ["000001082", "000001746", "000012899"]
        assert rep["driver_days"] == 27 and needs.table.kwh.sum() == pytest.approx(164.595)
        # 000012899 charged twice on some days: a day's need is the sum of its sessions
        one = needs.table[needs.table.driver == "000012899"]
        sessions = raw[raw.userID == "000012899"]
        assert len(sessions) == 7 and len(one) == 5 and one.kwh.sum() == pytest.approx(sessions.kWhDelivered.sum())
    model = bs.EmpiricalNeeds.from_daily_needs(needs, 185, rng=0)  # more than eligible: bootstrapped
    assert model.n_drivers == 185 and len(set(model.drivers)) <= len(needs.eligible_drivers)


def test_table_reader_miles_and_errors(tmp_path):
    frame = pd.DataFrame(
        {"driver": ["a", "a", "a", "b"], "day": ["2021-01-01", "2021-01-01", "2021-01-02", "2021-01-01"], "miles": [30, 15, 6, 9]}
    )
    needs = bs.read_needs_table(frame, min_days=2)
    np.testing.assert_allclose(needs.table.kwh, [15.0, 2.0, 3.0])  # 45 mi / 3 mi/kWh summed over trips
    assert needs.short_drivers.to_dict() == {"b": 1}
    path = tmp_path / "t.csv"
    frame.rename(columns={"miles": "kwh"}).to_csv(path, index=False)
    assert bs.read_needs_table(path, min_days=1).table.kwh.sum() == pytest.approx(60)
    with pytest.raises(DataError, match="missing column"):
        bs.read_needs_table(frame.drop(columns="day"))
    with pytest.raises(DataError, match="exactly one"):
        bs.read_needs_table(frame.assign(kwh=1.0))
    with pytest.raises(DataError, match="negative"):
        bs.read_needs_table(frame.assign(miles=[1, -2, 3, 4]), min_days=1)
    with pytest.raises(DataError, match="does not exist"):
        bs.read_needs_table(tmp_path / "nope.csv")


def test_empirical_sampler_histogram():
    needs = bs.read_needs_table(
        pd.DataFrame({"driver": ["a"] * 4, "day": pd.date_range("2021-01-01", periods=4), "kwh": [1.0, 1.0, 5.3, 9.9]}),
        min_days=1,
    )
    rng = np.random.default_rng(0)
    raw = bs.EmpiricalNeeds.from_daily_needs(needs, bin_width_kwh=0).sample(rng, 40_000)[:, 0]
    assert set(np.unique(raw)) == {1.0, 5.3, 9.9}
    assert np.mean(raw == 1.0) == pytest.approx(0.5, abs=0.01)
    hist = bs.EmpiricalNeeds.from_daily_needs(needs, bin_width_kwh=2.0).sample(rng, 40_000)[:, 0]
    bins = np.floor(hist / 2)
    assert set(np.unique(bins)) == {0.0, 2.0, 4.0}  # bins [0,2), [4,6), [8,10)
    assert np.mean(bins == 0) == pytest.approx(0.5, abs=0.01)
    assert np.mean(hist[bins == 0]) == pytest.approx(1.0, abs=0.02)  # uniform inside the bin


def test_bad_configuration_and_samples():
    for kwargs in ({"alpha": 1.0}, {"alpha": 0}, {"trials": 0}, {"delta": 1.5}, {"method": "simplex"}, {"seed": -1}):
        with pytest.raises(ConfigError):
            bs.PlanningConfig(**kwargs)
    with pytest.raises(DataError, match="NaN"):
        bs.solve_nonshared(np.array([[1.0, np.nan]]), 0.9)
    with pytest.raises(DataError, match="shape"):
        bs.scenario_optimum(np.ones(5))
    with pytest.raises(ConfigError):
        bs.GaussianNeeds(0)


# --------------------------------------------------------------------------- CLI
def test_cli_end_to_end(tmp_path):
    out = tmp_path / "r.json"
    args = ["battery", "--source", "gaussian", "--drivers", "12", "--alpha", "0.9", "--trials", "4", "--seed", "3"]
    args += ["--json", str(out), "--out", str(tmp_path / "cfg"), "--eval-epsilon", "0.05", "--no-progress"]
    assert main(args) == 0
    rec = json.loads(out.read_text())
    for key in ("capacity_nonshared_kwh", "capacity_shared_kwh", "pool_kwh", "reduction", "reliability_shared", "seconds"):
        assert isinstance(rec[key], float)
    assert rec["capacity_shared_kwh"] == pytest.approx(rec["pool_kwh"] + rec["personal_kwh"])
    assert rec["reduction"] == pytest.approx(1 - rec["capacity_shared_kwh"] / rec["capacity_nonshared_kwh"])
    assert rec["reduction"] == pytest.approx(rec["closed_form"]["reduction"], abs=0.04)
    assert json.loads((tmp_path / "cfg" / "battery_config.json").read_text())["config"]["alpha"] == 0.9


def test_cli_acn_source_on_the_cut(tmp_path):
    out = tmp_path / "acn.json"
    args = ["battery", "--source", "acn", "--acn-path", str(ACN_FIXTURE), "--min-days", "5", "--drivers", "6",
            "--trials", "3", "--seed", "1", "--eval-epsilon", "0.08", "--json", str(out), "--no-progress"]
    assert main(args) == 0
    rec = json.loads(out.read_text())
    assert rec["source"] == "acn" and rec["data"]["eligible_drivers"] == 3 and rec["data"]["drivers"] == 5
    assert rec["drivers_bootstrapped"] is True and len(rec["drivers_sampled"]) == 6
    assert set(rec["drivers_sampled"]) <= {"000001082", "000001746", "000012899"}
    assert rec["capacity_shared_kwh"] == pytest.approx(rec["pool_kwh"] + rec["personal_kwh"])
    assert 0 < rec["capacity_shared_kwh"] <= rec["capacity_nonshared_kwh"]


def test_cli_plot_and_errors(tmp_path, capsys):
    png, csv = tmp_path / "fig.png", tmp_path / "sweep.csv"
    args = ["battery", "--drivers", "5", "--trials", "2", "--no-progress", "--eval-epsilon", "0.08"]
    assert main(args + ["--plot", str(png), "--sweep-csv", str(csv), "--sweep-drivers", "3,6"]) == 0
    assert png.stat().st_size > 1000 and len(pd.read_csv(csv)) == 2 * 3 * 2
    assert main(["battery", "--source", "acn", "--acn-path", str(tmp_path / "none.json.gz"), "--no-progress"]) == 1
    assert "DataError" in capsys.readouterr().err
    # no default ACN file: one line naming the option and where to download the data
    assert main(["battery", "--source", "acn", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ConfigError" in err and "--acn-path" in err and "https://ev.caltech.edu" in err
    assert main(["battery", "--alpha", "1.5", "--no-progress"]) == 1
    assert main(["battery", "--source", "table", "--no-progress"]) == 1


# --------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_acn_reduction_grows_with_n_and_alpha(shared_data):
    needs = bs.read_acn_sessions(shared_data / "ev_charging_acn_caltech_2021" / "acndata_sessions.json.gz")
    frame = bs.reduction_sweep(
        lambda n, rng: bs.EmpiricalNeeds.from_daily_needs(needs, n, rng=rng),
        [5, 65, 185],
        (0.75, 0.85, 0.95),
        bs.PlanningConfig(trials=10, seed=0),
    )
    med = bs.summarise_sweep(frame).set_index(["alpha", "n_drivers"])["median"]
    for a in (0.75, 0.85, 0.95):
        assert med[(a, 5)] < med[(a, 65)] < med[(a, 185)]
    for n in (5, 65, 185):
        assert med[(0.75, n)] < med[(0.85, n)] < med[(0.95, n)]
