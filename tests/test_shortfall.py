"""Model v2 (MATH.md 1.1): Scarf's bound, the scenario LP, the deterministic twin, elastic limits, the plug
chance constraint, the timing share and the simulator's known arrivals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize_scalar

from data_pipeline.regions import RegionMap
from data_pipeline.trip_model import TripModel
from drbalance import problem_shortfall as shortfall
from drbalance.config import BalancingConfig
from drbalance.problem import BalancingProblem
from drbalance.problem_shortfall_inputs import SIGMA_FLOOR, shortfall_data
from drbalance.state import FleetState, Moves
from drbalance.synthetic import synthetic_city


# ------------------------------------------------------------------------------------- closed forms
def scarf(A, mu, sigma):
    """Scarf's bound sup E(D - A)^+ over distributions on R with mean mu and variance sigma^2."""
    return 0.5 * (np.sqrt(sigma ** 2 + (A - mu) ** 2) + mu - A)


def scarf_nonneg(A, mu, sigma):
    """The same over distributions on [0, inf): Scarf's bound beyond A* = (mu^2 + sigma^2) / (2 mu), its
    tangent mu - A mu^2 / (mu^2 + sigma^2) below (the form written in drbalance.problem_shortfall)."""
    a_star = (mu ** 2 + sigma ** 2) / (2 * mu)
    return np.where(A >= a_star, scarf(A, mu, sigma), mu - A * mu ** 2 / (mu ** 2 + sigma ** 2))


def two_point_worst(A, mu, sigma, nonneg):
    """Brute force: the largest E(D - A)^+ over two-point distributions with mean mu and variance sigma^2
    (the extremal distributions of this moment problem), optionally with support in [0, inf)."""
    def value(p):
        lo = mu - sigma * np.sqrt((1 - p) / p)
        hi = mu + sigma * np.sqrt(p / (1 - p))
        return p * max(lo - A, 0.0) + (1 - p) * max(hi - A, 0.0)

    p_min = sigma ** 2 / (mu ** 2 + sigma ** 2) if nonneg else 1e-9   # lo >= 0  <=>  p >= sigma^2/(mu^2+sigma^2)
    grid = np.concatenate([np.linspace(p_min, 1 - 1e-9, 20001), [p_min]])
    vals = np.array([value(p) for p in grid])
    i = int(vals.argmax())
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    best = minimize_scalar(lambda p: -value(p), bounds=(lo, hi), method="bounded", options={"xatol": 1e-13})
    return max(vals.max(), -best.fun, value(p_min))


@pytest.mark.parametrize("A,mu,sigma", [(0.0, 2.0, 1.0), (1.0, 2.0, 1.5), (3.0, 2.0, 1.0), (5.0, 1.0, 2.0),
                                        (0.5, 0.3, 0.8), (2.0, 4.0, 0.1)])
def test_scarf_bound_equals_the_two_point_worst_case(A, mu, sigma):
    assert scarf(A, mu, sigma) == pytest.approx(two_point_worst(A, mu, sigma, False), rel=1e-6, abs=1e-9)
    assert float(scarf_nonneg(A, mu, sigma)) == pytest.approx(two_point_worst(A, mu, sigma, True), rel=1e-6,
                                                                  abs=1e-9)
    assert scarf_nonneg(A, mu, sigma) <= mu + 1e-12   # never more unserved than requests


# ------------------------------------------------------------------------------------- instances
@pytest.fixture(scope="module")
def city():
    return synthetic_city(12, horizon=3, seed=3, n_days=12, start_slots=(32,), n_bootstrap=50)


def _state(city, rng, incoming=True, K=3):
    state, fc = city.draw(rng, 0)
    inc = rng.poisson(np.maximum(fc.supply, 0) * 0.5) if incoming else None
    return dataclasses.replace(state, incoming=inc), fc


