"""CLI fuzz test (issue 17): every bad input gets one clear line, nothing is lost.

Every sub-command is driven through :func:`drbalance.cli.main` with generated bad option values
(numbers out of range, zero, negative, NaN/inf, non-numbers, bad dates and periods, empty lists,
unknown names), unwritable output paths, and corrupted copies of the small fixtures (truncated or
garbled parquet/CSV/JSON/gzip/TOML files, wrong columns, strings or infinities in numeric fields).
Each example must end with exit code 1 (one line on stderr, ``drbalance <command>: <ErrorType>:
<message>``, naming the bad input) or 2 (argparse's usage error), never a traceback, and must leave
nothing at its output paths (no result, no temporary file).

The inputs fail in validation or while reading, so an example takes a few milliseconds; the number
of examples per command is bounded by :data:`EXAMPLES` (the deterministic hypothesis profile of
``conftest.py`` draws the same examples on every run).  ``test_examples_tried`` checks the counts.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drbalance import datasets
from drbalance.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TRIPS = FIXTURES / "green_slice_2021-01.parquet"
ZONES = datasets.nyc_zone_lookup()
ROME = FIXTURES / "amod_macro_scenarios_rl4amod" / "scenario_rome.json.gz"
EAMOD = FIXTURES / "eamod_nyc_graph_rl" / "NY_3"
ACN = FIXTURES / "ev_charging_acn_caltech_2021" / "acndata_sessions.json.gz"

#: examples per command (each a few milliseconds: every input fails before any real work);
#: DRBALANCE_FUZZ_EXAMPLES=500 HYPOTHESIS_PROFILE=explore searches wider
EXAMPLES = int(os.environ.get("DRBALANCE_FUZZ_EXAMPLES", "40"))
#: bad inputs tried per command in this session (filled by the tests, checked by the last one)
TRIED: dict[str, int] = {}


class Case(NamedTuple):
    """One bad command line: its arguments (after the command), the words of which at least one must
    appear in the error line (the bad option, field or file; empty: any), and the output paths that
    must be left untouched."""

    argv: list
    expect: tuple = ()
    outputs: tuple = ()


# ------------------------------------------------------------------------------------ the work folder
_WORK = Path(tempfile.mkdtemp(prefix="drbalance-fuzz-"))
_counter = itertools.count()


def fresh(name: str) -> Path:
    """A new path under the work folder (nothing there yet)."""
    return _WORK / f"{next(_counter):05d}-{name}"


def write(name: str, data: bytes | str) -> Path:
    p = fresh(name)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    shutil.rmtree(_WORK, ignore_errors=True)


# ------------------------------------------------------------------------------------ running one case
def _state(path: Path):
    """What is at ``path`` (and temporary leftovers beside it): compared before and after a run."""
    path = Path(path)
    here = path.read_bytes() if path.is_file() else ("dir", sorted(os.listdir(path))) if path.is_dir() else None
    parent = path.parent
    leftovers = sorted(n for n in os.listdir(parent) if n.startswith(".")) if parent.is_dir() else None
    return here, leftovers


def run_case(command: str, case: Case) -> None:
    before = {p: _state(p) for p in case.outputs}
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")   # a warning would be a second line on a user's stderr
        try:
            rc = main([command, *map(str, case.argv)])
        except SystemExit as exc:   # argparse: usage error
            rc = exc.code
    text = err.getvalue() + "".join(f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})\n"
                                    for w in caught)
    where = f"drbalance {command} {' '.join(map(str, case.argv))}"
    assert rc in (1, 2), f"{where}: exit code {rc}, stderr {text!r}"
    assert "Traceback" not in text, f"{where}: traceback on stderr:\n{text}"
    if rc == 1:
        lines = text.strip().splitlines()
        assert len(lines) == 1, f"{where}: stderr is not one line: {text!r}"
        assert re.match(rf"drbalance {re.escape(command)}: [A-Za-z]+Error: \S", lines[0]), f"{where}: {lines[0]!r}"
        if case.expect:
            assert any(e.lower() in lines[0].lower() for e in case.expect), \
                f"{where}: the error does not name {case.expect}: {lines[0]!r}"
    else:
        assert "usage:" in text and "error:" in text, f"{where}: {text!r}"
    for p in case.outputs:
        assert _state(p) == before[p], f"{where}: output {p} changed (a partial result or temporary file left)"


def fuzz(command: str, strategy, examples: int = EXAMPLES) -> int:
    """Run ``examples`` cases of ``strategy`` through :func:`run_case`; returns how many were tried."""
    tried = []

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def check(case: Case) -> None:
        tried.append(case)
        run_case(command, case)

    check()
    TRIED[command] = TRIED.get(command, 0) + len(tried)
    return len(tried)


# ------------------------------------------------------------------------------------ bad option values
NOT_NUMBERS = st.sampled_from(["abc", "", "1,5", "0x", "--", "one", "1e", "NaNs", " "])
NAN_INF = st.sampled_from(["nan", "inf", "-inf", "NaN", "Infinity", "1e999"])


def bad_int(low: int | None = None, high: int | None = None):
    """Strings an integer option must refuse: out of ``[low, high]``, fractions, non-numbers."""
    parts = [NOT_NUMBERS, NAN_INF, st.sampled_from(["1.5", "2.0e0", "0.5"])]
    if low is not None:
        parts.append(st.integers(max_value=low - 1).map(str))
    if high is not None:
        parts.append(st.integers(min_value=high + 1, max_value=10**12).map(str))
    return st.one_of(*parts)


def bad_float(low: float | None = None, high: float | None = None, low_open=False, high_open=False):
    """Strings a number option whose valid range is ``[low, high]`` must refuse (``low_open`` /
    ``high_open``: the bound itself is refused too): out of range, NaN, infinite, non-numbers."""
    parts = [NOT_NUMBERS, NAN_INF]
    if low is not None:
        parts.append(st.floats(max_value=low, allow_nan=False)
                     .filter(lambda x: x < low or (low_open and x == low)).map(repr))
    if high is not None:
        parts.append(st.floats(min_value=high, allow_nan=False)
                     .filter(lambda x: x > high or (high_open and x == high)).map(repr))
    return st.one_of(*parts)


def positive():
    return bad_float(0, low_open=True)


def share():
    """Refused where the valid range is the open interval (0, 1)."""
    return bad_float(0, 1, low_open=True, high_open=True)


BAD_DATE = st.sampled_from(["notaday", "2021-02-30", "2021-13-01", "20210101x", "", "2021-01-01T07:30",
                            "01/02/2021x", "-1", "2021-00-10", "99999-01-01"])
BAD_PERIOD = st.one_of(BAD_DATE, BAD_DATE.map(lambda d: f"2021-01-01:{d}"), BAD_DATE.map(lambda d: f"{d}:2021-01-02"),
                       st.sampled_from(["2021-01-05:2021-01-01", "2021-01-01:2021-01-02:2021-01-03", ":", "a:b"]))
BAD_SLOT = st.one_of(bad_int(5, 60), st.sampled_from(["7", "11", "13", "25", "50", "59"]))
BAD_CHOICE = st.sampled_from(["bogus", "", "DR", "none ", "nominal,dr"])
BAD_POLICIES = st.sampled_from(["", ",", " , ", "foo", "noop,foo", "dr,dr", "greedy;dr", "NOOP"])


def option(name: str, values, expect: tuple = ()):
    """Cases ``--name=value`` (the ``=`` form: a value may start with ``-``); errors must name the option
    (argparse) or one of ``expect`` (a configuration field)."""
    return values.map(lambda v: ([f"{name}={v}"], (name, *expect)))


def cases(base, outputs, *bad):
    """Cases: ``base`` arguments (a function of fresh output paths) plus one or two bad options."""

    def build(picked):
        outs = outputs()
        argv = list(base(outs))
        expect = ()
        for extra, names in picked:
            argv += extra
            expect += names
        return Case(argv, expect, tuple(outs.values()))

    return st.lists(st.one_of(*bad), min_size=1, max_size=2).map(build)


# ------------------------------------------------------------------------------------ unwritable outputs
_A_FILE = None


def a_file() -> Path:
    global _A_FILE
    if _A_FILE is None:
        _A_FILE = write("a-file.txt", "not a folder\n")
    return _A_FILE


def unwritable(kind: str):
    """Paths an output option must refuse before any work: under a file, an existing file as a folder
    (or a folder as a file), a name too long, a folder the system refuses."""
    options = [lambda: a_file() / "sub" / "x.json", lambda: a_file() / "x.json",
               lambda: fresh("n" * 300) / "x.json", lambda: _WORK / ("x" * 300)]
    options.append((lambda: a_file()) if kind == "folder" else (lambda: _WORK))
    if Path("/proc/self").is_dir():
        options.append(lambda: Path("/proc/drbalance-fuzz/out"))
    return st.sampled_from(options).map(lambda f: f())


def bad_output(option_kinds: dict):
    """Cases replacing one output option's path by an unwritable one."""
    return st.sampled_from(sorted(option_kinds)).flatmap(
        lambda name: unwritable(option_kinds[name]).map(lambda p: (name, p)))


