#!/usr/bin/env python3
"""Ad hoc: the time of a typical analyst query on a Delta table in `standard`, with Polars.

    .stack/venv-bench/bin/python bench/delta-query.py CONTAINER [ROUNDS]     (ROUNDS 5)

Query: damage dealt per game over the table (`lib_server_game`: sum of enemy_damage and count of
attacks, grouped by game_token), through `polars.scan_delta` (which reads the Delta log with the
`deltalake` package). Prints one JSON line: live files, rows, groups, median wall seconds.
Storage: as scripts/delta-read.py (Azurite through env/local.env, or Azure).
"""
import importlib.util
import json
import os
import statistics
import sys
import time

import polars as pl
from deltalake import DeltaTable


def storage_options():
    """The storage options of scripts/delta-read.py (Azurite or Azure, from the environment)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "delta-read.py")
    spec = importlib.util.spec_from_file_location("delta_read", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.storage_options()


def main():
    container = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    uri = f"az://{container}/lib_server_game"
    opts = storage_options()
    files = len(DeltaTable(uri, storage_options=opts).file_uris())
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = (
            pl.scan_delta(uri, storage_options=opts)
            .group_by("game_token")
            .agg(pl.col("enemy_damage").cast(pl.Float64).sum().alias("damage"), pl.len().alias("attacks"))
            .collect()
        )
        times.append(time.perf_counter() - t0)
    print(json.dumps({"files": files, "rows": int(out["attacks"].sum()), "groups": out.height,
                      "median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times]}))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