def _returns(n, K, seed=0):
    rng = np.random.default_rng(seed)
    mats = []
    for _ in range(K - 1):
        M = rng.random((n, n)) * (rng.random((n, n)) < 0.3)
        M = 0.4 * M / np.maximum(M.sum(axis=1, keepdims=True), 1e-9)
        mats.append(sp.csr_matrix(M))
    return mats


CFG = dict(reach_km=4.5, low_battery_reach_km=3.0, horizon=3, lost_request_km=12.0, charge_queue_km=1.5,
           speed_kmh=12.0)


def reference_objective(problem: BalancingProblem, state: FleetState, fc, mode: str) -> float:
    """Model v2 written directly in cvxpy (per-slot moves, the dynamics, the per-mode shortfall and the
    elastic charging rows), independent of the conic layout of drbalance.problem_shortfall."""
    import cvxpy as cp

    cfg = problem.config
    K, n = cfg.horizon, problem.n
    dat = shortfall_data(state, fc, mode, cfg, n, problem.queue_allowance)
    px, Wx = problem.pairs_x, problem.Wx
    off, phi = shortfall.travel(problem.pairs, cfg)
    st = problem._shortfall_structure(state, dat, dat.diagnostics["effective_mode"], False)
    py, Wy, plug = st.pairs_y, st.Wy, st.plug
    mX, mY = len(px), len(py)
    Bo = sp.csr_matrix((np.ones(mX), (px[:, 0], np.arange(mX))), (n, mX))
    X = [cp.Variable(mX, nonneg=True) for _ in range(K)]
    U = [cp.Variable(n) for _ in range(K)]
    Y = cp.Variable(mY, nonneg=True)
    strand = cp.Variable(n, nonneg=True)
    over = cp.Variable(len(plug), nonneg=True)
    Q = cp.Variable(len(plug), nonneg=True)
    cons = []
    Sf, Av = [], []
    for k in range(K):
        s_full, s_av = 0, dat.theta[k] * dat.kappa[k]
        for kk in range(k + 1):
            sel = np.flatnonzero(off == k - kk)
            if len(sel):
                Bd = sp.csr_matrix((np.ones(len(sel)), (px[sel, 1], sel)), (n, mX))
                Bphi = sp.csr_matrix((phi[sel], (px[sel, 1], sel)), (n, mX))
                s_full = s_full + Bd @ X[kk]
                s_av = s_av + Bphi @ X[kk]
        Sf.append(s_full)
        Av.append(s_av)
    cons.append(Bo @ X[0] == dat.V)
    rets = problem.returns if state.incoming is not None else None
    for k in range(1, K):
        rhs = Sf[k - 1] + dat.kappa[k - 1] + dat.s_hat[k - 1] - dat.hires[k - 1] + U[k - 1]
        for d in range(1, k + 1):
            if rets is not None and d - 1 < len(rets):
                rhs = rhs + rets[d - 1].T @ (dat.hires[k - d] - U[k - d])
        cons.append(Bo @ X[k] == rhs)
    eff = dat.diagnostics["effective_mode"]
    for k in range(K):
        if eff in ("nominal", "demand_robust"):
            cons += [U[k] >= dat.centre[k] - Av[k], U[k] >= 0]
        elif eff == "saa":
            cons.append(U[k] >= sum(cp.pos(D[k] - Av[k]) for D in dat.scenarios) / len(dat.scenarios))
        else:
            mu, sig = dat.centre[k], dat.sigma[k]
            if state.incoming is not None:   # the [0, inf) form with the tangent below A*
                A1 = cp.Variable(n)
                a_star = (mu ** 2 + sig ** 2) / (2 * mu)
                s = mu ** 2 / (mu ** 2 + sig ** 2)
                cons += [A1 >= Av[k], A1 >= a_star,
                         U[k] >= 0.5 * (cp.norm(cp.vstack([sig, A1 - mu]), axis=0) + mu - A1) + cp.multiply(s, A1 - Av[k])]
            else:
                cons.append(U[k] >= 0.5 * (cp.norm(cp.vstack([sig, Av[k] - mu]), axis=0) + mu - Av[k]))
    has_pair = np.zeros(n, bool)
    has_pair[py[:, 0]] = True
    Byo = sp.csr_matrix((np.ones(mY), (py[:, 0], np.arange(mY))), (n, mY))
    cons.append((Byo @ Y + strand)[has_pair] == dat.L[0][has_pair])
    cons.append(strand[~has_pair] == 0)
    ppos = {j: r for r, j in enumerate(plug)}
    Byd = sp.csr_matrix((np.ones(mY), ([ppos[j] for j in py[:, 1]], np.arange(mY))), (len(plug), mY))
    Z = Byd @ Y
    free = dat.p[plug] - dat.occ[0, plug]
    need = dat.mu_a[0, plug] + np.sqrt((1 - cfg.chance_epsilon) / cfg.chance_epsilon) * dat.sigma_a[0, plug]
    cons += [Z <= free + dat.qa[plug] - need + over, Q >= Z + dat.mu_a[0, plug] - free]
    lam = cfg.lost_request_km * shortfall.SLOT_DISCOUNT ** np.arange(K)
    obj = sum(Wx @ X[k] for k in range(K)) + Wy @ Y + sum(lam[k] * cp.sum(U[k]) for k in range(K)) \
        + cfg.charge_queue_km * cp.sum(Q) + cfg.elastic_km * (cp.sum(strand) + cp.sum(over))
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.solve(solver=cp.CLARABEL, tol_gap_rel=1e-9, tol_gap_abs=1e-9, tol_feas=1e-9)
    assert prob.status == "optimal"
    return float(prob.value)