def with_bad_output(base, outputs, option_kinds):
    def build(pair):
        name, path = pair
        outs = outputs()
        argv = list(base(outs))
        argv += [f"{name}={path}"]    # given last: it overrides the base's value
        return Case(argv, (name,), tuple(outs.values()))

    return bad_output(option_kinds).map(build)


# ------------------------------------------------------------------------------------ corrupted files
_trip_frame = None


def trip_frame() -> pd.DataFrame:
    global _trip_frame
    if _trip_frame is None:
        _trip_frame = pd.read_parquet(TRIPS).head(200)
    return _trip_frame


def truncated(src: Path, suffix: str):
    data = src.read_bytes()
    return st.integers(0, len(data) - 1).map(lambda k: write(f"trunc{suffix}", data[:k]))


def garbled(suffix: str):
    return st.binary(min_size=0, max_size=200).map(lambda b: write(f"garbled{suffix}", b"\xff\x00" + b))


def trip_files():
    """Corrupted trip files: truncated/garbled parquet, CSV with strings in a required column, wrong
    columns, header only, a folder, a missing file."""
    def junk_column(col, junk):
        f = trip_frame().copy()
        f[col] = junk
        return write("junk.csv", f.to_csv(index=False))

    def renamed(fmt):
        f = trip_frame().rename(columns=lambda c: f"col_{c}")
        p = fresh(f"renamed.{fmt}")
        f.to_parquet(p) if fmt == "parquet" else f.to_csv(p, index=False)
        return p

    return st.one_of(
        truncated(TRIPS, ".parquet"), garbled(".parquet"), garbled(".csv"),
        st.tuples(st.sampled_from(["lpep_pickup_datetime", "lpep_dropoff_datetime", "PULocationID", "DOLocationID",
                                   "trip_distance"]),
                  st.sampled_from(["abc", "", "nan", "inf", "2021-99-99"])).map(lambda t: junk_column(*t)),
        st.sampled_from(["parquet", "csv"]).map(renamed),
        st.just(None).map(lambda _: write("header.csv", ",".join(trip_frame().columns) + "\n")),
        st.just(None).map(lambda _: fresh("missing.parquet")),
        st.just(None).map(lambda _: (lambda d: (d.mkdir(), d)[1])(fresh("folder.parquet"))),
    )


def zone_files():
    lookup = ZONES.read_text()
    return st.one_of(
        garbled(".csv"), st.just(None).map(lambda _: write("empty.csv", "")),
        st.just(None).map(lambda _: write("header.csv", lookup.splitlines()[0] + "\n")),
        st.just(None).map(lambda _: write("cols.csv", "a,b,c\n1,2,3\n")),
        st.sampled_from(["abc", "", "1.5", "-3"]).map(
            lambda junk: write("ids.csv", "\n".join([lookup.splitlines()[0]] +
                                                    [f"{junk}," + line.split(",", 1)[1]
                                                     for line in lookup.splitlines()[1:]]) + "\n")),
        st.just(None).map(lambda _: fresh("missing.csv")),
    )


