"""Helpers shared by the CLI sub-commands: JSON output, option values turned into config values, and
the trip files' zone table (lookup and centroids) with the errors that name the missing file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pandas as pd

from data_pipeline.readers import read_nyc_zones
from drbalance.errors import ConfigError, DataError
from drbalance.io import jsonable, write_json  # noqa: F401 - re-exported: the commands write through these
from drbalance.study import describe_rejects

__all__ = ["add_centroids_option", "centroids_note", "check_outputs", "jsonable", "option_values", "parse_circuity",
           "parse_period", "read_zones", "require_accepted", "write_json", "zone_files"]
from drbalance.validation import check_period


def add_centroids_option(p) -> None:
    """``--centroids PATH``, the one definition shared by every command that reads trips."""
    p.add_argument("--centroids", type=Path, default=None,
                   help="TLC zone centroids CSV (LocationID,lon_wgs84,lat_wgs84,area_km2; default: "
                        "taxi_zone_centroids_DERIVED.csv beside the zone lookup, else the TLC centroids bundled "
                        "with drbalance, checked to cover every LocationID of the lookup)")


def read_zones(trip_files, zones: Path | None = None, centroids: Path | None = None) -> pd.DataFrame:
    """The canonical zone frame of a command reading ``trip_files``: checks first that every trip file
    exists (naming the missing one), then reads the TLC lookup ``zones`` (default:
    ``taxi_zone_lookup.csv`` beside the first trip file) with ``centroids`` (default: see
    :func:`data_pipeline.readers.read_nyc_zones`: the file beside the lookup, else the bundled TLC
    centroids).  The files used are in the frame's ``attrs`` (:func:`zone_files`)."""
    files = [Path(t) for t in trip_files]
    if not files:
        raise DataError("no trip files given; pass one or more TLC parquet/CSV files")
    for f in files:
        if f.is_dir():
            raise DataError(f"trip file {f} is a folder; pass the trip files in it (e.g. {f}/*.parquet)")
        if not f.is_file():
            raise DataError(f"trip file {f} not found")
    path = Path(zones) if zones is not None else files[0].with_name("taxi_zone_lookup.csv")
    if not path.is_file():
        where = "" if zones is not None else " (looked beside the first trip file)"
        raise DataError(f"zone lookup {path} not found{where}; pass --zones PATH/taxi_zone_lookup.csv")
    return read_nyc_zones(path, centroids)


def zone_files(zones: pd.DataFrame) -> dict:
    """``{"zones", "centroids", "centroids_source"}``: the lookup and centroid files a :func:`read_zones`
    frame came from (``centroids_source``: ``given``, ``beside_lookup`` or ``bundled``), for the record."""
    return {"zones": zones.attrs.get("lookup"), "centroids": zones.attrs.get("centroids"),
            "centroids_source": zones.attrs.get("centroids_source")}


def centroids_note(files: dict) -> str | None:
    """One line telling the user the bundled TLC centroids were used (None otherwise)."""
    if files.get("centroids_source") != "bundled":
        return None
    return (f"zone centroids: none beside {files['zones']}; used drbalance's bundled TLC centroids "
            f"{files['centroids']} (pass --centroids PATH to use others)")


def require_accepted(report, period: tuple[str, str]) -> None:
    """Raise :class:`DataError` when no row of ``report`` (a reader's :class:`RejectReport`) was accepted,
    with its counts by reason (e.g. ``all 1,234 rows rejected: outside_period 1,200, ...``)."""
    if report.rows_accepted == 0:
        what = describe_rejects(report.by_reason, report.rows_read) or "the files hold no rows"
        raise DataError(f"no trip survived validation for {period[0]}..{period[1]} ({what}); "
                        "check the dates and zones against the trip files")


def parse_period(text: str, option: str) -> tuple[str, str]:
    """Parse ``"YYYY-MM-DD:YYYY-MM-DD"`` (both ends inclusive) into two ISO date strings; errors name
    ``option`` (the one rule: :func:`drbalance.validation.check_period`)."""
    return check_period(option, text)


