"""Distributed AIMD for Problem 2: splitting ``M`` shared items between consumers and prosumers.

Two agents hold real-valued states: ``x_s`` (items the consumer population claims; its surge QoS is
``f_s(x_s) = F(x_s + T; N, p_s)``) and ``x_b`` (the prosumers' reserve, ``f_b(x_b) = F(x_b; T, p_b)``),
with ``F`` the continuous binomial CDF of :func:`~drbalance.planning.hybrid_supply.binom_cdf_continuous`.
Each time step, when ``x_s + x_b < M`` both add ``α`` (additive increase).  A step with
``x_s + x_b >= M`` is a *capacity event*: the one-bit congestion signal is broadcast and each agent
``i`` independently multiplies its state by ``β`` with probability ``λ_i`` (multiplicative
decrease); an agent that does not back off holds its state.

The back-off probabilities depend only on the agent's own average state ``x̄_i`` over capacity
events (no private data is exchanged, only the one-bit signal and the common constant ``Γ``):

* 2a (maximise ``f_s + f_b``, paper Alg. 1): ``λ_i = Γ / (x̄_i f_i'(x̄_i))`` with ``f_i'`` the
  binomial pmf (:func:`~drbalance.planning.hybrid_supply.binom_pmf_continuous`, paper eq. 21);
* 2b (equalise, Alg. 2): ``λ_i = Γ f_i(x̄_i) / x̄_i``.

Why it works: in expectation over an event, ``E x_i' = (1 - λ_i (1 - β)) x_i + α t`` with ``t`` the
common number of increase steps, so a stationary average satisfies ``λ_i x̄_i = α E t / (1-β)``,
the same for both agents.  The 2a rule turns that into ``f_s'(x̄_s) = f_b'(x̄_b)`` (the KKT condition
of ``max f_s + f_b`` s.t. ``x_s + x_b = M``), the 2b rule into ``f_s(x̄_s) = f_b(x̄_b)``.  ``λ`` is
clipped to ``[0, 1]``.  The binomial CDFs are not concave (paper Remark 3): below its mode the pmf
*falls*, so an agent far below its need would back off more, the wrong way (and from an even
split both agents can sit in tails with ``λ = 1`` for ever).  The 2a rule therefore uses the
concave surrogate's derivative ``f_i'(max(x, mode_i))``: it equals the pmf wherever the optimum can
lie (both QoS above 50 %) and stays at its peak below the mode.

Averaging: the plain running mean over all events (``averaging="mean"``, paper eqs. 19-20)
converges like ``k^-c`` where ``c`` is the contraction of the averaged dynamics; ``c`` is small for
2b (both QoS are flat near 98 %), and the early transient lingers.  The default ``"ewma"`` is the
running mean for the first ``1/forgetting`` events and then an exponentially weighted mean with
weight ``forgetting`` per event (forgetting), which removes the transient geometrically; the
weight sets the remaining noise (:func:`default_schedule`).  Runs start from ``(x_s, x_b) = (M, 0)``
(no reserve), from which 2b converges much faster than from an even split (the restoring force
below the optimum is strong, above it ``f_b`` is flat).

Simulation is event-driven: the deterministic increase phase between two capacity events is jumped
in one go (``ceil(gap / 2α)`` steps), so the cost is per event, not per time step.  The allocation
estimate is ``Q̂ = round(M x̄_b / (x̄_s + x̄_b))`` (the averages at capacity events sum to slightly
more than ``M``; the rescaling removes that overshoot of at most ``2α``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from drbalance.errors import ConfigError
from drbalance.planning.hybrid_supply import (
    RequestProbabilities,
    binom_cdf_continuous,
    binom_pmf_continuous,
    solve_problem2,
)

__all__ = [
    "AIMDConfig",
    "AIMDResult",
    "run_aimd",
    "default_gamma",
    "default_schedule",
    "continuous_optimum",
    "enumerated_target",
]

_PROBLEMS = ("max", "eq")
#: Cap on the automatically chosen number of capacity events (about 2-3 µs each).
MAX_DEFAULT_EVENTS = 5_000_000
_CHUNK = 1 << 20


@dataclass(frozen=True)
class AIMDConfig:
    """Parameters of the AIMD run.

    ``alpha``: additive increase per agent per step (items); ``beta``: multiplicative decrease
    factor in ``(0, 1)``; ``gamma``: the common constant ``Γ`` of the back-off rule (``None``:
    :func:`default_gamma` with ``gamma_fraction``); ``averaging``: ``"ewma"`` (default: running mean
    until ``1/forgetting`` events, then exponential forgetting with weight ``forgetting`` per event)
    or ``"mean"`` (plain running mean, paper eqs. 19-20); ``forgetting`` and ``events`` (capacity
    events to simulate): ``None`` picks them from the problem's scale (:func:`default_schedule`);
    ``record_every``: thinning of the recorded trajectory (``None``: at most about 20 000 points);
    ``x0``: initial ``(x_s, x_b)`` (items; ``None``: ``(M, 0)``, everything to the consumers, no
    reserve, the operator's natural starting point); ``seed``: seed of the ``numpy`` Generator.
    """

    alpha: float = 0.1
    beta: float = 0.8
    gamma: float | None = None
    gamma_fraction: float = 0.6
    averaging: str = "ewma"
    forgetting: float | None = None
    events: int | None = None
    record_every: int | None = None
    x0: tuple[float, float] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.alpha > 0:
            raise ConfigError(f"AIMD alpha (additive increase, items/step) must be > 0; got {self.alpha}")
        if not 0.0 < self.beta < 1.0:
            raise ConfigError(f"AIMD beta (multiplicative decrease) must be in (0, 1); got {self.beta}")
        if self.gamma is not None and not self.gamma > 0:
            raise ConfigError(f"AIMD gamma must be > 0 (or None for the default); got {self.gamma}")
        if not 0.0 < self.gamma_fraction <= 1.0:
            raise ConfigError(f"AIMD gamma_fraction must be in (0, 1]; got {self.gamma_fraction}")
        if self.averaging not in ("ewma", "mean"):
            raise ConfigError(f"AIMD averaging is 'ewma' or 'mean'; got {self.averaging!r}")
        if self.forgetting is not None and not 0.0 < self.forgetting <= 1.0:
            raise ConfigError(f"AIMD forgetting (EWMA weight per event) must be in (0, 1]; got {self.forgetting}")
        if self.events is not None and int(self.events) < 1:
            raise ConfigError(f"AIMD events must be >= 1; got {self.events}")
        if self.record_every is not None and int(self.record_every) < 1:
            raise ConfigError(f"AIMD record_every must be >= 1; got {self.record_every}")
        if self.x0 is not None and (len(self.x0) != 2 or min(self.x0) < 0):
            raise ConfigError(f"AIMD initial states x0 are two numbers >= 0; got {self.x0}")


@dataclass
class AIMDResult:
    """Outcome of :func:`run_aimd`.

    ``q_hat``: the reserve the agents settle on (items, integer); ``xbar_s``, ``xbar_b``: final
    average states (items); ``steps``/``events``: time steps and capacity events simulated;
    ``gamma``, ``forgetting``: the values used.  ``event_step`` (shape ``(events,)``): the time step
    of each capacity event; ``event_q_hat`` (shape ``(events,)``): ``Q̂`` after each event.
    ``trajectory``: thinned arrays (one point every ``record_every`` events) keyed ``event``,
    ``step``, ``x_s``, ``x_b`` (states at the event, before back-off), ``xbar_s``, ``xbar_b``,
    ``lam_s``, ``lam_b``, ``signal_s``, ``signal_b`` (the consensus quantities: ``f'_i(x̄_i)`` for
    "max", ``f_i(x̄_i)`` for "eq").
    """

    problem: str
    N: int
    M: int
    T: int
    gamma: float
    forgetting: float
    config: AIMDConfig
    q_hat: int
    xbar_s: float
    xbar_b: float
    steps: int
    events: int
    event_step: np.ndarray = field(repr=False)
    event_q_hat: np.ndarray = field(repr=False)
    trajectory: dict[str, np.ndarray] = field(repr=False)

    def settle_index(self, target: int, tol: int = 1) -> int | None:
        """First event index from which ``|Q̂ - target| <= tol`` holds to the end (None if never)."""
        bad = np.flatnonzero(np.abs(self.event_q_hat.astype(np.int64) - target) > tol)
        if bad.size == 0:
            return 0
        if bad[-1] == self.events - 1:
            return None
        return int(bad[-1] + 1)

    def steps_to_converge(self, target: int, tol: int = 1) -> int | None:
        """Time steps until ``Q̂`` enters ``target ± tol`` for good (None if it never does)."""
        k = self.settle_index(target, tol)
        return None if k is None else int(self.event_step[k])

    def events_to_converge(self, target: int, tol: int = 1) -> int | None:
        """Capacity events until ``Q̂`` enters ``target ± tol`` for good (None if never)."""
        k = self.settle_index(target, tol)
        return None if k is None else k + 1


def _cdf(x: float, n: float, p: float) -> float:
    if x >= n:
        return 1.0
    if x <= -1.0:
        return 0.0
    return float(special.betainc(n - x, x + 1.0, 1.0 - p))


def _mode(n: float, p: float) -> float:
    """Maximiser of the continuous binomial pmf (to within a few hundredths of an item)."""
    return max((n + 1.0) * p - 0.5, 0.0)


def _signals(problem: str, xs, xb, N: int, T: int, probs: RequestProbabilities):
    """Consensus quantities of the two agents at (arrays of) states ``xs``, ``xb`` (items):
    the concave-surrogate marginals ``f'`` for "max", the QoS ``f`` for "eq"."""
    xs, xb = np.asarray(xs, dtype=float), np.asarray(xb, dtype=float)
    if problem == "max":
        ms, mb = _mode(N, probs.p_s), _mode(T, probs.p_b)
        return (
            binom_pmf_continuous(np.maximum(xs + T, ms), N, probs.p_s),
            binom_pmf_continuous(np.maximum(xb, mb), T, probs.p_b),
        )
    return binom_cdf_continuous(xs + T, N, probs.p_s), binom_cdf_continuous(xb, T, probs.p_b)


def continuous_optimum(problem: str, N: int, M: int, T: int, probs: RequestProbabilities) -> float:
    """The real split ``x_b`` (items) where the two consensus quantities cross with ``x_s = M - x_b``:
    the point the AIMD averages are driven to.  Found by bisection (the difference is monotone in
    ``x_b``: ``f_b'`` falls and ``f_s'(M - x_b)`` rises on the concave surrogate; ``f_b`` rises and
    ``f_s`` falls).  Returns 0 or ``M`` when they do not cross inside."""
    lo, hi = 0.0, float(M)

    def h(x: float) -> float:
        ss, sb = _signals(problem, M - x, x, N, T, probs)
        return float(np.log(max(float(sb), 1e-300)) - np.log(max(float(ss), 1e-300)))

    sign = -1.0 if problem == "max" else 1.0  # "max": h falls with x_b; "eq": h rises
    if sign * h(lo) >= 0:
        return lo
    if sign * h(hi) <= 0:
        return hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if sign * h(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def default_gamma(problem: str, N: int, M: int, T: int, probs: RequestProbabilities, *, fraction: float = 0.6) -> float:
    """A scale for ``Γ``: the larger back-off probability equals ``fraction`` at the continuous
    consensus point (:func:`continuous_optimum`).

    A one-off calibration from the public model (``N, M, T, p``).  ``Γ`` sets the speed and noise
    of the dynamics, not where they settle (only the ratio ``λ_s/λ_b`` does, as long as neither is
    clipped at 1), so a rough value is enough; tests check that ``Γ`` off by a factor 4 either way
    lands on the same split.
    """
    if problem not in _PROBLEMS:
        raise ConfigError(f"AIMD problem is 'max' (2a) or 'eq' (2b); got {problem!r}")
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"default_gamma fraction must be in (0, 1]; got {fraction}")
    xb = min(max(continuous_optimum(problem, N, M, T, probs), 0.5), M - 0.5)
    xs = M - xb
    ss, sb = (float(v) for v in _signals(problem, xs, xb, N, T, probs))
    if problem == "max":  # lambda_i = G / (x_i f_i'(x_i)) <= fraction
        g = fraction * min(xs * ss, xb * sb)
    else:  # lambda_i = G f_i(x_i) / x_i <= fraction
        g = fraction * min(xs / max(ss, 1e-300), xb / max(sb, 1e-300))
    if not (np.isfinite(g) and g > 0):
        raise ConfigError("could not calibrate AIMD gamma (degenerate QoS functions); pass gamma explicitly")
    return float(g)


def default_schedule(
    problem: str, N: int, M: int, T: int, probs: RequestProbabilities, *, fraction: float = 0.6
) -> tuple[float, float, int]:
    """``(Γ, forgetting, events)`` scaled to the problem.

    The average of the prosumer state is the noisy one: each consumer back-off frees
    ``(1-β) x_s`` items of which the prosumer agent grabs half, and the variance of an average over
    ``W`` events grows like ``x_s x_b / (λ_b W)`` (independent of ``β``), divided by the contraction
    of the averaged dynamics.  That contraction is strong for 2a (the pmf ratio changes fast) and
    weak for 2b (both QoS are flat near 98 %), so the forgetting weight is
    ``min(1e-3, κ / (x_s x_b))`` at the continuous consensus point with ``κ = 2`` (2a) or ``0.05``
    (2b), and the run lasts ``max(20 000, 10 / forgetting)`` (2a) or ``25 / forgetting`` (2b)
    events.  Tuned by measurement, not proven: docs/hybrid_supply.md gives the figures.
    """
    gamma = default_gamma(problem, N, M, T, probs, fraction=fraction)
    xb = min(max(continuous_optimum(problem, N, M, T, probs), 0.5), M - 0.5)
    kappa, windows = (2.0, 10.0) if problem == "max" else (0.05, 25.0)
    eps = min(1e-3, kappa / ((M - xb) * xb))
    events = int(max(20_000, math.ceil(windows / eps)))
    if events > MAX_DEFAULT_EVENTS:  # budget cap: forget faster, accept more noise
        events = MAX_DEFAULT_EVENTS
        eps = windows / events
    return gamma, eps, events


def run_aimd(
    problem: str,
    N: int,
    M: int,
    T: int,
    probs: RequestProbabilities,
    config: AIMDConfig | None = None,
) -> AIMDResult:
    """Simulate the two-agent AIMD for Problem 2a (``problem="max"``) or 2b (``"eq"``).

    ``N`` consumers, ``M`` shared items, ``T`` prosumers (counts); request probabilities from
    ``probs`` (``p_s``, ``p_b`` in (0, 1)).  Every random draw comes from
    ``numpy.random.default_rng(config.seed)``.  Returns an :class:`AIMDResult` with the trajectory.
    The loop runs once per capacity event (a sequential Markov chain; the increase phase between
    events is computed in closed form).
    """
    cfg = config or AIMDConfig()
    if problem not in _PROBLEMS:
        raise ConfigError(f"AIMD problem is 'max' (2a) or 'eq' (2b); got {problem!r}")
    if not (N >= 1 and M >= 1 and T >= 1):
        raise ConfigError(f"AIMD needs N, M, T >= 1; got N={N}, M={M}, T={T}")
    for name in ("p_s", "p_b"):
        p = getattr(probs, name)
        if not 0.0 < p < 1.0:
            raise ConfigError(f"AIMD needs {name} strictly inside (0, 1) (smooth QoS); got {p}")
    g0, eps0, ev0 = default_schedule(problem, N, M, T, probs, fraction=cfg.gamma_fraction)
    gamma = g0 if cfg.gamma is None else float(cfg.gamma)
    eps = eps0 if cfg.forgetting is None else float(cfg.forgetting)
    n_ev = int(ev0 if cfg.events is None else cfg.events)
    every = int(cfg.record_every or max(1, n_ev // 20_000))
    rng = np.random.default_rng(cfg.seed)

    alpha, beta = float(cfg.alpha), float(cfg.beta)
    ewma = cfg.averaging == "ewma"
    ps, pb = probs.p_s, probs.p_b
    Nf, Tf, Mf = float(N), float(T), float(M)
    # log pmf(x; n, p) = c0 - lgamma(x + 1) - lgamma(n - x + 1) + x log(p / (1 - p))
    c0_s = math.lgamma(Nf + 1.0) + Nf * math.log1p(-ps)
    c0_b = math.lgamma(Tf + 1.0) + Tf * math.log1p(-pb)
    lo_s, lo_b = math.log(ps) - math.log1p(-ps), math.log(pb) - math.log1p(-pb)
    log_gamma = math.log(gamma)
    mode_s, mode_b = _mode(Nf, ps), _mode(Tf, pb)
    lgamma, log, exp, ceil = math.lgamma, math.log, math.exp, math.ceil
    is_max = problem == "max"

    ev_step = np.empty(n_ev, dtype=np.int64)
    ev_q = np.empty(n_ev, dtype=np.int32)
    n_rec = (n_ev + every - 1) // every
    keys = ("event", "step", "x_s", "x_b", "xbar_s", "xbar_b", "lam_s", "lam_b", "signal_s", "signal_b")
    rec = {k: np.empty(n_rec) for k in keys}

    x_s, x_b = (Mf, 0.0) if cfg.x0 is None else map(float, cfg.x0)
    m_s = m_b = 0.0
    step = 0
    two_alpha = 2.0 * alpha
    for k in range(n_ev):
        if k % _CHUNK == 0:  # uniforms for the back-off coins, drawn in chunks to bound memory
            u = rng.random((2, min(_CHUNK, n_ev - k)))
            u_s, u_b = u[0].tolist(), u[1].tolist()
        gap = Mf - x_s - x_b
        if gap > 0.0:
            n_inc = ceil(gap / two_alpha)
            x_s += n_inc * alpha
            x_b += n_inc * alpha
            step += n_inc
        else:
            step += 1  # congested step: the signal repeats, states hold
        # capacity event: update the averages ...
        w = 1.0 / (k + 1)
        if ewma and w < eps:
            w = eps
        m_s += w * (x_s - m_s)
        m_b += w * (x_b - m_b)
        # ... the back-off probabilities from them ...
        if is_max:
            # concave surrogate: below its mode the pmf is held at its peak value
            ys = m_s + Tf if m_s + Tf > mode_s else mode_s
            yb = m_b if m_b > mode_b else mode_b
            lps = c0_s - lgamma(ys + 1.0) - lgamma(Nf - ys + 1.0) + ys * lo_s if ys < Nf + 1.0 else -math.inf
            lpb = c0_b - lgamma(yb + 1.0) - lgamma(Tf - yb + 1.0) + yb * lo_b if yb < Tf + 1.0 else -math.inf
            # lambda = G / (x f'(x)), in logs to survive pmf underflow in the tails
            a_s = log_gamma - log(m_s if m_s > 1e-12 else 1e-12) - lps
            a_b = log_gamma - log(m_b if m_b > 1e-12 else 1e-12) - lpb
            lam_s = 1.0 if a_s >= 0.0 else exp(a_s)
            lam_b = 1.0 if a_b >= 0.0 else exp(a_b)
        else:
            sig_s = _cdf(m_s + Tf, Nf, ps)
            sig_b = _cdf(m_b, Tf, pb)
            lam_s = min(1.0, gamma * sig_s / (m_s if m_s > 1e-12 else 1e-12))
            lam_b = min(1.0, gamma * sig_b / (m_b if m_b > 1e-12 else 1e-12))
        ev_step[k] = step
        ev_q[k] = round(Mf * m_b / (m_s + m_b))
        if k % every == 0:
            j = k // every
            if is_max:
                sig_s = exp(lps) if lps > -745.0 else 0.0
                sig_b = exp(lpb) if lpb > -745.0 else 0.0
            for key, val in zip(keys, (k, step, x_s, x_b, m_s, m_b, lam_s, lam_b, sig_s, sig_b)):
                rec[key][j] = val
        # ... and the multiplicative decrease
        if u_s[k % _CHUNK] < lam_s:
            x_s *= beta
        if u_b[k % _CHUNK] < lam_b:
            x_b *= beta

    return AIMDResult(
        problem=problem,
        N=int(N),
        M=int(M),
        T=int(T),
        gamma=float(gamma),
        forgetting=float(eps),
        config=cfg,
        q_hat=int(ev_q[-1]),
        xbar_s=float(m_s),
        xbar_b=float(m_b),
        steps=int(step),
        events=n_ev,
        event_step=ev_step,
        event_q_hat=ev_q,
        trajectory=rec,
    )


def enumerated_target(problem: str, N: int, M: int, T: int, probs: RequestProbabilities) -> int:
    """The enumerated optimum ``Q*`` the AIMD run should reach (2a: ``q_max``, 2b: ``q_eq``)."""
    sol = solve_problem2(N, M, T, probs)
    return sol.q_max if problem == "max" else sol.q_eq