#: study TOML that must be refused (unknown keys, wrong types, out-of-range values, not TOML)
BAD_STUDY_TOML = st.sampled_from([
    "foo = 1\n", 'slot_minutes = "abc"\n', "slot_minutes = 7\n", "horizon = 0\n", "horizon = 1e9\n",
    "seed = -1\n", "seed = true\n", "[sim]\nfleet_size = -3\n", "[sim]\nfleet_size = nan\n",
    "[estimate]\nepsilon = nan\n", "[estimate]\nepsilon = inf\n", '[evaluation]\ndays = ["x"]\n',
    "[evaluation]\nhours = 30\n", "[evaluation]\nhours = 0.1\n", "[sim]\ncharging = 3\n",
    '[balancing]\nqueue_allowance = "x"\n', "[balancing]\nreach_km = -1\n", "evaluation = 5\n",
    "[sim.charging]\nlow_soc = 2\n", '[sim.charging]\npower_kw = "fast"\n', "[nope]\na = 1\n",
    "= broken\n", "[sim\n", "slot_minutes = \n",
]).map(lambda text: write("study.toml", text))
GARBLED_TOML = garbled(".toml").map(lambda p: (p.write_bytes(b"= \xff" + p.read_bytes()), p)[1])
BAD_CONFIG = st.one_of(BAD_STUDY_TOML, GARBLED_TOML, st.just(None).map(lambda _: fresh("missing.toml")),
                       st.just(None).map(lambda _: (lambda d: (d.mkdir(), d)[1])(fresh("dir.toml"))))


def files_case(base, outputs, replace: str, files, expect_name=True, also=()):
    """Cases where the argument ``replace`` ('TRIPS' positional or an option) is a corrupted file; the
    error must name the file (or say one of ``also``)."""
    def build(path):
        outs = outputs()
        argv = list(base(outs))
        if replace == "TRIPS":
            argv[0] = path
        else:
            argv += [f"{replace}={path}"]
        return Case(argv, (path.name, *also) if expect_name else (), tuple(outs.values()))

    return files.map(build)


# ------------------------------------------------------------------------------------ per command
#: a trip file whose rows are all rejected is named by the reject report's reasons, not by its name
NO_TRIP = ("no trip survived",)

def out_json():
    return {"out": fresh("out"), "json": fresh("r.json")}


def estimate_base(o):
    return [TRIPS, f"--zones={ZONES}", "--train=2021-01-01:2021-01-01", f"--out={o['out']}", f"--json={o['json']}"]


ESTIMATE_OPTIONS = [
    option("--slot-minutes", BAD_SLOT, ("slot",)), option("--horizon", bad_int(1, 96), ("horizon",)),
    option("--regions", bad_int(0), ("regions",)), option("--circuity", st.one_of(bad_float(1), NOT_NUMBERS)),
    option("--epsilon", share()), option("--delta", share()), option("--bootstrap", bad_int(1)),
    option("--rank", bad_int(0)), option("--seed", bad_int(0)), option("--max-trip-minutes", positive()),
    option("--train", BAD_PERIOD), option("--heldout", st.one_of(BAD_PERIOD, st.just("2020-12-01:2020-12-31"))),
    option("--forecaster", BAD_CHOICE), option("--shrinkage", BAD_CHOICE), option("--robust-radius", BAD_CHOICE),
    option("--holidays", BAD_CHOICE),
]


def test_estimate_bad_inputs():
    n = fuzz("estimate", st.one_of(
        cases(estimate_base, out_json, *ESTIMATE_OPTIONS),
        with_bad_output(estimate_base, out_json, {"--out": "folder", "--json": "file"}),
        files_case(estimate_base, out_json, "TRIPS", trip_files(), also=NO_TRIP),
        files_case(estimate_base, out_json, "--zones", zone_files()),
        files_case(estimate_base, out_json, "--config", BAD_CONFIG, expect_name=False),
    ))
    assert n >= EXAMPLES // 2


def simulate_base(o):
    return [TRIPS, f"--zones={ZONES}", "--day=2021-01-02", "--fleet=10", f"--out={o['out']}", f"--json={o['json']}"]


def plug_files():
    return st.one_of(
        garbled(".csv"), st.just(None).map(lambda _: write("empty.csv", "")),
        st.sampled_from(["zone,plugs\n", "zone,count\n4,1\n", "zone,plugs\n4,abc\n", "zone,plugs\n4,-1\n",
                         "zone,plugs\n4,nan\n", "zone,plugs\n4,inf\n", "zone,plugs\nabc,2\n", "zone,plugs\n4.5,2\n",
                         "zone,plugs\n4,1\n5\n\"", "\n"]).map(lambda t: write("plugs.csv", t)),
        st.just(None).map(lambda _: fresh("missing.csv")),
    )


SIMULATE_OPTIONS = [
    option("--day", BAD_DATE), option("--fleet", bad_int(1)), option("--seed", bad_int(0)),
    option("--regions", bad_int(0)), option("--slot-minutes", BAD_SLOT, ("slot",)),
    option("--hours", st.one_of(bad_float(0, 24, low_open=True), st.sampled_from(["0.1", "0.3", "1.01"]))),
    option("--plugs-total", bad_int(1)), option("--patience", bad_int(0)), option("--radius-km", bad_float(0)),
    option("--speed-kmh", positive()), option("--battery-kwh", positive()),
    option("--kwh-per-km", positive()), option("--charge-kw", positive()),
    option("--low-soc", bad_float(0, 0.8, high_open=True)), option("--target-soc", bad_float(0.2, 1, low_open=True)),
    option("--circuity", st.one_of(bad_float(1), NOT_NUMBERS)), option("--policy", BAD_CHOICE),
    option("--train", st.one_of(BAD_PERIOD, st.just("2021-01-01:2021-01-05"))),
]


