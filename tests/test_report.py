"""The HTML report without a browser: self-contained content, the headline's claims, paired
intervals, clipped table intervals, the map's frames, and the ``report`` command's errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from drbalance.cli import main
from drbalance.report import build_report, write_report
from drbalance.report_data import load_run
from drbalance.report_figures import map_figure, region_outlines
from drbalance.report_tables import comparison_rows, headline, paired_differences

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report_evaluation"


@pytest.fixture(scope="module")
def page() -> str:
    return build_report(FIXTURE)


def test_report_is_self_contained(page):
    """No script, style or image is loaded from elsewhere: plotly.js and the data are inlined."""
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<(link|img|iframe)[^>]*(href|src)=[\"']?(https?:)?//", page)
    assert "Plotly.newPlot" in page and len(page) > 3_000_000      # plotly.js itself (~4.6 MB) is in the file
    assert page.count("class=\"plotly-graph-div\"") == 3           # profiles + two map layers
    assert "[evaluation]" in page and "fleet_size" in page          # the resolved config.toml


def test_report_names_question_policies_and_headline(page):
    assert "Does robust dispatch beat non-robust dispatch?" in page and "80 EVs over 8 regions" in page
    items = re.findall(r"<li>(.*?)</li>", page.split("id='headline'>")[1].split("</ul>")[0])
    assert len(items) == 2 and items[0].startswith("noop ") and items[1].startswith("dr ")
    assert "vs nominal" in page or "than nominal" in page


def test_headline_claims_only_what_the_interval_supports():
    more = {"served_rate_pp": {"mean": 1.4, "ci95": [0.9, 1.9], "n": 5},
            "balancing_km_pct": {"mean": -3.2, "ci95": [-5.0, -1.0], "n": 5}}
    assert headline("dr", "nominal", more) == ("dr served 1.4 pp more requests than nominal (95 % CI 0.9–1.9) "
                                               "and drove 3 % fewer balancing km (95 % CI −5.0 to −1.0 %).")
    unclear = headline("dr", "nominal", {"served_rate_pp": {"mean": 0.2, "ci95": [-0.3, 0.7], "n": 5}})
    assert "about as many" in unclear and "no clear difference" in unclear and "more requests" not in unclear
    single = headline("dr", "nominal", {"served_rate_pp": {"mean": -0.5, "ci95": None, "n": 1}})
    assert "0.5 pp fewer" in single and "no interval" in single
    assert "no paired result" in headline("dr", "nominal", {})


def test_paired_differences_from_runs_match_a_hand_computed_t_interval():
    runs = pd.DataFrame({"policy": ["nominal"] * 3 + ["dr"] * 3, "day": ["a", "b", "c"] * 2,
                         "served_rate": [0.90, 0.80, 0.85, 0.92, 0.81, 0.88],
                         "balancing_km": [100.0, 200.0, 300.0, 90.0, 190.0, 270.0]})
    d = paired_differences(runs, "nominal")["dr"]
    diffs = np.array([2.0, 1.0, 3.0])                       # pp
    half = 4.302652729911275 * diffs.std(ddof=1) / np.sqrt(3)   # t(0.975, 2)
    assert d["served_rate_pp"]["mean"] == pytest.approx(2.0)
    assert d["served_rate_pp"]["ci95"] == pytest.approx([2.0 - half, 2.0 + half])
    assert d["balancing_km_pct"]["mean"] == pytest.approx(100 * (-50 / 3) / 200)   # diffs -10, -10, -30 km on a 200 km mean
    assert d["served_rate_pp"]["source"] == "report"


def test_paired_object_of_the_evaluation_wins_over_the_runs():
    data = load_run(FIXTURE)
    payload = {"paired": {"dr": {"served_rate_pp": {"mean": 1.5, "ci95": [1.0, 2.0], "n_pairs": 2}}}}
    d = paired_differences(data.runs, "nominal", payload)["dr"]["served_rate_pp"]
    assert d == {"mean": 1.5, "ci95": [1.0, 2.0], "n": 2, "source": "evaluation"}


def test_table_intervals_stay_inside_the_metric_range():
    data = load_run(FIXTURE)
    data.payload = {k: v for k, v in data.payload.items() if k != "paired"}   # today's comparison.csv rows
    rows = {r["key"]: r for r in comparison_rows(data)}
    served = rows["served_rate"]
    assert served["unit"] == "%" and served["better"].startswith("↑")
    for cell in served["cells"]:
        hi = float(re.search(r"\[([\d.]+), ([\d.]+)\]", cell).group(2))
        assert hi <= 100.0
    assert rows["unserved"]["better"].startswith("↓")


def test_map_has_a_polygon_per_region_and_a_frame_per_policy_and_slot():
    data = load_run(FIXTURE)
    fig = map_figure(data.region_slots, data.regions, data.policies, "unserved", data.slot_minutes)
    n_regions, n_slots = data.regions["region"].nunique(), data.region_slots["slot"].nunique()
    assert sum(t.fill == "toself" for t in fig.data) == n_regions == 8
    assert len(fig.frames) == len(data.policies) * n_slots == 3 * 16
    assert len(fig.layout.sliders) == 3 and [s.visible for s in fig.layout.sliders] == [True, False, False]
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["noop", "nominal", "dr"]
    # a frame's marker colours are that policy's mean unserved requests per region in that slot
    cube = data.region_slots.groupby(["policy", "slot", "region"])["unserved"].mean()
    frame = next(f for f in fig.frames if f.name == "dr|2")
    rids = list(dict.fromkeys(data.regions["region"]))
    assert list(frame.data[-1].marker.color) == pytest.approx(
        cube.reindex(pd.MultiIndex.from_product([["dr"], [2], rids])).fillna(0).tolist())


def test_map_falls_back_to_centroids_outside_nyc():
    regions = pd.DataFrame({"zone": ["a", "b"], "region": [0, 1], "region_name": ["A", "B"],
                            "lat": [41.9, 41.8], "lon": [12.5, 12.4]})
    assert region_outlines(regions) is None
    rs = pd.DataFrame({"policy": "p", "slot": [0, 0, 1, 1], "region": [0, 1, 0, 1], "unserved": [1, 2, 3, 4]})
    fig = map_figure(rs, regions, ["p"], "unserved", 15)
    assert len(fig.data) == 1 and fig.data[0].mode == "markers" and len(fig.frames) == 2


def test_simulate_folder_without_map_data_reports_it(tmp_path):
    slots = pd.read_parquet(FIXTURE / "slots.parquet")
    one = slots[(slots["policy"] == "noop") & (slots["day"] == "2021-03-02")].drop(columns=["policy", "day"])
    one.to_parquet(tmp_path / "slots.parquet")
    (tmp_path / "summary.json").write_text(json.dumps({"policy": "noop", "day": "2021-03-02", "requests": 40,
                                                       "served": 36, "unserved": 4, "served_rate": 0.9,
                                                       "vehicles": 80, "n_regions": 8}))
    page = build_report(tmp_path)
    assert "policy noop: 36 of 40 requests served" in page and "No map" in page and "id='headline'" not in page


def test_report_command_writes_the_file_and_prints_its_path(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(FIXTURE), "--out", str(out)]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out


@pytest.mark.parametrize("make", ["missing", "file", "empty", "corrupt"])
def test_report_on_a_folder_that_is_not_results_is_one_line_exit_1(tmp_path, capsys, make):
    target = tmp_path / "run"
    if make == "file":
        target.write_text("x")
    elif make == "empty":
        target.mkdir()
    elif make == "corrupt":
        shutil.copytree(FIXTURE, target)
        (target / "evaluation.json").write_text("{not json")
    assert main(["report", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("drbalance report: DataError: ") and str(target) in err[0]
    assert not (target / "report.html").exists() if target.is_dir() else True


def test_write_report_default_path_is_inside_the_folder(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    assert write_report(run) == run / "report.html"


def test_sweep_folder_gets_the_pareto_plot_with_its_front(tmp_path):
    from drbalance.report_figures import pareto_figure

    sweep = pd.DataFrame({"policy": ["noop", "dr", "dr", "nominal"], "fleet": [100, 100, 200, 100],
                          "balancing_km": [0.0, 50.0, 80.0, 60.0], "served_rate": [0.80, 0.90, 0.95, 0.85]})
    fig = pareto_figure(sweep)
    front = fig.data[-1]
    assert front.name == "Pareto front" and list(front.x) == [0.0, 50.0, 80.0]   # nominal (60 km, 85 %) is dominated
    assert {t.name for t in fig.data[:-1]} == {"noop", "dr", "nominal"}
    sweep.to_parquet(tmp_path / "sweep.parquet")
    page = build_report(tmp_path)
    assert "id=\"pareto\"" in page and "No map" not in page