@pytest.mark.parametrize("mode", ["nominal", "saa", "demand_robust", "dr"])
@pytest.mark.parametrize("known", [True, False])
def test_fast_path_equals_the_direct_cvxpy_model(city, mode, known):
    """The conic assembly equals model v2 stated directly (saa: the scenario LP), with and without known
    arrivals (and then trip-mobility returns)."""
    rng = np.random.default_rng(11)
    state, fc = _state(city, rng, incoming=known)
    problem = BalancingProblem(city.regions, BalancingConfig(mode=mode, **CFG), returns=_returns(city.n, 3))
    plan = problem.solve(state, fc)
    assert plan.status in ("optimal", "optimal_inaccurate")
    ref = reference_objective(problem, state, fc, mode)
    assert plan.objective == pytest.approx(ref, rel=1e-5)
    # first-slot moves keep every vehicle; the moves are not all stays (the test would be vacuous)
    out = np.bincount(plan.pairs_x[:, 0], weights=plan.moves_x, minlength=city.n)
    assert np.array_equal(out, state.vacant)
    moved = plan.pairs_x[:, 0] != plan.pairs_x[:, 1]
    if mode in ("nominal", "dr"):   # the box of demand_robust can leave nothing worth moving for
        assert plan.moves_x[moved].sum() > 0


def test_dr_equals_its_twin_without_ambiguity_and_costs_more_with_it(city):
    rng = np.random.default_rng(4)
    state, fc = _state(city, rng)
    cfg = BalancingConfig(mode="dr", **CFG)
    zero = dataclasses.replace(fc, demand_moments=dataclasses.replace(
        fc.demand_moments, halfwidth=np.zeros(fc.demand.size), variance=np.zeros(fc.demand.size)))
    nominal = BalancingProblem(city.regions, dataclasses.replace(cfg, mode="nominal")).solve(state, fc)
    dr0 = BalancingProblem(city.regions, cfg).solve(state, zero)
    assert dr0.diagnostics["effective_mode"] == "nominal"
    assert dr0.objective == pytest.approx(nominal.objective, rel=1e-9)
    assert np.array_equal(dr0.moves_x, nominal.moves_x)
    # tiny ambiguity: the cone form converges to the twin (within the sigma floor's effect)
    tiny = dataclasses.replace(fc, demand_moments=dataclasses.replace(
        fc.demand_moments, halfwidth=np.zeros(fc.demand.size), variance=np.full(fc.demand.size, 1e-8)))
    dr_tiny = BalancingProblem(city.regions, cfg).solve(state, tiny)
    assert dr_tiny.diagnostics["effective_mode"] == "dr"
    slack = cfg.lost_request_km * SIGMA_FLOOR / 2 * fc.demand.size
    assert nominal.objective <= dr_tiny.objective + 1e-6 <= nominal.objective + slack + 1e-6
    # the real ambiguity costs more and its premium is reported
    dr = BalancingProblem(city.regions, cfg).solve(state, fc)
    assert dr.objective > nominal.objective + 1.0 and dr.terms["robust_premium"] > 0


