"""Plotly figures of the HTML report: day profiles per policy, the city map with a time slider and a
policy switch, and the Pareto plot of a sweep.

The map draws the regions on plain longitude/latitude axes (filled polygons, no map tiles: the report
opens offline).  For NYC runs the polygons are the TLC taxi zones bundled with drbalance
(``datasets/nyc_green_2021q1/taxi_zones_simplified.geojson``, simplified from the TLC shapefile); a region
is drawn as the union of its zones.  Elsewhere (or without a zone table) the regions are centroid points.
Each frame of the map is one (policy, slot); the policy buttons switch which slider is shown.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale
from plotly.subplots import make_subplots

#: the profiles drawn: (slots column, title, unit)
PROFILES = (("served_rate", "served rate", "%"), ("vacant", "vacant EVs (after dispatch)", "EVs"),
            ("mean_queued", "queue at chargers", "EVs waiting"), ("km_balancing", "balancing km per slot", "km"))
#: map layers: region_slots column -> (title, colour scale)
MAP_LAYERS = {"unserved": ("unserved requests", "Reds"), "vacant": ("vacant EVs", "Blues")}
ZONES_GEOJSON = "nyc_green_2021q1/taxi_zones_simplified.geojson"


def policy_colours(policies: list[str]) -> dict[str, str]:
    """One colour per policy, the same in every figure."""
    pal = qualitative.Plotly
    return {p: pal[i % len(pal)] for i, p in enumerate(policies)}


def _hours(slots: pd.DataFrame, slot_minutes: int) -> pd.Series:
    """Hour of day at the start of each slot (from ``start`` when present, else ``slot``)."""
    if "start" in slots:
        t = pd.to_datetime(slots["start"])
        return t.dt.hour + t.dt.minute / 60.0
    return slots["slot"] * slot_minutes / 60.0


def profiles_figure(slots: pd.DataFrame, policies: list[str], slot_minutes: int) -> go.Figure:
    """Served rate, vacant EVs, queue at chargers and balancing km per slot (mean over days), one line
    per policy; the legend toggles a policy in all four panels."""
    s = slots.copy()
    s["km_balancing"] = s.get("km_vacant_moves", 0.0) + s.get("km_charge_moves", 0.0)
    s["served_rate"] = 100.0 * s["served_rate"]
    s["hour"] = _hours(s, slot_minutes)
    shown = [p for p in PROFILES if p[0] in s]
    rows = math.ceil(len(shown) / 2)
    fig = make_subplots(rows=rows, cols=2, subplot_titles=[f"{t} ({u})" for _, t, u in shown],
                        horizontal_spacing=0.08, vertical_spacing=0.14)
    colours = policy_colours(policies)
    n_days = s["day"].nunique() if "day" in s else 1
    for i, (col, title, unit) in enumerate(shown):
        r, c = i // 2 + 1, i % 2 + 1
        for p in policies:
            g = s[s["policy"] == p].groupby("hour", sort=True)[col].mean()
            fig.add_trace(go.Scatter(x=g.index, y=g.to_numpy(), mode="lines", name=p, legendgroup=p,
                                     showlegend=i == 0, line={"color": colours[p], "width": 2},
                                     hovertemplate=f"{p}<br>%{{x:.2f}} h: %{{y:.3g}} {unit}<extra></extra>"),
                          row=r, col=c)
        fig.update_xaxes(title_text="hour of day", row=r, col=c)
    fig.update_layout(height=330 * rows, margin={"t": 60, "b": 40, "l": 50, "r": 20},
                      title=f"Day profiles: mean over {n_days} day(s) per slot", legend={"orientation": "h", "y": -0.12})
    return fig


@lru_cache(maxsize=1)
def _zone_rings() -> dict[int, list[np.ndarray]]:
    """Exterior rings (lon, lat arrays) of the bundled TLC zones by LocationID."""
    text = (resources.files("drbalance.datasets") / ZONES_GEOJSON).read_text()
    out: dict[int, list[np.ndarray]] = {}
    for f in json.loads(text)["features"]:
        g = f["geometry"]
        polys = [g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]
        out[int(f["properties"]["LocationID"])] = [np.asarray(p[0], float) for p in polys]
    return out


def region_outlines(regions: pd.DataFrame) -> dict | None:
    """``{region id: (lon list, lat list)}`` outlining each region's zones (rings separated by None), or
    None when the zones are not TLC zones of the bundled map (then the map shows centroid points)."""
    if "zone" not in regions:
        return None
    rings = _zone_rings()
    zones = pd.to_numeric(regions["zone"], errors="coerce")
    if not zones.isin(list(rings)).mean() > 0.9:
        return None
    out = {}
    for rid, g in regions.assign(zone=zones).groupby("region", sort=False):
        xs, ys = [], []
        for z in g["zone"].dropna().astype(int):
            for ring in rings.get(z, []):
                xs += ring[:, 0].tolist() + [None]
                ys += ring[:, 1].tolist() + [None]
        out[rid] = (xs, ys)
    return out


def _centroids(regions: pd.DataFrame) -> pd.DataFrame:
    first = regions.drop_duplicates("region").set_index("region")
    if {"lat", "lon"} <= set(first.columns):
        return first[["lat", "lon"]].astype(float)
    return pd.DataFrame(columns=["lat", "lon"], dtype=float)


def map_figure(region_slots: pd.DataFrame, regions: pd.DataFrame, policies: list[str], value: str,
               slot_minutes: int) -> go.Figure | None:
    """Regions coloured by ``value`` (``unserved`` or ``vacant``; mean over days) with a slider over the
    day's slots and one button per policy; None when the regions have neither polygons nor centroids."""
    title, scale = MAP_LAYERS[value]
    cent = _centroids(regions)
    outlines = region_outlines(regions)
    rids = [r for r in dict.fromkeys(regions["region"]) if r in cent.index or (outlines and r in outlines)]
    if not rids or cent.dropna().empty:
        return None
    policies = [p for p in policies if p in set(region_slots["policy"])]
    cube = (region_slots[region_slots["policy"].isin(policies)]
            .groupby(["policy", "slot", "region"])[value].mean())
    slots = sorted(region_slots["slot"].unique())
    full = pd.MultiIndex.from_product([policies, slots, rids], names=["policy", "slot", "region"])
    vals = cube.reindex(full, fill_value=0.0).to_numpy(float).reshape(len(policies), len(slots), len(rids))
    vmax = max(float(np.nanmax(vals)) if vals.size else 0.0, 1e-9)
    names = regions.drop_duplicates("region").set_index("region")
    label = {r: str(names["region_name"].get(r, r)) if "region_name" in names else str(r) for r in rids}
    start_min = int(slots[0]) * slot_minutes if slots else 0

    def when(k: int) -> str:
        m = int(slots[k]) * slot_minutes
        return f"{m // 60:02d}:{m % 60:02d}"

    def frame_data(pi: int, k: int) -> list[dict]:
        v = vals[pi, k]
        colours = sample_colorscale(scale, list(np.clip(v / vmax, 0, 1)))
        hover = [f"{label[r]}<br>{title}: {x:.3g}" for r, x in zip(rids, v)]
        data = [{"fillcolor": c} for c in colours] if outlines else []
        return data + [{"marker": {"color": v.tolist(), "cmin": 0, "cmax": vmax, "colorscale": scale},
                        "hovertext": hover}]

    fig = go.Figure()
    if outlines:
        for r in rids:
            xs, ys = outlines.get(r, ([], []))
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", line={"width": 0.4, "color": "#888"},
                                     hoverinfo="skip", showlegend=False, name=label[r]))
    c = cent.reindex(rids)
    first = frame_data(0, 0)
    fig.add_trace(go.Scatter(
        x=c["lon"], y=c["lat"], mode="markers", showlegend=False, hoverinfo="text", hovertext=first[-1]["hovertext"],
        marker={"size": 7 if outlines else 16, "color": first[-1]["marker"]["color"], "colorscale": scale,
                "cmin": 0, "cmax": vmax, "line": {"width": 0.5, "color": "#333"},
                "colorbar": {"title": {"text": title}}}))
    if outlines:
        for i, d in enumerate(first[:-1]):
            fig.data[i].fillcolor = d["fillcolor"]
    traces = list(range(len(fig.data)))
    fig.frames = [go.Frame(name=f"{p}|{k}", data=frame_data(pi, k), traces=traces)
                  for pi, p in enumerate(policies) for k in range(len(slots))]
    anim = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    sliders = [{"active": 0, "visible": pi == 0, "currentvalue": {"prefix": f"{p}: slot starting "},
                "pad": {"t": 40}, "len": 0.9, "x": 0.05,
                "steps": [{"label": when(k), "method": "animate", "args": [[f"{p}|{k}"], anim]}
                          for k in range(len(slots))]} for pi, p in enumerate(policies)]
    buttons = []
    for pi, p in enumerate(policies):
        d = frame_data(pi, 0)
        restyle = {"marker.color": [None] * (len(traces) - 1) + [d[-1]["marker"]["color"]],
                   "hovertext": [None] * (len(traces) - 1) + [d[-1]["hovertext"]]}
        if outlines:
            restyle["fillcolor"] = [x["fillcolor"] for x in d[:-1]] + [None]
        layout = {f"sliders[{j}].visible": j == pi for j in range(len(policies))}
        layout.update({f"sliders[{pi}].active": 0})
        buttons.append({"label": p, "method": "update", "args": [restyle, layout]})
    lat0 = float(c["lat"].mean())
    fig.update_layout(
        title=f"{title} per region (mean over days): drag the slider through the day; buttons switch policy",
        sliders=sliders, height=640, margin={"t": 90, "l": 10, "r": 10, "b": 10}, plot_bgcolor="white",
        updatemenus=[{"type": "buttons", "direction": "right", "buttons": buttons, "showactive": True,
                      "x": 0.0, "xanchor": "left", "y": 1.09, "yanchor": "top"}],
        xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x",
                                         "scaleratio": 1.0 / max(math.cos(math.radians(lat0)), 0.1)})
    fig.layout.meta = {"regions": len(rids), "polygons": bool(outlines), "start_minute": start_min}
    return fig