def parse_circuity(text: str) -> float | str:
    """``--circuity`` value: ``"auto"`` (estimated from metered trips) or a number (checked >= 1 by the
    configuration)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--circuity must be a number >= 1 or 'auto', got {text!r}") from None


def option_values(args, keys: dict[str, str]) -> dict:
    """The dotted :class:`drbalance.study_config.StudyConfig` values of the options given on the command
    line (``keys``: option attribute -> dotted key; an option left at None was not given and is left
    out, so a ``--config`` file's value or the default stays).  ``--train`` is parsed as a period,
    ``--days`` and ``--policies`` split on commas, ``--circuity`` as a number or ``auto``."""
    values = {}
    for option, key in keys.items():
        v = getattr(args, option, None)
        if v is None:
            continue
        if option == "train":
            v = list(parse_period(v, "--train"))
        elif option in ("days", "policies"):
            v = [x.strip() for x in v.split(",") if x.strip()]
            if not v:
                raise ConfigError(f"--{option} is empty; give one or more comma-separated "
                                  f"{'dates YYYY-MM-DD' if option == 'days' else 'policy names'}")
        elif option == "circuity":
            v = parse_circuity(v)
        values[key] = v
    return values


#: longest file or folder name most file systems accept (bytes)
NAME_MAX = 255


def _output_problem(path: Path, folder: bool) -> str | None:
    """Why ``path`` (a folder when ``folder``, else a file) cannot be written, or None.  Nothing is
    created: the nearest existing ancestor must be a writable folder (probed with a temporary file,
    removed at once)."""
    try:
        if path.exists():
            if folder and not path.is_dir():
                return "it is a file, not a folder"
            if not folder and path.is_dir():
                return "it is a folder; give a file name"
        target = path if folder else path.parent
        missing = []
        base = target if str(target) else Path(".")
        while not base.exists():
            missing.append(base.name)
            if base.parent == base:
                break
            base = base.parent
        long = [n for n in missing + [path.name] if len(n.encode()) > NAME_MAX]
        if long:
            return f"the name {long[0][:40]!r}... is longer than {NAME_MAX} bytes"
        if not base.is_dir():
            return f"{base} is a file, so no folder can be created under it"
        try:
            fd, probe = tempfile.mkstemp(prefix=".drbalance-write-check.", dir=base)
        except OSError as exc:
            return f"folder {base} is not writable ({exc.strerror or exc})"
        os.close(fd)
        os.unlink(probe)
    except (OSError, ValueError) as exc:  # e.g. a NUL byte, a name the OS refuses
        return f"not a usable path ({exc})"
    return None


def check_outputs(*, files: dict | None = None, folders: dict | None = None) -> None:
    """Refuse, before any work, an output that could not be written: ``files`` and ``folders`` map an
    option (``"--json"``) to its path (None: not given).  A file's folder, or a folder itself, must
    exist as a writable folder or be creatable under one.  Raises :class:`ConfigError` naming the
    option, the path, the reason and the fix."""
    for kind, named in (("folder", folders or {}), ("file", files or {})):
        for option, path in named.items():
            if path is None:
                continue
            why = _output_problem(Path(path), kind == "folder")
            if why:
                raise ConfigError(f"{option} {path}: cannot write this {kind}: {why}; pass a path in a writable folder")


def with_options(base, args, keys: dict[str, str], extra: dict | None = None):
    """``base.with_values(...)`` (a :class:`drbalance.study_config.StudyConfig`) with the options given
    (:func:`option_values`) and ``extra`` dotted values; a :class:`ConfigError` about a value that an
    option gave says which option, e.g. ``[sim] fleet_size must be >= 1, got 0 (from --fleet)``."""
    values = option_values(args, keys)
    given = {key: option for option, key in keys.items() if key in values}
    values.update(extra or {})
    try:
        return base.with_values(values)
    except ConfigError as exc:
        option = _option_named(str(exc), given)
        if option is None:
            raise
        raise ConfigError(f"{exc} (from --{option.replace('_', '-')})") from None


def _option_named(message: str, given: dict[str, str]) -> str | None:
    """The option (of ``given``: dotted key -> option) a configuration error message is about, if one."""
    hits = []
    for key, option in given.items():
        section, _, field = key.rpartition(".")
        if section and (key in message or f"[{section}] {field}" in message):
            hits.append(option)
        elif not section and message.startswith(f"{field} "):
            hits.append(option)
    if not hits:  # e.g. "[sim.charging] low-battery threshold ...": the one option given in that table
        in_table = [o for k, o in given.items() if message.startswith(f"[{k.rpartition('.')[0]}] ")]
        hits = in_table if len(in_table) == 1 else []
    return hits[0] if len(hits) == 1 else None


@contextlib.contextmanager
def naming_options(fields: dict[str, str]):
    """Inside the block, a :class:`ConfigError` about one of ``fields`` (a configuration field -> the
    option that set it, e.g. ``{"tol": "tol"}``) says which option: ``tol must be ... (from --tol)``."""
    try:
        yield
    except ConfigError as exc:
        option = _option_named(str(exc), fields)
        if option is None:
            raise
        raise ConfigError(f"{exc} (from --{option.replace('_', '-')})") from None


#: the model-v2 options of ``evaluate`` and ``evaluate-scenario`` -> dotted :class:`StudyConfig` keys
MODEL_V2_KEYS = {"objective": "balancing.objective", "lost_request_km": "balancing.lost_request_km",
                 "charge_queue_km": "balancing.charge_queue_km", "timing_share": "balancing.timing_share"}


def add_model_v2_options(p) -> None:
    """``--objective``, ``--lost-request-km``, ``--charge-queue-km``, ``--timing-share`` (see :data:`MODEL_V2_KEYS`)."""
    p.add_argument("--objective", default=None, choices=["shortfall", "ratio"],
                   help="model v2 (shortfall, default) or the paper's ratio model")
    p.add_argument("--lost-request-km", type=float, default=None,
                   help="shortfall: km of empty driving worth one lost request (lambda, default 20)")
    p.add_argument("--charge-queue-km", type=float, default=None,
                   help="shortfall: km worth one EV-slot waiting for a plug (default 2)")
    p.add_argument("--timing-share", type=float, default=None,
                   help="theta in [0, 1] (default: estimated from the training trips)")


def add_replay_options(p, d) -> None:
    """The study options every replaying command shares (``evaluate``, ``tune``): ``--seed``, ``--regions``,
    ``--slot-minutes``, ``--horizon``, ``--hours`` and the optimisers' reaches; ``d`` is the default
    :class:`~drbalance.study_config.StudyConfig` quoted in the help."""
    p.add_argument("--seed", type=int, default=None, help=f"seed of every draw (default {d.seed})")
    p.add_argument("--regions", type=int, default=None,
                   help=f"coarsen zones into K regions, 0 = one per zone (default {d.evaluation.regions})")
    p.add_argument("--slot-minutes", type=int, default=None, help=f"default {d.slot_minutes}")
    p.add_argument("--horizon", type=int, default=None, help=f"slots K (default {d.horizon})")
    p.add_argument("--hours", type=float, default=None, help="replay the first H hours of each day (default 24)")
    p.add_argument("--reach-km", type=float, default=None,
                   help=f"vacant-EV reach of the optimisers (default {d.balancing.reach_km:g} km)")
    p.add_argument("--later-reach-km", type=float, default=None,
                   help="reach of slots 2..K (default: same as --reach-km; 2.0 speeds up per-zone runs)")
    p.add_argument("--low-battery-reach-km", type=float, default=None,
                   help=f"charger reach of low-battery EVs (default {d.balancing.low_battery_reach_km:g} km)")