def test_plan_shortfall_equals_the_bound_at_its_own_supply(city):
    """At the optimum the epigraphs are tight: U = the mode's closed form at the plan's available supply."""
    rng = np.random.default_rng(8)
    state, fc = _state(city, rng)
    for mode in ("nominal", "dr"):
        problem = BalancingProblem(city.regions, BalancingConfig(mode=mode, **CFG))
        plan = problem.solve(state, fc)
        dat = shortfall_data(state, fc, mode, problem.config, city.n, problem.queue_allowance)
        A, U = plan.diagnostics["available"], plan.diagnostics["expected_unserved"]
        if mode == "nominal":
            bound = np.maximum(dat.centre - A, 0)
        else:
            bound = np.where(dat.centre > 0, scarf_nonneg(A, np.maximum(dat.centre, 1e-12), dat.sigma),
                             scarf(A, dat.centre, dat.sigma))
        assert np.allclose(U, bound, atol=1e-5), mode


def test_over_full_plugs_and_an_unreachable_low_battery_ev_still_solve(city):
    """The state is never a violation: the slack is priced and reported, and the vacant moves still happen."""
    rng = np.random.default_rng(2)
    state, fc = _state(city, rng)
    n = city.n
    plugs = np.asarray(state.plugs)
    full = int(np.flatnonzero(plugs > 0)[0])
    occ = np.zeros(n)
    occ[full] = plugs[full] + 3                       # three queued beyond the plugs (queue allowance 1)
    far = int(np.argmax(np.where(plugs > 0, -np.inf, city.regions.distance_km[:, plugs > 0].min(axis=1))))
    assert city.regions.distance_km[far, plugs > 0].min() > 1.0
    low = np.zeros(n)
    low[far] = 2
    vac = np.zeros(n)
    vac[0] = 30                                       # every vacant EV in one region: moves are needed
    st = FleetState(vac, low, plugs, occ, incoming=state.incoming)
    problem = BalancingProblem(city.regions, BalancingConfig(mode="dr", **dict(CFG, low_battery_reach_km=1.0)))
    plan = problem.solve(st, fc)
    assert plan.diagnostics["stranded"] == pytest.approx(2.0, abs=1e-6)
    assert plan.diagnostics["over_capacity"] > 0 and plan.diagnostics["slack"] >= 2.0
    moved = plan.pairs_x[:, 0] != plan.pairs_x[:, 1]
    assert plan.moves_x[moved].sum() > 0
    assert np.bincount(plan.pairs_x[:, 0], weights=plan.moves_x, minlength=n)[0] == 30


