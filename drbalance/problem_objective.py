"""The balancing objective in closed form: normalising weights and the terms of any plan.

:func:`objective_weights` computes ``(w_km, w1, w2)`` from the *do-nothing* plan (everyone stays; EVs
propagate with the mobility matrices and the supply forecast), as stated in :mod:`drbalance.problem`;
:func:`objective_terms` evaluates a relaxed plan ``X`` (K, m_x), ``Y`` (K, m_y) without a solver: the
km driven, the nominal and the mode's supply-demand term, and the charging term.  Both use the
validated :class:`~drbalance.problem_inputs.SolveInputs` of one solve.
"""

from __future__ import annotations

import numpy as np

from drbalance.config import BalancingConfig
from drbalance.problem_conic import ConicStructure
from drbalance.problem_inputs import SolveInputs
from drbalance.problem_pairs import BalancingPairs


def objective_weights(pairs: BalancingPairs, config: BalancingConfig, st: ConicStructure,
                      inp: SolveInputs) -> tuple[float, float, float, dict]:
    """``(w_km, w1, w2, normalisers)``: the weight per km driven, of the supply-demand term and of the
    charging term, and a dict of the do-nothing denominators (``N1_supply_demand``, ``N2_charging``) and
    ``scale_km`` (km); raw ``(1, β1, β2)`` when ``config.normalise`` is False."""
    cfg = config
    K = cfg.horizon
    if not cfg.normalise:
        return 1.0, cfg.beta1, cfg.beta2, {"normalise": False}
    S0 = np.zeros_like(inp.mu)
    S0[0] = inp.V
    for k in range(1, K):
        S0[k] = pairs.propagate(k - 1, S0[k - 1]) + inp.s_hat[k - 1]
    # MATH.md 1.1 (b): each mode is normalised by its *own* do-nothing value, so that the robust premium
    # does not act as a larger β1 (the first build divided every mode by the nominal value)
    den = np.maximum(S0 + inp.s_cone + cfg.supply_floor, 1.0)
    t0 = den ** (-cfg.alpha)
    N1 = float((inp.mu * t0).sum())
    if inp.factor is not None:
        g = t0.ravel()
        N1 += float(np.sqrt(inp.gamma) * np.sqrt(np.sum((inp.factor.T @ g) ** 2) + np.sum(inp.diag * g * g)))
    Lp = inp.L[:, st.plug]
    F0 = inp.p[st.plug][None, :] - inp.occ[:, st.plug] + inp.qa[st.plug][None, :] - Lp
    N2 = float((inp.c[:, st.plug] / np.maximum(F0, cfg.plug_margin)).sum())
    scale_km = max(float(inp.V.sum() + inp.L[0].sum()), 1.0) * pairs.mean_pair_km
    w1 = cfg.beta1 / N1 if N1 > 0 else cfg.beta1
    w2 = cfg.beta2 / N2 if N2 > 0 else cfg.beta2
    return 1.0 / scale_km, w1, w2, {"normalise": True, "N1_supply_demand": N1, "N2_charging": N2,
                                     "scale_km": scale_km}


def objective_terms(pairs: BalancingPairs, config: BalancingConfig, st: ConicStructure, inp: SolveInputs,
                    X: np.ndarray, Y: np.ndarray, mode: str, weights: tuple[float, float, float]) -> dict:
    """Objective terms of ``X`` (K, m_x), ``Y`` (K, m_y) in ``mode`` with ``weights = (w_km, w1, w2)``.

    Keys as documented by :meth:`drbalance.problem.BalancingProblem.evaluate`; ``idle_km`` in km.  A plan
    leaving a region with demand and no supply, or a plug region with no free plug, scores ``+inf``.
    """
    cfg = config
    w_km, w1, w2 = weights
    S = (pairs.Bx_dest @ X.T).T  # (K, n)
    idle = float((X @ pairs.Wx).sum() + (Y @ st.Wy).sum())
    # a plan leaving a region with no supply (S + s = 0) or no free plug scores +inf, by definition
    with np.errstate(divide="ignore", invalid="ignore"):
        t_nom = (S + inp.s_nominal + cfg.supply_floor) ** (-cfg.alpha)
        sd_nom = float(np.where(inp.mu > 0, inp.mu * t_nom, 0.0).sum())
        if mode == "nominal":
            sd_mode = sd_nom
        else:
            t = (S + inp.s_cone + cfg.supply_floor) ** (-cfg.alpha)
            g = t.ravel()
            if np.isfinite(g).all():
                norm = np.sqrt(np.sum((inp.factor.T @ g) ** 2) + np.sum(inp.diag * g * g))
                sd_mode = float(np.where(inp.mu > 0, inp.mu * t, 0.0).sum() + np.sqrt(inp.gamma) * norm)
            else:
                sd_mode = np.inf
        F = inp.p[None, st.plug] - inp.occ[:, st.plug] - (st.By_dest @ Y.T).T
        Fq = F + inp.qa[None, st.plug]
        charging = float(np.where(Fq > 0, inp.c[:, st.plug] / Fq, np.inf).sum())
    nominal = w_km * idle + w1 * sd_nom + w2 * charging
    objective = w_km * idle + w1 * sd_mode + w2 * charging
    return {"objective": objective, "nominal_objective": nominal, "idle_km": idle, "supply_demand": sd_nom,
            "supply_demand_mode": sd_mode, "charging": charging, "robust_premium": objective - nominal,
            "weighted_idle_km": w_km * idle, "weighted_supply_demand": w1 * sd_mode,
            "weighted_charging": w2 * charging}