def test_simulate_bad_inputs():
    n = fuzz("simulate", st.one_of(
        cases(simulate_base, out_json, *SIMULATE_OPTIONS),
        with_bad_output(simulate_base, out_json, {"--out": "folder", "--json": "file"}),
        files_case(simulate_base, out_json, "TRIPS", trip_files(), also=NO_TRIP),
        files_case(simulate_base, out_json, "--zones", zone_files()),
        files_case(simulate_base, out_json, "--plugs", plug_files()),
        files_case(simulate_base, out_json, "--config", BAD_CONFIG, expect_name=False),
    ))
    assert n >= EXAMPLES // 2


def evaluate_base(o):
    return [TRIPS, f"--zones={ZONES}", "--train=2021-01-01:2021-01-01", "--days=2021-01-02", "--fleet=10",
            f"--out={o['out']}", f"--json={o['json']}"]


STUDY_OPTIONS = [
    option("--fleet", bad_int(1)), option("--policies", BAD_POLICIES), option("--seed", bad_int(0)),
    option("--regions", bad_int(0)), option("--slot-minutes", BAD_SLOT, ("slot",)),
    option("--horizon", bad_int(1, 96), ("horizon",)),
    option("--hours", st.one_of(bad_float(0, 24, low_open=True), st.sampled_from(["0.1", "23.9", "1.01"]))),
    option("--reach-km", bad_float(0)), option("--later-reach-km", st.one_of(bad_float(0, 10), st.just("11"))),
    option("--low-battery-reach-km", st.one_of(bad_float(0, 10), st.just("12"))),
    option("--supply-floor", bad_float(0)), option("--queue-allowance", bad_float(0)),
    option("--beta1", bad_float(0)), option("--beta2", bad_float(0)), option("--alpha", positive()),
    option("--radius-scale", bad_float(0)), option("--bootstrap", bad_int(1)),
    option("--plugs-per-vehicle", positive()), option("--step-budget", positive()),
    option("--robust-radius", BAD_CHOICE),
    # the evaluation protocol (issue 15); appended so that demo's STUDY_OPTIONS[:7] stay the same
    option("--fleet", st.sampled_from(["Auto", "auto,1", "0", "-3", "1.5", "", "many"])),
    option("--trips-per-ev", positive()), option("--workers", bad_int(0)),
    option("--seeds", st.sampled_from(["", ",", "a", "0,0", "-1", "0;1", "1.5", "0,,x"])),
    option("--baseline", st.sampled_from(["bogus", "", "NOMINAL", "nominal,dr"]), ("baseline",)),
    option("--estimates", st.sampled_from(["rolling", "rolling:1", "rolling:x", "weekly", "", "rolling:-3",
                                           "fixed:2"]), ("estimates",)),
]


def test_evaluate_bad_inputs():
    days = st.sampled_from(["", ",", "notaday", "2021-01-01", "2020-12-31", "2021-01-02,2021-02-30", "2021-01-02;x"])
    n = fuzz("evaluate", st.one_of(
        cases(evaluate_base, out_json, *STUDY_OPTIONS, option("--days", days),
              option("--train", st.one_of(BAD_PERIOD, st.just("2021-01-01:2021-01-03")), ("training period",))),
        with_bad_output(evaluate_base, out_json, {"--out": "folder", "--json": "file"}),
        files_case(evaluate_base, out_json, "TRIPS", trip_files(), also=NO_TRIP),
        files_case(evaluate_base, out_json, "--zones", zone_files()),
        files_case(evaluate_base, out_json, "--config", BAD_CONFIG, expect_name=False),
    ))
    assert n >= EXAMPLES // 2


def tune_base(o):
    # a training period without trips in the fixture: a case that got past the options fails on reading
    return [TRIPS, f"--zones={ZONES}", "--train=2020-12-01:2020-12-09", "--validation-weeks=1", "--fleet=10",
            f"--out={o['out']}", f"--json={o['json']}"]


BAD_KM_LIST = st.sampled_from(["", ",", "a", "-1", "5,5", "nan", "inf", "5,,10", "1e999", "5;10", "5,-0.5", "x,5"])
TUNE_OPTIONS = [
    option("--modes", st.sampled_from(["", ",", "bogus", "dr,dr", "DR", "dr;saa", "noop", "nominal,,dr"])),
    option("--lost-request-km", BAD_KM_LIST), option("--charge-queue-km", BAD_KM_LIST),
    option("--lost-request-value-km", st.one_of(bad_float(0), st.just("1,2"))),
    option("--validation-weeks", st.one_of(bad_int(1), st.sampled_from(["2", "3", "10**3", "1000000000000"]))),
    option("--train", st.one_of(BAD_PERIOD, st.just("2021-01-01:2021-01-08")), ("training period",)),
    option("--fleet", st.sampled_from(["Auto", "auto,1", "0", "-3", "1.5", "", "many"])),
    option("--seeds", st.sampled_from(["", ",", "a", "0,0", "-1", "0;1", "1.5", "0,,x"])),
    option("--seed", bad_int(0)), option("--regions", bad_int(0), ("regions",)),
    option("--slot-minutes", BAD_SLOT, ("slot",)), option("--horizon", bad_int(1, 96), ("horizon",)),
    option("--hours", st.one_of(bad_float(0, 24, low_open=True), st.sampled_from(["0.1", "23.9", "1.01"]))),
    option("--reach-km", bad_float(0)), option("--later-reach-km", st.one_of(bad_float(0, 10), st.just("11"))),
    option("--timing-share", bad_float(0, 1)), option("--radius-scale", bad_float(0)),
    option("--bootstrap", bad_int(1)), option("--plugs-per-vehicle", positive()), option("--step-budget", positive()),
    option("--trips-per-ev", positive()), option("--workers", bad_int(0)), option("--robust-radius", BAD_CHOICE),
    option("--estimates", st.sampled_from(["rolling", "rolling:1", "rolling:x", "weekly", ""]), ("estimates",)),
]