def test_plug_chance_constraint_holds_for_every_distribution_with_the_moments(city):
    """Cantelli: with uncontrolled arrivals of mean mu and std sigma, the plugs left after the plan's routed
    EVs cover the arrivals with probability >= 1 - eps for normal, gamma and the worst two-point law."""
    rng = np.random.default_rng(6)
    state, fc = _state(city, rng)
    n, K = city.n, 3
    plugs = np.asarray(state.plugs)
    mu_a = np.where(plugs > 0, 0.2 * plugs, 0.0)
    sd_a = np.where(plugs > 0, 0.15 * plugs, 0.0)
    low = np.zeros(n)
    low[plugs > 0] = np.ceil(0.3 * plugs[plugs > 0])  # pressure on the plugs
    st = FleetState(state.vacant, low, plugs, np.zeros(n), incoming=state.incoming)
    fc2 = dataclasses.replace(fc, charging=np.broadcast_to(mu_a, (K, n)).copy(),
                              charging_std=np.broadcast_to(sd_a, (K, n)).copy())
    eps = 0.1
    cfg = BalancingConfig(mode="dr", **dict(CFG, low_battery_reach_km=4.5), chance_epsilon=eps, queue_allowance=0.0)
    plan = BalancingProblem(city.regions, cfg).solve(st, fc2)
    assert plan.diagnostics["over_capacity"] < 1e-6
    j = plugs > 0
    F = plan.free_plugs[0, j]                       # plugs left after the relaxed routed EVs
    m, s = mu_a[j], sd_a[j]
    assert (F >= m + np.sqrt((1 - eps) / eps) * s - 1e-6).all()
    draws = 200_000
    g = np.random.default_rng(0)
    for law in ("normal", "gamma", "two_point"):
        if law == "normal":
            a = g.normal(m, s, size=(draws, len(m)))
        elif law == "gamma":
            shape = (m / s) ** 2
            a = g.gamma(shape, s ** 2 / m, size=(draws, len(m)))
        else:   # the Cantelli-extremal law: mass eps just above F (mean and variance kept)
            k = np.sqrt((1 - eps) / eps)
            hi, lo = m + k * s, m - s / k
            a = np.where(g.random((draws, len(m))) < eps, hi, lo)
        cover = (a <= F[None, :] + 1e-9).mean(axis=0)
        assert (cover >= 1 - eps - 0.005).all(), law


# ------------------------------------------------------------------------------------- data side
def _regions(n=3):
    ids = np.arange(n) + 1
    lat = 40.7 + 0.01 * np.arange(n)
    lon = np.full(n, -73.9)
    d = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) * 1.0
    return RegionMap(ids, np.array([f"z{i}" for i in ids], dtype=object), lat, lon, d, ids, np.arange(n), 1.3)


def test_timing_share_from_uniform_minutes_matches_the_closed_form():
    """Pick-ups and drop-offs spread evenly over the minutes of a slot: theta = P(a >= tau - patience)."""
    regions = _regions()
    day = pd.Timestamp("2021-01-04")
    rows = []
    for minute in range(0, 60 * 24):
        t = day + pd.Timedelta(minutes=minute)
        rows.append((t, t + pd.Timedelta(minutes=20), 1, 2))
    trips = pd.DataFrame(rows, columns=["pickup_time", "dropoff_time", "pickup_zone", "dropoff_zone"])
    tm = TripModel.fit(trips, regions, 15)
    # tau uniform on 0..14, a uniform on 0..14: theta = (11 + (14 + 13 + 12 + 11) / 15) / 15
    assert tm.timing_share(33, 10) == pytest.approx((11 + 50 / 15) / 15)
    assert tm.timing_share(33, 20) == pytest.approx(1.0)
    assert tm.timing_share(33, 0) == pytest.approx(np.mean([(15 - t) / 15 for t in range(15)]))
    assert BalancingConfig(patience_minutes=10).uniform_timing_share() == pytest.approx(1 - 25 / 450)
    # a 20-minute trip picked up at minute u of a slot ends 1 or 2 slots later: shares 10/15 and 5/15
    M = tm.return_matrices(4)
    assert M[0][0, 1] == pytest.approx(10 / 15) and M[1][0, 1] == pytest.approx(5 / 15)
    assert M[0][1].sum() == 0 and M[2].sum() == 0


