"""Solver backends: choice, licence detection, conic solves and status -> error mapping.

Two ways to solve a :class:`drbalance.problem.BalancingProblem`:

* the **conic fast path**: the problem's standard conic data ``min q^T x  s.t.  A x + s = b, s ∈ K``
  is assembled once per shape with scipy.sparse; each re-solve only changes ``q``, ``b`` and the
  values (not the pattern) of ``A``, and is passed to Clarabel's Python API directly
  (:class:`ConicSolver`, the solver object persists and is updated in place) or to SCS (warm-started
  from the previous solution);
* the **cvxpy reference path** (:func:`solve_cvxpy`), rebuilt per call: slower, but an independent
  modelling of the same problem, and the way to reach MOSEK.

Backends: ``"clarabel"`` (the default, always named explicitly: cvxpy would otherwise pick MOSEK
first when it is importable, which fails without a licence), ``"scs"`` (first-order fallback), and
``"mosek"`` (only with a licence, detected once per process and cached), or ``"auto"`` (MOSEK if
licensed, else Clarabel).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field

import clarabel
import numpy as np
import scipy.sparse as sp
import scs

from drbalance.errors import ConfigError, InfeasibleError, LicenceError, SolverError, UnboundedError

SOLVERS = ("clarabel", "scs", "mosek", "auto")

LICENCE_HINT = ("install a MOSEK licence file at ~/mosek/mosek.lic or point the MOSEKLM_LICENSE_FILE environment "
                "variable at it (free academic licences: https://www.mosek.com/products/academic-licenses/), "
                "or use solver='clarabel'")


@functools.lru_cache(maxsize=1)
def mosek_licence_available() -> bool:
    """True when ``mosek`` is importable and a licence can be checked out (tested once per process).

    The check calls ``mosek.Env().checkoutlicense(mosek.feature.pts)``; any failure (no package, no
    licence file, expired licence, no licence server) means False.  The result is cached with
    :func:`functools.lru_cache`; call ``mosek_licence_available.cache_clear()`` after installing a licence.
    """
    try:
        import mosek  # lazy (a): optional dependency (drbalance[mosek])
    except ImportError:
        return False
    try:
        with mosek.Env() as env:
            env.checkoutlicense(mosek.feature.pts)
        return True
    except Exception:  # mosek.Error and anything the licence client raises
        return False


def resolve_solver(name: str) -> str:
    """The backend to use for ``name`` (one of :data:`SOLVERS`); raises LicenceError for MOSEK without licence."""
    name = str(name).lower()
    if name not in SOLVERS:
        raise ConfigError(f"unknown solver {name!r}; choose one of {', '.join(SOLVERS)}")
    if name == "auto":
        return "mosek" if mosek_licence_available() else "clarabel"
    if name == "mosek" and not mosek_licence_available():
        where = os.environ.get("MOSEKLM_LICENSE_FILE")
        looked = f"MOSEKLM_LICENSE_FILE={where}" if where else "MOSEKLM_LICENSE_FILE is unset"
        raise LicenceError(f"MOSEK was requested but no valid licence was found ({looked}); {LICENCE_HINT}")
    return name


# ---------------------------------------------------------------------------------------------- cones
@dataclass(frozen=True)
class ConeSpec:
    """Cone layout of ``s = b - A x`` in this order: ``zero`` equalities, ``nonneg`` inequalities,
    ``soc3`` three-dimensional second-order cones, one ``big_soc`` of dimension ``big_soc``
    (0 = none), then ``n_pow`` 3-dimensional power cones with exponent ``pow_alpha``
    (``x^a y^(1-a) >= |z|``).  SCS needs second-order cones before power cones; Clarabel takes any order."""

    zero: int
    nonneg: int
    soc3: int
    big_soc: int = 0
    n_pow: int = 0
    pow_alpha: float = 0.5

    @property
    def rows(self) -> int:
        return self.zero + self.nonneg + 3 * self.soc3 + self.big_soc + 3 * self.n_pow

    def clarabel(self) -> list:
        cones = []
        if self.zero:
            cones.append(clarabel.ZeroConeT(self.zero))
        if self.nonneg:
            cones.append(clarabel.NonnegativeConeT(self.nonneg))
        cones += [clarabel.SecondOrderConeT(3)] * self.soc3
        if self.big_soc:
            cones.append(clarabel.SecondOrderConeT(self.big_soc))
        cones += [clarabel.PowerConeT(self.pow_alpha)] * self.n_pow
        return cones

    def scs(self) -> dict:
        q = [3] * self.soc3 + ([self.big_soc] if self.big_soc else [])
        return {"z": self.zero, "l": self.nonneg, "q": q, "p": [self.pow_alpha] * self.n_pow}


@dataclass
class ConicResult:
    """Primal solution ``x``, objective ``q^T x``, solver status and effort of one conic solve."""

    x: np.ndarray
    objective: float
    status: str
    solve_seconds: float
    iterations: int
    solver: str


@dataclass
class ClarabelOptions:
    """Clarabel settings the balancer exposes (defaults are Clarabel's, except verbosity).

    ``tol_gap_rel``/``tol_gap_abs``/``tol_feas``: termination tolerances (Clarabel default 1e-8).
    ``direct_solve_method``: ``"qdldl"`` (default here: the issue measured ``faer`` 3x slower on this model).
    """

    tol_gap_rel: float = 1e-8
    tol_gap_abs: float = 1e-8
    tol_feas: float = 1e-8
    max_iter: int = 200
    direct_solve_method: str = "qdldl"
    time_limit: float = float("inf")

    def settings(self):
        st = clarabel.DefaultSettings()
        st.verbose = False
        st.tol_gap_rel, st.tol_gap_abs, st.tol_feas = self.tol_gap_rel, self.tol_gap_abs, self.tol_feas
        st.max_iter = self.max_iter
        st.direct_solve_method = self.direct_solve_method
        st.time_limit = self.time_limit
        return st


@dataclass
class ConicSolver:
    """A conic solve whose data pattern is fixed and whose values change between calls.

    ``A`` keeps its sparsity pattern (explicit zeros included); :meth:`solve` takes new ``q``, ``b``
    and optionally a new ``A.data`` in the same pattern.  Clarabel's solver object is created on the
    first call and then updated in place (``solver.update``), which skips its setup (KKT assembly and
    symbolic factorisation); SCS is rebuilt only when ``A`` changes and is warm-started from the
    previous solution.
    """

    A: sp.csc_matrix
    cones: ConeSpec
    backend: str = "clarabel"
    clarabel_options: ClarabelOptions = field(default_factory=ClarabelOptions)
    scs_eps: float = 1e-6
    scs_max_iters: int = 20000
    _solver: object = field(default=None, repr=False)
    _warm: dict | None = field(default=None, repr=False)
    _scs_A_version: int = field(default=-1, repr=False)
    _A_version: int = field(default=0, repr=False)
    _A_dirty: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.backend not in ("clarabel", "scs"):
            raise ConfigError(f"the conic fast path supports clarabel and scs, not {self.backend!r}; "
                              "use backend='cvxpy' for MOSEK")
        if self.A.shape[0] != self.cones.rows:
            raise SolverError(f"internal: A has {self.A.shape[0]} rows but the cones hold {self.cones.rows}")

    def set_A_values(self, data: np.ndarray) -> None:
        """Replace ``A.data`` (same pattern)."""
        if data.shape != self.A.data.shape:
            raise SolverError("internal: new A values do not match the fixed sparsity pattern")
        self.A = sp.csc_matrix((data, self.A.indices, self.A.indptr), shape=self.A.shape)
        self._A_version += 1
        self._A_dirty = True

    def solve(self, q: np.ndarray, b: np.ndarray) -> ConicResult:
        if self.backend == "clarabel":
            return self._solve_clarabel(q, b)
        return self._solve_scs(q, b)

    def _solve_clarabel(self, q: np.ndarray, b: np.ndarray) -> ConicResult:
        t0 = time.perf_counter()
        if self._solver is None or not self._solver.is_data_update_allowed():
            P = sp.csc_matrix(self.A.shape[1:] * 2)
            self._solver = clarabel.DefaultSolver(P, q, self.A, b, self.cones.clarabel(),
                                                  self.clarabel_options.settings())
        elif self._A_dirty:
            self._solver.update(q=q, b=b, A=self.A)
        else:
            self._solver.update(q=q, b=b)
        self._A_dirty = False
        sol = self._solver.solve()
        seconds = time.perf_counter() - t0
        status = str(sol.status)
        x = np.asarray(sol.x)
        return ConicResult(x, float(q @ x), status, seconds, int(sol.iterations), "clarabel")

    def _solve_scs(self, q: np.ndarray, b: np.ndarray) -> ConicResult:
        t0 = time.perf_counter()
        if self._solver is None or self._scs_A_version != self._A_version:
            self._solver = scs.SCS({"A": self.A, "b": b, "c": q}, self.cones.scs(), verbose=False,
                                   eps_abs=self.scs_eps, eps_rel=self.scs_eps, max_iters=self.scs_max_iters)
            self._scs_A_version = self._A_version
        else:
            self._solver.update(b=b, c=q)
        if self._warm is not None:
            sol = self._solver.solve(warm_start=True, x=self._warm["x"], y=self._warm["y"], s=self._warm["s"])
        else:
            sol = self._solver.solve()
        seconds = time.perf_counter() - t0
        info = sol["info"]
        status = str(info["status"])
        if status == "solved":
            self._warm = {"x": sol["x"], "y": sol["y"], "s": sol["s"]}
        x = np.asarray(sol["x"])
        return ConicResult(x, float(q @ x), status, seconds, int(info["iter"]), "scs")


# ------------------------------------------------------------------------------- status -> errors
def _key(status: str) -> str:
    return str(status).lower().replace("_", "").replace(" ", "")


_OK = {"solved", "optimal"}
_INACCURATE = {"almostsolved", "solvedinaccurate", "optimalinaccurate"}
_INFEASIBLE = {"primalinfeasible", "almostprimalinfeasible", "infeasible", "infeasibleinaccurate"}
_UNBOUNDED = {"dualinfeasible", "almostdualinfeasible", "unbounded", "unboundedinaccurate"}


def check_status(status: str, solver: str, hint_infeasible: str, accept_inaccurate: bool = False) -> str:
    """Normalise a solver status; raise InfeasibleError / UnboundedError / SolverError when not solved.

    Knows Clarabel (``Solved``, ``AlmostSolved``, ``PrimalInfeasible``...), SCS (``solved``,
    ``solved_inaccurate``...) and cvxpy (``optimal``...) statuses.  Returns ``"optimal"``, or
    ``"optimal_inaccurate"`` only when ``accept_inaccurate`` is set.
    """
    k = _key(status)
    if k in _OK:
        return "optimal"
    if k in _INACCURATE:
        if accept_inaccurate:
            return "optimal_inaccurate"
        raise SolverError(f"{solver} stopped at status {status!r} (solved only to reduced accuracy); "
                          "loosen the tolerances, set accept_inaccurate=True, or try solver='scs'/'mosek'")
    if k in _INFEASIBLE:
        raise InfeasibleError(f"{solver} reports the balancing problem infeasible (status {status!r}); "
                              f"{hint_infeasible}")
    if k in _UNBOUNDED:
        raise UnboundedError(f"{solver} reports the balancing problem unbounded (status {status!r}); this is a "
                             "modelling error (e.g. a negative demand weight): report it with the instance")
    raise SolverError(f"{solver} failed with status {status!r}; try a looser tolerance, more iterations or "
                      "another solver ('clarabel', 'scs', 'mosek')")


def solve_cvxpy(problem, solver: str, hint_infeasible: str, accept_inaccurate: bool = False,
                scs_eps: float = 1e-6, clarabel_options: ClarabelOptions | None = None) -> tuple[str, float, int]:
    """Solve a cvxpy problem with the named backend; returns (status, solver seconds, iterations).

    The solver is always named explicitly (``cp.CLARABEL``, ``cp.SCS`` or ``cp.MOSEK``).
    """
    import cvxpy as cp  # lazy (b): heavy (~0.4 s), only on the reference path; solvers loads with the CLI

    backend = resolve_solver(solver)
    kwargs: dict = {}
    if backend == "clarabel":
        o = clarabel_options or ClarabelOptions()
        kwargs = {"tol_gap_rel": o.tol_gap_rel, "tol_gap_abs": o.tol_gap_abs, "tol_feas": o.tol_feas,
                  "max_iter": o.max_iter}
    elif backend == "scs":
        kwargs = {"eps_abs": scs_eps, "eps_rel": scs_eps, "max_iters": 100000}
    name = {"clarabel": cp.CLARABEL, "scs": cp.SCS, "mosek": cp.MOSEK}[backend]
    try:
        problem.solve(solver=name, **kwargs)
    except cp.error.SolverError as exc:
        raise SolverError(f"{backend} failed inside cvxpy: {exc}") from exc
    status = check_status(str(problem.status), backend, hint_infeasible, accept_inaccurate)
    stats = problem.solver_stats
    return status, float(stats.solve_time or 0.0), int(stats.num_iters or 0)
