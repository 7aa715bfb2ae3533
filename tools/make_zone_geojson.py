"""Build ``drbalance/datasets/nyc_green_2021q1/taxi_zones_simplified.geojson`` from the TLC shapefile.

Run once by hand (not at install time; needs ``pip install pyshp pyproj shapely``)::

    python tools/make_zone_geojson.py /work/shared/data/nyc_tlc_green_2021q1/taxi_zones/taxi_zones.shp \
        drbalance/datasets/nyc_green_2021q1/taxi_zones_simplified.geojson

Reads the 263 polygons (EPSG:2263, US feet), merges the TLC's duplicated LocationIDs (56, 103) into one
feature each, simplifies each zone by ``TOLERANCE_FT`` (Douglas-Peucker, topology preserved), converts to
WGS84 and rounds coordinates to 5 decimals (about 1 m).  Properties: ``LocationID``, ``zone``, ``borough``.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import pyproj
import shapefile
from shapely.geometry import mapping, shape
from shapely.ops import transform, unary_union

#: simplification tolerance in feet (EPSG:2263 units): 150 ft is about 45 m, invisible at city scale
TOLERANCE_FT = 150.0


def main(src: str, dst: str) -> None:
    to_wgs = pyproj.Transformer.from_crs("EPSG:2263", "EPSG:4326", always_xy=True).transform
    reader = shapefile.Reader(src)
    fields = [f[0] for f in reader.fields[1:]]
    parts, props = defaultdict(list), {}
    for rec, shp in zip(reader.records(), reader.shapes()):
        r = dict(zip(fields, rec))
        lid = int(r["LocationID"])
        parts[lid].append(shape(shp.__geo_interface__))
        props[lid] = {"LocationID": lid, "zone": r["zone"], "borough": r["borough"]}
    features = []
    for lid in sorted(parts):
        geom = unary_union(parts[lid]).simplify(TOLERANCE_FT, preserve_topology=True)
        geom = transform(to_wgs, geom)
        g = json.loads(json.dumps(mapping(geom)), parse_float=lambda x: round(float(x), 5))
        features.append({"type": "Feature", "properties": props[lid], "geometry": g})
    with open(dst, "w") as fh:
        json.dump({"type": "FeatureCollection", "features": features}, fh, separators=(",", ":"))
    print(f"{len(features)} zones -> {dst}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