def test_tune_bad_inputs():
    n = fuzz("tune", st.one_of(
        cases(tune_base, out_json, *TUNE_OPTIONS),
        with_bad_output(tune_base, out_json, {"--out": "folder", "--json": "file"}),
        files_case(tune_base, out_json, "TRIPS", trip_files(), also=NO_TRIP),
        files_case(tune_base, out_json, "--zones", zone_files()),
        files_case(tune_base, out_json, "--config", BAD_CONFIG, expect_name=False),
    ))
    assert n >= EXAMPLES // 2


def demo_base(o):
    return [f"--out={o['out']}", f"--json={o['json']}", "--regions=4", "--bootstrap=10", "--slot-minutes=60",
            "--horizon=2", "--days=2021-03-02", "--hours=1", "--fleet=20", "--policies=noop"]


def test_demo_bad_inputs():
    n = fuzz("demo", st.one_of(
        cases(demo_base, out_json, *ESTIMATE_OPTIONS[:11], *STUDY_OPTIONS[:7],
              option("--days", st.sampled_from(["", ",", "notaday", "2021-02-01", "2021-03-02,x"]))),
        with_bad_output(demo_base, out_json, {"--out": "folder", "--json": "file"}),
        files_case(demo_base, out_json, "--zones", zone_files()),
        files_case(demo_base, out_json, "--config", BAD_CONFIG, expect_name=False),
    ))
    assert n >= EXAMPLES // 2


# -- evaluate-scenario: the vendored RL4AMOD Rome and eAMoD NY_3 cuts, corrupted
def _rome() -> dict:
    return json.loads(gzip.decompress(ROME.read_bytes()))


def scenario_copy(data: bytes) -> Path:
    """``data`` as ``scenario_rome.json.gz`` in a new folder, beside a copy of the fixture's
    calibrated_parameters.json (so the file is the only thing wrong)."""
    folder = fresh("rome")
    folder.mkdir()
    params = ROME.with_name("calibrated_parameters.json")
    if params.is_file():
        shutil.copy(params, folder / params.name)
    p = folder / ROME.name
    p.write_bytes(data)
    return p


def _gz_json(obj) -> Path:
    return scenario_copy(gzip.compress(json.dumps(obj).encode()))


def _rome_edit(edit):
    d = _rome()
    edit(d)
    return _gz_json(d)


def _set_record(key, field, value, i=0):
    def edit(d):
        d[key][i][field] = value
    return edit


def scenario_files():
    junk = st.sampled_from(["abc", None, float("inf"), float("nan"), -1, [], {}, "1e999", True])
    record_fields = st.sampled_from([("demand", "demand"), ("demand", "travel_time"), ("demand", "origin"),
                                     ("demand", "time_stamp"), ("demand", "price"), ("totalAcc", "acc"),
                                     ("totalAcc", "hour"), ("rebTime", "reb_time"), ("rebTime", "destination"),
                                     ("topology_graph", "i")])
    data = ROME.read_bytes()
    strategies = [
        st.integers(0, len(data) - 1).map(lambda k: scenario_copy(data[:k])),
        st.binary(max_size=200).map(lambda b: scenario_copy(b"\x1f\x8b" + b)),
        st.just(None).map(lambda _: scenario_copy(gzip.compress(b'{"nlat": 4, "demand": ['))),
        st.just(None).map(lambda _: _gz_json([1, 2, 3])),
        st.sampled_from(["nlat", "nlon", "demand", "totalAcc", "rebTime"]).map(
            lambda k: _rome_edit(lambda d: d.pop(k))),
        st.tuples(st.sampled_from(["nlat", "nlon", "demand", "totalAcc", "rebTime"]), junk).map(
            lambda kv: _rome_edit(lambda d: d.__setitem__(*kv))),
        st.tuples(record_fields, junk).map(lambda t: _rome_edit(_set_record(*t[0], t[1]))),
        st.just(None).map(lambda _: _rome_edit(lambda d: [r.__setitem__("demand", 0) for r in d["demand"]])),
        st.just(None).map(lambda _: fresh("scenario_missing.json.gz")),
        st.just(None).map(lambda _: scenario_copy(gzip.compress(json.dumps(_rome()).encode())[:-4] + b"\0\0\0\0")),
    ]
    if EAMOD.is_dir():
        def broken_eamod(what):
            folder = fresh("NY_3")
            shutil.copytree(EAMOD, folder)
            target = {"npy": folder / "duration_matrix.npy", "json": folder / "NYC_3.json.gz"}[what[0]]
            target.write_bytes(target.read_bytes()[: what[1]])
            return folder

        strategies.append(st.tuples(st.sampled_from(["npy", "json"]), st.integers(0, 100)).map(broken_eamod))
    return st.one_of(*strategies)


def scenario_base(o):
    return [ROME, "--days=1", "--history-days=2", "--policies=noop", f"--out={o['out']}", f"--json={o['json']}"]


@pytest.mark.skipif(not ROME.is_file(), reason="the vendored RL4AMOD Rome fixture is absent")
def test_evaluate_scenario_bad_inputs():
    n = fuzz("evaluate-scenario", st.one_of(
        cases(scenario_base, out_json, option("--days", bad_int(1)), option("--history-days", bad_int(2)),
              option("--slot-minutes", BAD_SLOT, ("slot",)), option("--horizon", bad_int(1, 96), ("horizon",)),
              option("--fleet", bad_int(1)), option("--scale", positive()),
              option("--window-minutes", bad_int(15)), option("--speed-kmh", positive()),
              option("--reach-km", bad_float(0)), option("--later-reach-km", bad_float(0)),
              option("--low-battery-reach-km", bad_float(0)), option("--match-radius-km", bad_float(0)),
              option("--plugs-per-vehicle", positive()), option("--beta1", bad_float(0)),
              option("--beta2", bad_float(0)), option("--radius-scale", bad_float(0)),
              option("--bootstrap", bad_int(1)), option("--step-budget", positive()),
              option("--policies", BAD_POLICIES), option("--seed", bad_int(0)),
              option("--robust-radius", BAD_CHOICE)),
        with_bad_output(scenario_base, out_json, {"--out": "folder", "--json": "file"}),
        files_case(scenario_base, out_json, "TRIPS", scenario_files()),
        files_case(scenario_base, out_json, "--config", BAD_CONFIG, expect_name=False),
    ))
    assert n >= EXAMPLES // 2


