#!/usr/bin/env python3
"""Ad hoc: table-open time of a Delta table after N commits, with and without checkpoints.

    .stack/venv-bench/bin/python bench/delta-checkpoints.py [COMMITS] [ROUNDS]   (10000, 5)

Writes one local table under a temporary folder: version 0 by the `deltalake` package (the
delta-rs core the transformer uses), then COMMITS-1 appends of one one-row Parquet file each,
written straight in the log's own format (an `add` and a `commitInfo` per version, which is what
the transformer's committer writes; writing them through the package re-reads the growing log on
every commit and takes hours). A copy then gets the checkpoint that `delta.checkpointInterval` =
100 (DELTA_CHECKPOINT_INTERVAL's default) leaves behind: the one at the last multiple of 100.
Both are opened ROUNDS times, alternating: median open time (wall) and CPU seconds from /proc
(process time) per open.
"""
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake


def build(path, commits):
    row = pa.table({"game_token": ["g"], "enemy_damage": [1]})
    write_deltalake(path, row, mode="append", configuration={"delta.checkpointInterval": str(commits * 10)})
    data = os.path.join(path, "data")
    os.makedirs(data)
    pq.write_table(row, os.path.join(data, "one.parquet"))
    size = os.path.getsize(os.path.join(data, "one.parquet"))
    stats = json.dumps({"numRecords": 1, "minValues": {"game_token": "g", "enemy_damage": 1},
                        "maxValues": {"game_token": "g", "enemy_damage": 1},
                        "nullCount": {"game_token": 0, "enemy_damage": 0}})
    now = int(time.time() * 1000)
    for v in range(1, commits):
        name = f"data/part-{v:08d}.parquet"
        os.link(os.path.join(data, "one.parquet"), os.path.join(path, name))
        add = {"add": {"path": name, "partitionValues": {}, "size": size, "modificationTime": now,
                       "dataChange": True, "stats": stats}}
        info = {"commitInfo": {"timestamp": now, "operation": "WRITE",
                               "operationParameters": {"mode": "Append"}}}
        with open(os.path.join(path, "_delta_log", f"{v:020d}.json"), "w") as f:
            f.write(json.dumps(add) + "\n" + json.dumps(info) + "\n")


def checkpoint(src, dst, commits):
    shutil.copytree(src, dst)
    at = (commits - 1) // 100 * 100
    DeltaTable(dst, version=at).create_checkpoint()
    return at


def open_once(path):
    w, c = time.perf_counter(), time.process_time()
    t = DeltaTable(path)
    n = len(t.file_uris())
    return time.perf_counter() - w, time.process_time() - c, n


def main():
    commits = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as d:
        tables = {"checkpoint every 100": os.path.join(d, "with"), "no checkpoint": os.path.join(d, "without")}
        build(tables["no checkpoint"], commits)
        at = checkpoint(tables["no checkpoint"], tables["checkpoint every 100"], commits)
        print(f"{commits} commits; checkpoint at version {at}, so {commits - 1 - at} JSON commits after it", flush=True)
        wall = {k: [] for k in tables}
        cpu = {k: [] for k in tables}
        for _ in range(rounds):
            for name, path in tables.items():
                w, c, n = open_once(path)
                assert n == commits, (name, n)
                wall[name].append(w)
                cpu[name].append(c)
        for name in tables:
            print(f"{name}: open median {statistics.median(wall[name]) * 1000:.0f} ms wall, "
                  f"{statistics.median(cpu[name]) * 1000:.0f} ms CPU ({rounds} opens)")
        a, b = (statistics.median(wall[k]) for k in tables)
        print(f"open time ratio without/with checkpoints: {b / a:.1f}x")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
