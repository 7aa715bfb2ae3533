"""The self-contained HTML report of a results folder: ``write_report(run_dir) -> Path``.

One file that opens offline (plotly.js and every number are inlined; nothing is fetched): the
question, the data and the fleet; one headline sentence per policy compared with the baseline
(``nominal``, else the first policy) that claims a direction only where the paired 95 % interval
excludes zero; the comparison table (unit and better direction of every metric, intervals clipped to
the metric's range) and the paired differences; day profiles per policy; the city map (unserved
requests and vacant EVs per region, a slider over the day and a policy switch) when the folder holds
the map data; the Pareto plot of a sweep; and the resolved ``config.toml``.

Reads the folders of ``evaluate``, ``evaluate-scenario``, ``simulate``, ``sweep`` and ``demo`` (see
:mod:`drbalance.report_data`).
"""

from __future__ import annotations

import html
import time
from pathlib import Path

from drbalance import report_data, report_figures, report_tables
from drbalance.io import write_text_atomic

#: the report's file name inside the results folder when no ``out`` is given
REPORT_NAME = "report.html"

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;
color:#222}
h1{font-size:1.6em;margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.question{font-size:1.1em;color:#444} ul.headline li{font-size:1.15em;margin:.4em 0}
table.cmp{border-collapse:collapse;margin:1em 0;font-size:.92em} table.cmp th,table.cmp td{padding:.35em .7em;
border-bottom:1px solid #e3e3e3;text-align:right} table.cmp th.metric,table.cmp thead th:first-child{text-align:left}
.unit,.ci,.dir{color:#777;font-size:.88em} .dir{white-space:nowrap} .note{color:#666;font-style:italic}
pre.config{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:.85em}
"""


def default_output(run_dir) -> Path:
    """Where :func:`write_report` writes without ``out``: ``RUN_DIR/report.html``."""
    return Path(run_dir) / REPORT_NAME


def write_report(run_dir, out=None) -> Path:
    """Build the report of the results folder ``run_dir`` and write it to ``out`` (default
    ``RUN_DIR/report.html``) atomically; returns the path.  Raises :class:`~drbalance.errors.DataError`
    for a folder that is not a drbalance results folder."""
    out = Path(out) if out is not None else default_output(run_dir)
    write_text_atomic(out, build_report(run_dir))
    return out


def build_report(run_dir) -> str:
    """The report of ``run_dir`` as one HTML string (see the module doc)."""
    import plotly.offline

    t0 = time.perf_counter()
    data = report_data.load_run(run_dir)
    sections = [_summary_section(data)]
    figures = []
    if data.slots is not None and "policy" in data.slots and len(data.slots):
        figures.append(("profiles", "Day profiles",
                        report_figures.profiles_figure(data.slots, data.policies, data.slot_minutes), ""))
    _map_figures(data, figures)
    if data.sweep is not None:
        fig = report_figures.pareto_figure(data.sweep)
        note = "" if fig is not None else "<p class='note'>The sweep table has no balancing_km / served_rate.</p>"
        figures.append(("pareto", "Pareto: km against served", fig, note))
    for div_id, title, fig, note in figures:   # fig None: the note says why there is no figure
        if fig is not None:   # auto_play off: the map's frames are for the slider, not an animation on load
            note += fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, auto_play=False,
                                config={"displaylogo": False, "responsive": True})
        body = note
        sections.append(f"<section class='figure' id='sec-{div_id}'><h2>{html.escape(title)}</h2>{body}</section>")
    if data.config_text:
        sections.append("<section id='sec-config'><h2>Resolved configuration (config.toml)</h2>"
                        f"<pre class='config'>{html.escape(data.config_text)}</pre>"
                        "<p class='note'>Re-run it with <code>--config config.toml</code>.</p></section>")
    title = f"drbalance {data.kind} report: {data.folder}"
    footer = (f"<p class='note'>Written by drbalance from {html.escape(str(data.folder))} in "
              f"{time.perf_counter() - t0:.1f} s; self-contained (plotly.js {plotly.__version__} inlined), "
              "opens offline.</p>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style>"
            f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head><body>"
            f"<h1>{html.escape(title)}</h1>{''.join(sections)}{footer}</body></html>")


def _summary_section(data) -> str:
    """The question, the headline sentences and the tables."""
    parts = [f"<p class='question'>{html.escape(report_tables.run_description(data))}</p>"]
    baseline = report_tables.baseline_of(data.policies)
    paired = {}
    if baseline is not None:
        paired = report_tables.paired_differences(data.runs, baseline, data.payload)
        lines = "".join(f"<li>{html.escape(report_tables.headline(n, baseline, d))}</li>" for n, d in paired.items())
        source = {v.get("source") for d in paired.values() for v in d.values()}
        how = ("paired differences and 95 % intervals from the evaluation" if source == {"evaluation"} else
               "paired by day here: same requests, fleet draw and chargers; Student-t 95 % interval over days")
        parts.append(f"<h2>Headline</h2><ul class='headline' id='headline'>{lines}</ul>"
                     f"<p class='note'>Differences against {html.escape(baseline)} ({how}); a direction is "
                     "claimed only where the interval excludes zero.</p>")
    if data.estimates:
        est = data.estimates
        cov = est.get("coverage_robust"), est.get("coverage_dr")
        if all(isinstance(c, (int, float)) for c in cov):
            nominal = est.get("nominal_coverage_robust")
            target = f" (nominal {nominal:.2f})" if isinstance(nominal, (int, float)) else ""
            parts.append(f"<p>Uncertainty sets, held-out demand: robust-set coverage {cov[0]:.3f}{target}, DR-set "
                         f"coverage {cov[1]:.3f} (definitions and the other quantities: <code>estimates/</code>, "
                         "docs/estimates.md).</p>")
    if data.kind != "sweep":
        table = report_tables.comparison_html(data)
        how = ("Δ: paired change against the baseline, mean [95 % interval]" if "Δ" in table else
               "mean over days with its 95 % interval (Student t) in brackets, clipped to the metric's range")
        parts.append(f"<h2>Comparison</h2><p class='note'>{how}.</p>{table}")
        if paired and "Δ" not in table:   # the shared rows already carry the paired changes
            parts.append(report_tables.paired_html(paired, baseline))
    return f"<section id='sec-summary'>{''.join(parts)}</section>"


def _map_figures(data, figures: list) -> None:
    """Add the map figures to ``figures`` (or one entry whose note says why there is no map)."""
    if data.kind == "sweep":
        return
    if data.region_slots is None or data.regions is None:
        figures.append(("map", "Map", None, "<p class='note'>No map: this folder has no "
                        f"{report_data.REGION_SLOTS} and {report_data.REGIONS} (per-region results); "
                        "simulate writes them, and evaluate will (see docs/report.md).</p>"))
        return
    for value in report_figures.MAP_LAYERS:
        fig = report_figures.map_figure(data.region_slots, data.regions, data.policies, value, data.slot_minutes)
        if fig is None:
            figures.append(("map", "Map", None, "<p class='note'>No map: the regions have no location.</p>"))
            return
        kind = "TLC zone polygons" if fig.layout.meta["polygons"] else "region centroids (no polygons for these zones)"
        figures.append((f"map-{value}", f"Map: {report_figures.MAP_LAYERS[value][0]} ({kind})", fig, ""))