# -- sweep: grid TOML files with one bad value
GOOD_GRID = {"base": {"day": "2021-03-02", "start_hour": 7, "hours": 1, "fleet": 10, "regions": 4, "train_days": 2},
             "grid": {"power_kw": [50]}}

#: for each [base] key, values its rule refuses (TOML can hold nan/inf, lists, tables, booleans)
BAD_GRID_VALUES = {
    "day": ["notaday", "2021-02-30", 5, "2022-06-01", "2021-01-01"], "start_hour": [-1, 24, "7", float("nan")],
    "hours": [0, 25, "1", float("inf"), 0.1], "train_days": [0, -2, 1.5, "7"],
    "trips": [["/nonexistent.parquet"], [], 3],
    "zones": ["/nonexistent.csv", 3], "regions": [-1, "20", 2.5], "regions_seed": [-1, "0"],
    "circuity": [0.5, "x", float("nan")], "fleet": [0, -5, "100", 1.5, True, float("inf")], "seed": [-1, "0", 0.5],
    "seed_mode": ["random", 1], "policy": ["dr", "x", 3], "slot_minutes": [0, 7, "15", 61],
    "plugs_total": [0, -3, "4"], "plugs_per_vehicle": [0, -0.1, "x"], "patience_minutes": [-1, "10"],
    "match_radius_km": [-1, "3"], "speed_kmh": [0, "20", float("nan")], "mi_per_kwh": [0, "3", -1],
    "fleet_mix": ["XX", 3], "power_kw": [0, "fast", -50, float("nan")], "low_soc": [1, -0.1, "0.2"],
    "min_range_mi": [-1, "30"], "target_soc": [0, 1.5, "0.8"], "idle_minutes": [-1, "15", 1.5],
    "opportunistic_soc": [2, "0.6", -0.5], "opportunistic_km": [-1, "3"], "priority": ["speed", 0],
    "exit_min_soc": [2, "0.5", -0.5], "self_dispatch": ["yes", 1], "unconstrained_reference": ["no", 0],
    "siting_xyz": [[5, 15], [0, 15, 15], "5,15,15", [5, "x", 15]], "siting_max_rounds": [0, "10"],
}


def grid_files():
    def base_value(kv):
        g = json.loads(json.dumps(GOOD_GRID))
        g["base"][kv[0]] = kv[1]
        return g, kv[0]

    def dim_value(kv):
        g = json.loads(json.dumps(GOOD_GRID))
        g["grid"] = {kv[0]: [kv[1]]}
        return g, kv[0]

    def structural(which):
        g = json.loads(json.dumps(GOOD_GRID))
        if which == "empty_grid":
            g["grid"] = {}
        elif which == "no_grid":
            g.pop("grid")
        elif which == "empty_dim":
            g["grid"] = {"fleet": []}
        elif which == "unknown_dim":
            g["grid"] = {"nope": [1]}
        elif which == "unknown_table":
            g["extra"] = {"a": 1}
        elif which == "repeated":
            g["grid"] = {"fleet": [10, 10]}
        elif which == "mix_strings":
            g["fleet_mixes"] = {"M": [["a", 100]]}
            g["grid"] = {"fleet_mix": ["M"]}
        elif which == "mix_negative":
            g["fleet_mixes"] = {"M": [[-1.0, 100]]}
            g["grid"] = {"fleet_mix": ["M"]}
        elif which == "mix_shape":
            g["fleet_mixes"] = {"M": [1, 2]}
        elif which == "base_not_table":
            g["base"] = [1]
        elif which == "window":
            g["base"]["start_hour"] = 23
            g["base"]["hours"] = 2
        return g, None

    pairs = [(k, v) for k, vs in BAD_GRID_VALUES.items() for v in vs]
    dims = [(k, v) for k, v in pairs if k not in ("seed_mode",)]

    def to_file(gk):
        g, key = gk
        try:
            text = tomli_w.dumps(g)
        except TypeError:   # e.g. a top-level list: TOML cannot hold it, write it by hand
            text = "base = [1]\n[grid]\npower_kw = [50]\n"
        return write("grid.toml", text), key

    return st.one_of(
        st.sampled_from(pairs).map(base_value), st.sampled_from(dims).map(dim_value),
        st.sampled_from(["empty_grid", "no_grid", "empty_dim", "unknown_dim", "unknown_table", "repeated",
                         "mix_strings", "mix_negative", "mix_shape", "base_not_table", "window"]).map(structural),
    ).map(to_file)


def sweep_base(o):
    return [f"--out={o['out']}", f"--json={o['json']}", "--workers=0"]


def test_sweep_bad_inputs():
    def grid_case(pk):
        path, key = pk
        o = out_json()
        return Case([*sweep_base(o), f"--grid={path}"], (key,) if key else (), tuple(o.values()))

    def broken_grid_case(path):
        o = out_json()
        return Case([*sweep_base(o), f"--grid={path}"], (path.name,), tuple(o.values()))

    good = lambda o: [*sweep_base(o), f"--grid={write('grid.toml', tomli_w.dumps(GOOD_GRID))}"]  # noqa: E731
    n = fuzz("sweep", st.one_of(
        grid_files().map(grid_case),
        st.one_of(GARBLED_TOML, st.just(None).map(lambda _: fresh("missing.toml")),
                  st.just(None).map(lambda _: (lambda d: (d.mkdir(), d)[1])(fresh("dir.toml")))).map(broken_grid_case),
        cases(good, out_json, option("--workers", bad_int(0)),
              option("--scheduler", st.sampled_from(["not an address!", "tcp://", "", "a b:1"]))),
        with_bad_output(good, out_json, {"--out": "folder", "--json": "file"}),
    ))
    assert n >= EXAMPLES // 2