def pareto_figure(sweep: pd.DataFrame) -> go.Figure | None:
    """Balancing km against served rate of every swept scenario, one colour per policy, the Pareto
    front (fewest km for the most served) as a line; None when the sweep lacks those columns."""
    km = "balancing_km" if "balancing_km" in sweep else ("empty_km" if "empty_km" in sweep else None)
    if km is None or "served_rate" not in sweep or sweep.empty:
        return None
    s = sweep.dropna(subset=[km, "served_rate"]).copy()
    s["served_pct"] = 100.0 * s["served_rate"]
    group = "policy" if "policy" in s else None
    params = [c for c in ("policy", "fleet", "strategy", "mix", "power_kw", "hours") if c in s]
    hover = s[params].astype(str).agg(", ".join, axis=1) if params else pd.Series("", index=s.index)
    fig = go.Figure()
    colours = policy_colours(list(dict.fromkeys(s[group]))) if group else {"all": qualitative.Plotly[0]}
    for name, g in (s.groupby(group, sort=False) if group else [("all", s)]):
        fig.add_trace(go.Scatter(x=g[km], y=g["served_pct"], mode="markers", name=str(name),
                                 marker={"color": colours[name], "size": 9}, hovertext=hover[g.index],
                                 hovertemplate="%{hovertext}<br>%{x:.1f} km, %{y:.2f} % served<extra></extra>"))
    order = s.sort_values([km, "served_pct"], ascending=[True, False])
    front = order[order["served_pct"] >= order["served_pct"].cummax()]
    fig.add_trace(go.Scatter(x=front[km], y=front["served_pct"], mode="lines", name="Pareto front",
                             line={"color": "#333", "dash": "dot"}))
    fig.update_layout(title="Sweep: balancing km against served rate (up and left is better)",
                      xaxis_title=f"{km.replace('_', ' ')} (km per day)", yaxis_title="served rate (%)", height=480)
    return fig
