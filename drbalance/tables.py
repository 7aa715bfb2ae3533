"""Tables a person reads: the evaluation's JSON (:func:`drbalance.evaluation.summary_json`) as rows of
labelled, unit-bearing values and changes against the baseline, and as plain text.

:func:`evaluation_rows` is the one definition of what the table shows (the HTML report reuses it);
:func:`format_evaluation` lays the rows out as text no wider than ``width`` (policies split into
blocks when they do not fit; ``None``: one block however wide, for a file).  Both are pure functions
of the JSON dict: no terminal, no I/O.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

#: ``(policies key, label, unit, better (+1 higher, -1 lower), value scale, decimals, paired key, change unit)``
ROWS = (
    ("served_rate", "served rate", "%", +1, 100.0, 2, "served_rate_pp", "pp"),
    ("unserved_per_day", "unserved", "requests/day", -1, 1.0, 1, "unserved_per_day", "requests"),
    ("wait_min_mean", "mean wait", "min", -1, 1.0, 2, "wait_min", "min"),
    ("wait_min_p90", "p90 wait", "min", -1, 1.0, 1, None, None),
    ("balancing_km", "balancing distance", "km/day", -1, 1.0, 0, "balancing_km_pct", "%"),
    ("u_m_common_mean", "u_m on regions all cover", "0 = fair", +1, 1.0, 3, "u_m_common_pct", "%"),
    ("u_m_all_mean", "u_m, every region", "0 = fair", +1, 1.0, 3, "u_m_all_pct", "%"),
    ("u_m_mean", "u_m, covered regions only", "0 = fair", +1, 1.0, 3, None, None),
    ("u_c_mean", "charging fairness u_c", "0 = fair", +1, 1.0, 3, None, None),
    ("fallback_share", "fallback share", "%", -1, 100.0, 1, None, None),
    ("step_s_median", "decision time, median", "s", -1, 1.0, 3, None, None),
)

ARROW = {+1: "↑", -1: "↓"}


@dataclass(frozen=True)
class Row:
    """One metric: ``label`` (with unit and better-direction), ``values`` (policy -> text, "–" where
    undefined) and ``changes`` (policy -> ``"mean [lo, hi]"`` against the baseline, "" where none);
    ``key`` the JSON key, ``better`` +1 (higher is better) or -1, ``change_label`` e.g.
    ``"Δ vs nominal, pp"`` ("" when the metric has no paired comparison)."""

    key: str
    label: str
    better: int
    values: dict
    changes: dict
    change_label: str


def _num(x, decimals: int, scale: float = 1.0, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    v = float(x) * scale
    return f"{v:+,.{decimals}f}" if sign else f"{v:,.{decimals}f}"


def _change(stat: dict | None, decimals: int) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    text = _num(stat["mean"], decimals, sign=True)
    ci = stat.get("ci95")
    if ci:
        text += f" [{_num(ci[0], decimals, sign=True)}, {_num(ci[1], decimals, sign=True)}]"
    return text


def evaluation_rows(payload: dict) -> list[Row]:
    """The rows of the evaluation table from the JSON ``payload`` (needs ``policies``; uses
    ``paired`` and ``baseline`` when present).  ``u_c`` values flagged ``u_c_reliable: false`` carry
    a ``*`` (fewer than 20 charging sessions per day)."""
    pols = payload.get("policies", {})
    paired = payload.get("paired", {}) or {}
    baseline = payload.get("baseline")
    rows = []
    for key, label, unit, better, scale, dec, pkey, punit in ROWS:
        if not any(key in p for p in pols.values()):
            continue
        values = {}
        for name, p in pols.items():
            v = _num(p.get(key), dec, scale)
            if key == "u_c_mean" and v != "–" and p.get("u_c_reliable") is False:
                v += "*"
            values[name] = v
        changes, change_label = {}, ""
        if pkey and baseline and paired:
            change_label = f"  Δ vs {baseline}, {punit}"
            cdec = dec if punit != "%" else 1
            for name in pols:
                changes[name] = "" if name == baseline else _change(paired.get(name, {}).get(pkey), cdec)
        rows.append(Row(key, f"{label}, {unit} {ARROW[better]}", better, values, changes, change_label))
    return rows


def headline(payload: dict) -> str:
    """One line: days x seeds, fleet (and how it was sized), regions, baseline."""
    days, seeds = payload.get("days") or [], payload.get("seeds") or []
    sizing = payload.get("fleet_sizing") or {}
    how = ""
    if sizing.get("sizing") == "auto":
        how = (f" (auto: {sizing['trips_per_ev']:g} trips/EV/day on the training weekdays' "
               f"{sizing['weekday_trips_per_day']:,.0f} trips/day)")
    parts = [f"{len(days)} day(s) x {len(seeds) or 1} seed(s)", f"{payload.get('fleet')} EVs{how}"]
    if payload.get("n_regions"):
        parts.append(f"{payload['n_regions']} regions")
    if payload.get("estimates"):
        parts.append(f"estimates {payload['estimates']}")
    if payload.get("baseline"):
        parts.append(f"baseline {payload['baseline']}")
    return ", ".join(parts)


LEGEND = ("↑ higher is better, ↓ lower is better; Δ: change vs the baseline over identical (day, seed) pairs, "
          "mean [95 % bootstrap interval over days]; – not defined; * u_c from < 20 charging sessions/day")


def format_evaluation(payload: dict, width: int | None = None) -> str:
    """The evaluation table as text: a headline, one line per metric (values per policy) followed by
    its change vs the baseline, a legend.  ``width``: the most characters per line (policies are
    split into as many blocks as needed; a block holds at least one policy); None: no limit."""
    rows = evaluation_rows(payload)
    names = list(payload.get("policies", {}))
    label_w = max([len("metric")] + [len(r.label) for r in rows] + [len(r.change_label) for r in rows if r.change_label])
    col_w = {n: max([len(n)] + [len(r.values.get(n, "")) for r in rows] + [len(r.changes.get(n, "")) for r in rows])
             for n in names}
    blocks, cur, used = [], [], label_w
    for n in names:
        if cur and width is not None and used + 2 + col_w[n] > width:
            blocks.append(cur)
            cur, used = [], label_w
        cur.append(n)
        used += 2 + col_w[n]
    if cur:
        blocks.append(cur)
    lines = [headline(payload)] if width is None else textwrap.wrap(headline(payload), width)
    for block in blocks:
        lines.append("")
        lines.append("metric".ljust(label_w) + "".join("  " + n.rjust(col_w[n]) for n in block))
        lines.append("-" * (label_w + sum(2 + col_w[n] for n in block)))
        for r in rows:
            lines.append(r.label.ljust(label_w) + "".join("  " + r.values.get(n, "").rjust(col_w[n]) for n in block))
            if r.change_label:
                lines.append(r.change_label.ljust(label_w)
                             + "".join("  " + r.changes.get(n, "").rjust(col_w[n]) for n in block))
    lines += [""] + ([LEGEND] if width is None else textwrap.wrap(LEGEND, width))
    return "\n".join(line.rstrip() for line in lines)