# -- bench-solve, hybrid, battery: no input data besides their options (battery: ACN and needs tables)
def json_only():
    return {"json": fresh("r.json")}


def bench_base(o):
    return ["--regions=4", "--steps=1", "--days=5", "--no-progress", f"--json={o['json']}"]


def test_bench_solve_bad_inputs():
    n = fuzz("bench-solve", st.one_of(
        cases(bench_base, json_only, option("--regions", bad_int(2)), option("--horizon", bad_int(1, 96)),
              option("--steps", bad_int(1)), option("--seed", bad_int(0)), option("--reach-km", bad_float(0)),
              option("--later-reach-km", st.one_of(bad_float(0, 4.5), st.just("5"))),
              option("--rank", bad_int(0)), option("--tol", bad_float(0, 1e-2, True, True)),
              option("--scs-eps", bad_float(0, 0.1, True, True)),
              option("--days", bad_int(2)), option("--mode", BAD_CHOICE), option("--city", BAD_CHOICE),
              option("--solver", BAD_CHOICE)),
        with_bad_output(bench_base, json_only, {"--json": "file"}),
    ))
    assert n >= EXAMPLES // 2


def hybrid_outputs():
    return {"json": fresh("r.json"), "plot": fresh("figs")}


def test_hybrid_bad_inputs():
    aimd = lambda o: ["aimd", "--N=1000", f"--json={o['json']}"]  # noqa: E731
    table = lambda o: ["table5", f"--json={o['json']}"]  # noqa: E731
    n = fuzz("hybrid", st.one_of(
        cases(aimd, hybrid_outputs, option("--seed", bad_int(0)), option("--events", bad_int(1)),
              option("--N", st.one_of(bad_int(1), st.sampled_from(["7", "999", "2000"]))),
              option("--problem", BAD_CHOICE), option("--cost", BAD_CHOICE)),
        st.sampled_from(["table5", "compare"]).map(
            lambda a: (lambda o: Case([a, f"--json={o['json']}", f"--plot={o['plot']}"], ("--plot",),
                                      tuple(o.values())))(hybrid_outputs())),
        st.sampled_from(["bogus", "", "TABLE4", "table6"]).map(lambda a: Case([a], ("action",))),
        with_bad_output(aimd, hybrid_outputs, {"--json": "file", "--plot": "folder"}),
        with_bad_output(table, hybrid_outputs, {"--json": "file"}),
    ))
    assert n >= EXAMPLES // 2


def battery_outputs():
    return {"json": fresh("r.json"), "out": fresh("out"), "plot": fresh("fig.png"), "csv": fresh("sweep.csv")}


def battery_base(o):
    return ["--drivers=5", "--trials=2", "--no-progress", f"--json={o['json']}", f"--out={o['out']}"]


def needs_tables():
    good = "driver,day,kwh\n" + "".join(f"d{i % 3},2021-05-{1 + i // 3:02d},{5 + i % 7}\n" for i in range(60))
    texts = ["", "driver,day,kwh\n", "driver,day\nd1,2021-05-01\n", "driver,day,kwh,miles\nd,2021-05-01,1,2\n",
             good.replace(",5\n", ",abc\n"), good.replace(",6\n", ",-6\n"), good.replace(",7\n", ",inf\n"),
             good.replace("2021-05-01", "notaday"), "a,b\n1,2\n"]

    def parquet(kind):
        p = fresh("needs.parquet")
        if kind == "truncated":
            f = fresh("good.parquet")
            pd.read_csv(io.StringIO(good)).to_parquet(f)
            p.write_bytes(f.read_bytes()[:100])
        else:
            pd.DataFrame({"driver": ["a"], "day": ["2021-05-01"], "kwh": ["abc"]}).to_parquet(p)
        return p

    return st.one_of(st.sampled_from(texts).map(lambda t: write("needs.csv", t)), garbled(".csv"),
                     st.sampled_from(["truncated", "strings"]).map(parquet),
                     st.just(None).map(lambda _: write("needs.xlsx", good)))


def acn_files():
    strategies = [garbled(".json.gz"),
                  st.just(None).map(lambda _: write("acn.json", "{not json")),
                  st.just(None).map(lambda _: write("acn.json", json.dumps({"sessions": []}))),
                  st.just(None).map(lambda _: write("acn.json", "[]")),
                  st.just(None).map(lambda _: write("acn.json", json.dumps([1, "x", None]))),
                  st.just(None).map(lambda _: fresh("missing.json.gz"))]
    if ACN.is_file():
        sessions = json.loads(gzip.decompress(ACN.read_bytes()))

        def edited(field_value):
            field, value = field_value
            s = [dict(r, **{field: value}) for r in sessions]
            return write("acn.json", json.dumps(s))

        strategies += [truncated(ACN, ".json.gz"),
                       st.tuples(st.sampled_from(["kWhDelivered", "connectionTime", "disconnectTime"]),
                                 st.sampled_from(["abc", None, -5, float("inf"), [], "Sat, 99 May 2021"])).map(edited),
                       st.sampled_from([[], {}, [1, 2]]).map(lambda v: edited(("userID", v)))]
    return st.one_of(*strategies)