def test_return_matrices_keep_each_origins_mass_when_sparsified():
    regions = _regions(30)
    g = np.random.default_rng(0)
    n_trips = 5000
    t0 = pd.Timestamp("2021-01-04") + pd.to_timedelta(g.integers(0, 1440, n_trips), unit="min")
    trips = pd.DataFrame({"pickup_time": t0, "dropoff_time": t0 + pd.to_timedelta(g.integers(1, 40, n_trips), unit="min"),
                          "pickup_zone": g.integers(1, 31, n_trips), "dropoff_zone": g.integers(1, 31, n_trips)})
    tm = TripModel.fit(trips, regions, 15)
    full = tm.return_matrices(4, max_destinations=None)
    sparse = tm.return_matrices(4, max_destinations=5)
    for a, b in zip(full, sparse):
        assert np.allclose(np.asarray(a.sum(axis=1)), np.asarray(b.sum(axis=1)))
        assert (np.diff(b.indptr) <= 5).all() and b.nnz < a.nnz


def test_simulator_reports_known_arrivals():
    """FleetState.incoming counts the EVs that will become vacant, by slot and region: with short trips and
    full batteries every busy EV (picking up, serving, repositioning) is counted once, at its drop-off region,
    in the slot its activity ends."""
    from drbalance.sim import SimConfig, Simulator
    from drbalance.sim.requests import Requests

    regions = _regions(3)
    g = np.random.default_rng(1)
    n_req = 300
    arrival = np.sort(g.integers(0, 180, n_req))
    start = pd.Timestamp("2021-03-02")
    req = Requests(start=start, minutes=180, arrival=arrival, pickup_time=start + pd.to_timedelta(arrival, unit="min"),
                   origin=g.integers(0, 3, n_req), destination=g.integers(0, 3, n_req),
                   km=g.uniform(1, 8, n_req), duration=g.integers(5, 40, n_req), imputed=np.zeros(n_req, bool),
                   row=np.arange(n_req))
    sim = Simulator(req, regions, np.array([2, 0, 1]), SimConfig(fleet_size=20, seed=0))
    run = sim.start()
    seen = 0
    while not run.done:
        st = run.state()
        assert st.incoming is not None and st.incoming.shape == (16, 3)
        f = run.f
        busy = np.isin(f.status, [2, 3, 4, 7])
        assert st.incoming.sum() == busy.sum()
        serving = np.flatnonzero(f.status == 3)   # their region is the drop-off region, until the end minute
        now = int((run.t - start) / pd.Timedelta(minutes=1))
        k = (f.until[serving] - now) // 15
        expect = np.zeros_like(st.incoming)
        np.add.at(expect, (k, f.region[serving]), 1)
        assert (st.incoming >= expect).all()
        seen += st.incoming.sum()
        run.step(Moves.empty())
    assert seen > 0


#: bench-solve's JSON keys before model v2 (a CLI contract: add, never rename)
BENCH_KEYS = {"city", "first_solver_s", "first_step_s", "horizon", "iterations_median", "later_reach_km", "mode",
              "n_constraints", "n_inaccurate", "n_pairs", "n_pairs_low_battery", "n_regions", "n_variables",
              "objective", "objective_median", "overhead_ratio", "python", "rank", "reach_km", "scs_eps", "seed",
              "setup_s", "solver", "solver_s_all", "solver_s_median", "step_s_all", "step_s_max", "step_s_median",
              "step_s_min", "steps", "tol"}


@pytest.mark.parametrize("args", [["--mode", "dr"], ["--mode", "saa"], ["--objective", "ratio", "--mode", "dr"],
                                  ["--mode", "nominal", "--supply", "forecast"]])
def test_bench_solve_json_keys_unchanged(tmp_path, args):
    import json

    from drbalance.cli import main

    out = tmp_path / "b.json"
    assert main(["bench-solve", "--regions", "12", "--horizon", "3", "--steps", "2", "--no-progress",
                 "--json", str(out), *args]) == 0
    data = json.loads(out.read_text())
    assert BENCH_KEYS <= set(data) and data["n_inaccurate"] == 0
    assert data["objective"] > 0 and data["step_s_median"] > 0
    assert data["mode"] == args[args.index("--mode") + 1]
