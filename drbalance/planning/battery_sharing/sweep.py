"""Reduction against ``N`` and ``α`` (the paper's Fig. 3): sweep, summary statistics and plot."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from drbalance.planning.battery_sharing.algorithm import run_trial
from drbalance.planning.battery_sharing.config import PlanningConfig, ProgressFn
from drbalance.planning.battery_sharing.need_models import NeedModel
from drbalance.planning.battery_sharing.scenario_program import ScenarioLP


def reduction_sweep(
    model_factory: Callable[[int, np.random.Generator], NeedModel],
    n_drivers: Iterable[int],
    alphas: Sequence[float] = (0.75, 0.85, 0.95),
    config: PlanningConfig = PlanningConfig(),
    progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """Relative reduction for each ``N``, ``α`` and trial (Algorithm 2 per trial, as in Fig. 3).

    model_factory(N, rng) builds the need model of a trial (e.g. a fresh draw of ``N`` ACN drivers),
    so the band covers both sampling and which drivers are pooled.  For each (N, trial) the draws
    are shared across ``alphas``.  Returns one row per (n_drivers, alpha, trial) with columns
    ``reduction``, ``reliability``, ``meets_target``, ``shared_kwh``, ``nonshared_kwh``, ``n_scenarios``.
    """
    n_values = [int(v) for v in n_drivers]
    for a in alphas:
        PlanningConfig(alpha=a)  # validates
    rows = []
    done = 0
    for k, n in enumerate(n_values):
        children = np.random.SeedSequence([config.seed, k]).spawn(config.trials)
        program = ScenarioLP(n, solver=config.solver) if config.method == "lp" else None
        for t in range(config.trials):
            rng = np.random.default_rng(children[t])
            model = model_factory(n, rng)
            for a, trial in zip(alphas, run_trial(model, list(alphas), config, rng, program, {})):
                rows.append(
                    {
                        "n_drivers": n,
                        "alpha": a,
                        "trial": t,
                        "reduction": trial.reduction,
                        "reliability": trial.search.reliability,
                        "meets_target": trial.search.meets_target,
                        "shared_kwh": trial.search.solution.total_kwh,
                        "nonshared_kwh": trial.nonshared.total_kwh,
                        "n_scenarios": trial.search.solution.n_scenarios,
                    }
                )
            done += 1
            if progress is not None:
                progress(done)
    return pd.DataFrame(rows)


def summarise_sweep(frame: pd.DataFrame) -> pd.DataFrame:
    """Median, quartiles and deciles of the reduction per (alpha, n_drivers)."""
    g = frame.groupby(["alpha", "n_drivers"])["reduction"]
    return pd.DataFrame(
        {
            "median": g.median(),
            "q25": g.quantile(0.25),
            "q75": g.quantile(0.75),
            "q10": g.quantile(0.10),
            "q90": g.quantile(0.90),
            "trials": g.size(),
        }
    ).reset_index()


def plot_reduction(frame: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Fig. 3-style plot: reduction (%) against N per α, median line with interquartile band."""
    from matplotlib.figure import Figure  # lazy (b): heavy (~0.7 s), only when plotting

    stats = summarise_sweep(frame)
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    for a, part in stats.groupby("alpha"):
        line = ax.plot(part["n_drivers"], 100 * part["median"], "--", marker="o", ms=3, label=f"α = {a:g}")
        ax.fill_between(part["n_drivers"], 100 * part["q25"], 100 * part["q75"], color=line[0].get_color(), alpha=0.25)
        ax.fill_between(part["n_drivers"], 100 * part["q10"], 100 * part["q90"], color=line[0].get_color(), alpha=0.10)
    ax.set_xlabel("number of drivers N")
    ax.set_ylabel("reduction in total battery capacity (%)")
    ax.set_title(title or "Capacity reduction through sharing (median, IQR, IDR)")
    ax.grid(alpha=0.3)
    ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