def test_battery_bad_inputs():
    with_plot = lambda o: [*battery_base(o), f"--plot={o['plot']}", f"--sweep-csv={o['csv']}"]  # noqa: E731
    n = fuzz("battery", st.one_of(
        cases(battery_base, battery_outputs, option("--drivers", bad_int(1)), option("--alpha", share()),
              option("--trials", bad_int(1)), option("--seed", bad_int(0)), option("--delta", share()),
              option("--eval-epsilon", share()), option("--mean-kwh", NAN_INF), option("--std-kwh", positive()),
              option("--miles-per-kwh", positive()), option("--min-days", bad_int(1)),
              option("--bin-width-kwh", positive()), option("--method", BAD_CHOICE),
              option("--source", BAD_CHOICE), option("--scenario-bound", BAD_CHOICE)),
        cases(with_plot, battery_outputs,
              option("--sweep-drivers", st.sampled_from(["", ",", "a", "0", "-3", "2.5", "nan", "5,inf"])),
              option("--sweep-alphas", st.sampled_from(["", "0", "1", "1.5", "nan", "x", "0.8,-1"]))),
        st.sampled_from([".txt", "", ".pngx"]).map(
            lambda suffix: (lambda o: Case([*battery_base(o), f"--plot={fresh('fig' + suffix)}"], ("--plot",),
                                           tuple(o.values())))(battery_outputs())),
        st.sampled_from(["table", "acn"]).map(
            lambda s: (lambda o: Case([*battery_base(o), f"--source={s}"], (f"--{s}-path",), tuple(o.values())))(
                battery_outputs())),
        files_case(lambda o: [*battery_base(o), "--source=table"], battery_outputs, "--table-path", needs_tables()),
        files_case(lambda o: [*battery_base(o), "--source=acn"], battery_outputs, "--acn-path", acn_files()),
        with_bad_output(with_plot, battery_outputs, {"--json": "file", "--out": "folder", "--plot": "file",
                                                     "--sweep-csv": "file"}),
    ))
    assert n >= EXAMPLES // 2


# ------------------------------------------------------------------------------------ the whole CLI
def test_usage_errors_exit_2():
    """Unknown options, missing required options, bad types: argparse's usage error and code 2; an
    unknown command too; no command prints the help and returns 2."""
    for command, *argv in (["estimate"], ["estimate", TRIPS, "--bogus"], ["simulate", TRIPS], ["sweep", "--out", "x"],
                           ["bench-solve", "--steps", "x"], ["hybrid"], ["battery", "--trials"], ["demo", "--fleet"]):
        run_case(command, Case(argv))
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()), \
            pytest.raises(SystemExit) as exc:
        main(["nope"])
    assert exc.value.code == 2
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([]) == 2


def test_interrupt_prints_one_line_and_returns_130(monkeypatch):
    """Ctrl-C: exit code 130 and one line saying what was kept (sweep: the finished scenarios, and that
    the same command resumes); no traceback."""
    import drbalance.commands.bench_solve as bench_solve
    import drbalance.commands.sweep as sweep

    def interrupted(args):
        raise KeyboardInterrupt

    for module, argv, words in ((bench_solve, ["bench-solve", "--regions", "4"], "no partial file"),
                                (sweep, ["sweep", "--grid", "g.toml", "--out", "OUTDIR"], "OUTDIR/scenarios")):
        monkeypatch.setattr(module, "run", interrupted)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            assert main(argv) == 130
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"drbalance {argv[0]}: interrupted; ") and words in lines[0]
        if argv[0] == "sweep":
            assert "resume" in lines[0]


def test_atomic_writes_leave_nothing_half_written():
    """A write interrupted inside :func:`atomic_path` / :func:`atomic_folder` leaves the target as it was
    and no temporary file; a finished one replaces the target in one step (same mode as a plain write)."""
    from drbalance.io import atomic_folder, atomic_path, write_text_atomic

    target = fresh("result.parquet")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert not target.exists() and not [p for p in target.parent.iterdir() if target.name in p.name]
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".parquet"   # libraries that choose the format by the suffix keep working
        tmp.write_text("new")
    assert target.read_text() == "new"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    folder = fresh("results")
    with pytest.raises(KeyboardInterrupt), atomic_folder(folder) as stage:
        (stage / "a.csv").write_text("complete")
        (stage / "sub").mkdir()
        (stage / "sub" / "b.png").write_text("half")
        raise KeyboardInterrupt
    assert list(folder.iterdir()) == []
    with atomic_folder(folder) as stage:
        (stage / "a.csv").write_text("complete")
        (stage / "sub").mkdir()
        (stage / "sub" / "b.png").write_text("done")
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == ["a.csv", "sub", "sub/b.png"]


def test_demo_writes_to_a_named_folder_by_default():
    """``drbalance demo`` keeps its results in ./drbalance-demo/ (not a never-cleaned temporary folder)."""
    from drbalance.cli import build_parser

    assert build_parser().parse_args(["demo"]).out == Path("drbalance-demo")


def test_report_bad_inputs():
    """``report`` on something that is not a results folder, or with an unwritable --out."""
    good = FIXTURES / "report_evaluation"
    broken = fresh("broken-run")
    shutil.copytree(good, broken)
    (broken / "evaluation.json").write_text("{not json")
    cases_ = [Case([fresh("missing")], ("missing",)), Case([TRIPS], (TRIPS.name,)), Case([_WORK], (str(_WORK),)),
              Case([broken], ("evaluation.json",), (broken / "report.html",)),
              Case([good, "--out", fresh("no") / "such" / "\0x.html"], ("--out",)),
              Case([good, "--out", _WORK], ("--out",))]
    for case in cases_:
        run_case("report", case)
    TRIED["report"] = TRIED.get("report", 0) + len(cases_)


def test_examples_tried():
    """Every command was fuzzed (the counts go to the report; run with -s to see them)."""
    print("bad inputs tried per command:", json.dumps(TRIED, sort_keys=True))
    missing = {"demo", "estimate", "simulate", "evaluate", "sweep", "bench-solve", "battery", "hybrid",
               "report", "tune"} - set(TRIED)
    if ROME.is_file():
        missing |= {"evaluate-scenario"} - set(TRIED)
    assert not missing, f"not fuzzed: {missing}"


def test_no_temporary_files_left():
    """Nothing under the work folder is a leftover temporary file or staging folder."""
    left = [p for p in _WORK.rglob(".*") if p.name.startswith((".staging.", ".drbalance-write-check."))
            or re.search(r"\.tmp(\.\w+)?$", p.name)]
    assert not left, left

