"""The report's numbers: metric units and directions, paired differences, headline sentences, tables.

Every metric shown has a unit, a better direction and a physical range (:data:`METRIC_INFO`); an
interval is clipped to that range (a served rate never reads 118 %).  Paired differences against the
baseline policy come from the results' ``paired`` object when the evaluation wrote one
(``paired[name]["served_rate_pp"]["mean"/"ci95"]``, ...), otherwise they are computed here from the
per-day runs (same day, same requests, same fleet draw: a Student-t interval over the days'
differences; none for a single day).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class MetricInfo:
    """How to show one metric: ``label``, ``unit``, ``better`` (+1 larger, -1 smaller, 0 neither),
    physical range ``low``..``high`` (None: unbounded) and ``scale`` (shown value = value x scale)."""

    label: str
    unit: str
    better: int
    low: float | None = None
    high: float | None = None
    scale: float = 1.0


#: the comparison table's rows, in order (keys of ``comparison.csv``/``runs.parquet``)
METRIC_INFO = {
    "served_rate": MetricInfo("served rate", "%", +1, 0.0, 1.0, 100.0),
    "served": MetricInfo("served requests", "per day", +1, 0.0),
    "unserved": MetricInfo("unserved requests", "per day", -1, 0.0),
    "wait_mean_min": MetricInfo("mean passenger wait", "min", -1, 0.0),
    "balancing_km": MetricInfo("balancing km (empty moves + drives to chargers)", "km/day", -1, 0.0),
    "evmt_share": MetricInfo("empty share of all km", "%", -1, 0.0, 1.0, 100.0),
    "rebalancing_cost": MetricInfo("rebalancing cost", "scenario units/day", -1, 0.0),
    "charge_queue_mean_min": MetricInfo("mean queue at chargers", "min", -1, 0.0),
    "u_m_mean": MetricInfo("mobility fairness u_m", "0 = fair", +1, None, 0.0),
    "u_m_all_mean": MetricInfo("u_m incl. regions without vacant EVs", "0 = fair", +1, None, 0.0),
    "u_c_mean": MetricInfo("charging fairness u_c", "0 = fair", +1, None, 0.0),
    "step_s_median": MetricInfo("controller step time (median)", "s", -1, 0.0),
    "fallbacks": MetricInfo("solver fallbacks", "per day", -1, 0.0),
}

#: paired differences against the baseline: key -> (runs column, unit, kind: "pp" / "pct" / "diff", better)
PAIRED = {
    "served_rate_pp": ("served_rate", "pp", "pp", +1),
    "balancing_km_pct": ("balancing_km", "%", "pct", -1),
    "wait_min": ("wait_mean_min", "min", "diff", -1),
    "u_m_all_pct": ("u_m_all_mean", "%", "pct", +1),
}


def baseline_of(policies: list[str]) -> str | None:
    """The policy the others are compared with: ``nominal`` if run, else the first (None if fewer than 2)."""
    if len(policies) < 2:
        return None
    return "nominal" if "nominal" in policies else policies[0]


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(float(x))


def paired_differences(runs: pd.DataFrame | None, baseline: str, payload: dict | None = None) -> dict:
    """``{policy: {key: {"mean", "ci95" ([lo, hi] or None), "n", "source"}}}`` for every policy but
    ``baseline``: the ``paired`` object of ``payload`` where it has the key (``source`` ``evaluation``),
    else computed from ``runs`` paired by day (``source`` ``report``)."""
    given = (payload or {}).get("paired") or {}
    out: dict = {}
    if runs is None or "policy" not in runs or baseline not in set(runs["policy"]):
        names = [n for n in given if n != baseline]
    else:
        names = [n for n in dict.fromkeys(runs["policy"]) if n != baseline]
    for name in names:
        out[name] = {}
        for key, (col, _unit, kind, _better) in PAIRED.items():
            g = given.get(name, {}).get(key) if isinstance(given.get(name), dict) else None
            if isinstance(g, dict) and _finite(g.get("mean")):
                ci = g.get("ci95")
                ci = [float(ci[0]), float(ci[1])] if isinstance(ci, (list, tuple)) and len(ci) == 2 \
                    and all(_finite(c) for c in ci) else None
                out[name][key] = {"mean": float(g["mean"]), "ci95": ci, "n": g.get("n_pairs", g.get("n")),
                                  "source": "evaluation"}
            elif runs is not None and col in runs and "day" in runs:
                d = _paired_from_runs(runs, name, baseline, col, kind)
                if d is not None:
                    out[name][key] = d
    return out


def _paired_from_runs(runs: pd.DataFrame, name: str, baseline: str, col: str, kind: str) -> dict | None:
    p = runs[runs["policy"] == name].set_index("day")[col].astype(float)
    b = runs[runs["policy"] == baseline].set_index("day")[col].astype(float)
    both = pd.concat([p, b], axis=1, keys=["p", "b"], join="inner").dropna()
    if both.empty:
        return None
    diff = (both["p"] - both["b"]).to_numpy()
    if kind == "pp":
        diff = 100.0 * diff
    elif kind == "pct":
        base = abs(float(both["b"].mean()))
        if base == 0:
            return None
        diff = 100.0 * diff / base
    n = len(diff)
    mean = float(diff.mean())
    ci = None
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / math.sqrt(n))
        ci = [mean - half, mean + half]
    return {"mean": mean, "ci95": ci, "n": n, "source": "report"}


def _num(x: float, digits: int = 1) -> str:
    s = f"{x:.{digits}f}"
    return "0" if float(s) == 0 else s.replace("-", "−")


def _ci_text(ci, unit: str = "") -> str:
    sep = "–" if ci[0] >= 0 else " to "    # "0.9–1.9", "−5.0 to −1.0", "−0.3 to 0.5"
    return f"95 % CI {_num(ci[0])}{sep}{_num(ci[1])}{unit}"


def headline(name: str, baseline: str, paired: dict) -> str:
    """One sentence (plain text) comparing ``name`` with ``baseline`` from its paired differences;
    claims a direction only where the 95 % interval excludes zero, and says so when there is none."""
    parts = []
    served = paired.get("served_rate_pp")
    if served:
        m, ci, n = served["mean"], served["ci95"], served.get("n")
        if ci is not None and m == 0 and ci[0] == ci[1] == 0:
            parts.append(f"served exactly as many requests as {baseline} in every paired replay")
        elif ci is None:
            parts.append(f"served {_num(abs(m))} pp {'more' if m >= 0 else 'fewer'} requests than {baseline}"
                         f" (no interval: {n or 'one'} day{'s' if (n or 1) > 1 else ''} replayed)")
        elif ci[0] > 0 or ci[1] < 0:
            parts.append(f"served {_num(abs(m))} pp {'more' if m > 0 else 'fewer'} requests than {baseline} "
                         f"({_ci_text(ci)})")
        else:
            parts.append(f"served about as many requests as {baseline} ({'+' if m >= 0 else ''}{_num(m)} pp, "
                         f"{_ci_text(ci)}: no clear difference)")
    km = paired.get("balancing_km_pct")
    if km:
        m, ci = km["mean"], km["ci95"]
        if ci is None:
            parts.append(f"drove {_num(abs(m), 0)} % {'more' if m >= 0 else 'fewer'} balancing km (no interval)")
        elif ci[0] > 0 or ci[1] < 0:
            parts.append(f"drove {_num(abs(m), 0)} % {'more' if m > 0 else 'fewer'} balancing km ({_ci_text(ci, ' %')})")
        else:
            parts.append(f"drove about as many balancing km ({_ci_text(ci, ' %')})")
    if not parts:
        return f"{name} vs {baseline}: no paired result in this folder."
    return f"{name} " + " and ".join(parts) + "."


def run_description(data) -> str:
    """The question, the data and the fleet of a run in one sentence (plain text)."""
    p = data.payload
    cfg = p.get("config") or {}
    study = cfg.get("study", cfg) if isinstance(cfg, dict) else {}
    fleet = (study.get("sim") or {}).get("fleet_size") or (p.get("extra") or {}).get("fleet") or p.get("vehicles")
    regions = p.get("n_regions") or (p.get("extra") or {}).get("n_regions")
    if data.kind == "simulate":
        return (f"One day ({p.get('day', '?')}) replayed with {fleet} EVs over {regions} regions under policy "
                f"{p.get('policy')}: {p.get('served', '?'):,} of {p.get('requests', '?'):,} requests served.")
    days = p.get("days") or (p.get("extra") or {}).get("days") or []
    n_days = len(days) if isinstance(days, list) else days
    source = f"scenario {p['scenario']}" if data.kind == "evaluate-scenario" else "the trip records"
    train = (study.get("evaluation") or {}).get("train")
    trained = f", trained on {train[0]} to {train[1]}" if train and data.kind == "evaluate" else ""
    return (f"Does robust dispatch beat non-robust dispatch? {n_days} day(s) of {source} replayed with "
            f"{fleet} EVs over {regions} regions{trained}, under {', '.join(data.policies)}.")


def _cell(mean, lo, hi, info: MetricInfo, n_days) -> str:
    if not _finite(mean):
        return "–"
    if info.low is not None:
        lo, hi = (max(v, info.low) if _finite(v) else v for v in (lo, hi))
    if info.high is not None:
        lo, hi = (min(v, info.high) if _finite(v) else v for v in (lo, hi))
    s = info.scale
    digits = 1 if abs(mean * s) >= 10 or info.unit == "%" else 3
    text = _num(mean * s, digits)
    if _finite(lo) and _finite(hi) and (n_days or 0) > 1:
        text += f" <span class='ci'>[{_num(lo * s, digits)}, {_num(hi * s, digits)}]</span>"
    return text


def comparison_rows(data) -> list[dict]:
    """Rows of the comparison table: ``key``, ``label``, ``unit``, ``better`` (arrow text) and ``cells``
    (HTML per policy: mean and 95 % interval over days, clipped to the metric's range)."""
    names = data.policies
    rows = []
    table = data.comparison
    if table is not None and "metric" in table:
        idx = table.set_index(["policy", "metric"])
    else:
        idx = None
    for key, info in METRIC_INFO.items():
        cells = []
        for n in names:
            if idx is not None and (n, key) in idx.index:
                r = idx.loc[(n, key)]
                cells.append(_cell(r["mean"], r.get("ci_low"), r.get("ci_high"), info, r.get("n_days")))
            elif data.runs is not None and key in data.runs and "policy" in data.runs:
                v = pd.to_numeric(data.runs.loc[data.runs["policy"] == n, key], errors="coerce")
                cells.append(_cell(float(v.mean()) if v.notna().any() else float("nan"), None, None, info, 1))
            else:
                cells.append("–")
        if all(c == "–" for c in cells):
            continue
        arrow = {1: "↑ higher is better", -1: "↓ lower is better"}.get(info.better, "")
        rows.append({"key": key, "label": info.label, "unit": info.unit, "better": arrow, "cells": cells})
    return rows


def shared_rows(payload: dict) -> list | None:
    """The terminal table's rows (:func:`drbalance.tables.evaluation_rows`: labels with unit and
    direction, values, paired changes against the baseline) for a payload of the paired evaluation
    protocol (one with ``paired``); None when that module or protocol is absent (then the report
    builds its rows from ``comparison.csv``)."""
    if not payload.get("paired") or not payload.get("policies"):
        return None
    try:
        from drbalance.tables import evaluation_rows  # lazy: optional, the terminal table's one definition
    except ImportError:
        return None
    return evaluation_rows(payload)


def shared_table_html(rows: list, names: list[str], baseline: str | None) -> str:
    """:func:`shared_rows` as an HTML table: per policy its value and, below it, the paired change."""
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = []
    for r in rows:
        cells = []
        for n in names:
            change = r.changes.get(n, "")
            sub = f"<br><span class='ci'>Δ {html.escape(change)}</span>" if change and change != "–" else ""
            cells.append(f"<td>{html.escape(r.values.get(n, '–'))}{sub}</td>")
        note = f"<br><span class='unit'>{html.escape(r.change_label.strip())}</span>" if r.change_label else ""
        body.append(f"<tr><th class='metric'>{html.escape(r.label)}{note}</th><td class='dir'>"
                    f"{'↑ higher is better' if r.better > 0 else '↓ lower is better'}</td>{''.join(cells)}</tr>")
    return (f"<table class='cmp' id='comparison'><thead><tr><th>metric, unit, direction</th><th>better</th>{head}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table>")


def comparison_html(data) -> str:
    """The comparison table as an HTML ``<table>``: the terminal table's rows (:func:`shared_rows`) for
    a paired-protocol payload, else built here from ``comparison.csv`` / the runs."""
    names = data.policies
    rows = shared_rows(data.payload) if data.kind == "evaluate" else None
    if rows:
        return shared_table_html(rows, names, data.payload.get("baseline"))
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = []
    for r in comparison_rows(data):
        cells = "".join(f"<td>{c}</td>" for c in r["cells"])
        body.append(f"<tr><th class='metric'>{html.escape(r['label'])} <span class='unit'>({html.escape(r['unit'])})"
                    f"</span></th><td class='dir'>{r['better']}</td>{cells}</tr>")
    return (f"<table class='cmp' id='comparison'><thead><tr><th>metric (unit)</th><th>better</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def paired_html(paired: dict, baseline: str) -> str:
    """Paired differences against ``baseline`` as an HTML table (empty string when there are none)."""
    if not paired:
        return ""
    head = "".join(f"<th>{html.escape(k)} <span class='unit'>({PAIRED[k][1]}, "
                   f"{'↑' if PAIRED[k][3] > 0 else '↓'} better)</span></th>" for k in PAIRED)
    body = []
    for name, d in paired.items():
        cells = []
        for k in PAIRED:
            v = d.get(k)
            if not v:
                cells.append("<td>–</td>")
                continue
            ci = f" <span class='ci'>[{_num(v['ci95'][0])}, {_num(v['ci95'][1])}]</span>" if v["ci95"] else \
                " <span class='ci'>(no interval)</span>"
            cells.append(f"<td>{'+' if v['mean'] > 0 else ''}{_num(v['mean'])}{ci}</td>")
        body.append(f"<tr><th>{html.escape(name)} − {html.escape(baseline)}</th>{''.join(cells)}</tr>")
    return (f"<table class='cmp' id='paired'><thead><tr><th>paired difference (same days)</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")
